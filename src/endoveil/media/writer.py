"""Encode frames to an H.264 MP4 with nothing in it but the pictures (and, if asked, sound).

Metadata is stripped at the source: the muxer runs bit-exact (no encoder tag, no creation
time), no tag is copied from the input, and every packet keeps only the NAL units a decoder
needs (`endoveil.media.nal.DECODABLE`: slices and parameter sets), by FFmpeg's ``filter_units``
bitstream filter; x264's SEI (its version and settings) and anything else are dropped.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av

from endoveil.errors import OutputError
from endoveil.media.colour import ColourTags
from endoveil.media.nal import DECODABLE

__all__ = ["MUXER_OPTIONS", "VideoWriter", "decodable_filter"]

# Bit-exact muxing leaves out the "encoder" tag and creation/modification times; faststart puts
# the index first so the file streams.
MUXER_OPTIONS = {"movflags": "+faststart", "fflags": "+bitexact"}


def decodable_filter(stream: av.VideoStream) -> av.BitStreamFilterContext | None:
    """A bitstream filter keeping only the decodable NAL unit types of ``stream``'s packets."""
    keep = DECODABLE.get(stream.codec_context.codec.canonical_name)
    if keep is None:
        return None
    return av.BitStreamFilterContext(
        f"filter_units=pass_types={'|'.join(map(str, sorted(keep)))}", stream
    )


class VideoWriter:
    """libx264 / yuv420p / MP4 writer keeping the caller's timestamps (variable rate kept).

    Args:
        path: where to write (normally a temporary path; see `endoveil.atomic.atomic_path`).
        width, height: frame size (even).
        time_base: time base of the frames' ``pts``.
        fps: nominal rate, used only for rate control and GOP length.
        preset, crf: libx264 speed preset and quality.
        format: the muxer (``mp4``; ``mpegts`` or ``flv`` for network pushes, with a URL).
        muxer_options: replace `MUXER_OPTIONS` (e.g. fragmented MP4 for live recordings).
        codec_options: more libx264 options (e.g. ``{"tune": "zerolatency"}``).
        colour: the matrix, primaries and transfer to flag (the source's); the range is
            always flagged limited, which is what `upright` delivers.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        width: int,
        height: int,
        time_base: Fraction,
        fps: Fraction,
        preset: str = "superfast",
        crf: int = 18,
        format: str = "mp4",
        muxer_options: dict[str, str] | None = None,
        codec_options: dict[str, str] | None = None,
        colour: ColourTags | None = None,
    ) -> None:
        self.path = Path(path)
        target = str(path)
        options = dict(MUXER_OPTIONS if muxer_options is None else muxer_options)
        try:
            self._container = av.open(target, mode="w", format=format, options=options)
        except av.FFmpegError as exc:
            raise OutputError(f"cannot create output: {exc}", path=self.path) from exc
        stream = self._container.add_stream("libx264", rate=fps or Fraction(30))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        # The MP4 muxer may change the stream's time base when it writes the header (to at
        # least 1/10000); frame pts stay in the caller's, the encoder's.
        self.time_base = time_base
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        (colour or ColourTags()).apply(stream.codec_context)
        stream.options = {"preset": preset, "crf": str(crf), **(codec_options or {})}
        self.stream = stream
        try:
            # Opening the encoder now gives the stream its parameters (extradata), which the
            # unit filter needs to parse length-prefixed packets.
            self._container.start_encoding()
        except av.FFmpegError as exc:
            self._container.close()
            raise OutputError(f"cannot start encoding: {exc}", path=self.path) from exc
        self._bsf = decodable_filter(stream)
        self.frames_written = 0

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()

    def write(self, frame: av.VideoFrame) -> None:
        """Encode one frame; its ``pts`` is in ``time_base`` and must increase."""
        frame.time_base = self.time_base
        self._mux(self.stream.encode(frame))
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        self._mux(self.stream.encode(None))
        if self._bsf is not None:
            self._mux_raw(self._bsf.filter(None))
        try:
            self._container.close()
        except av.FFmpegError as exc:
            raise OutputError(f"cannot finish output: {exc}", path=self.path) from exc

    def _mux(self, packets: list[av.Packet]) -> None:
        out: list[av.Packet] = []
        for packet in packets:
            out.extend(self._bsf.filter(packet) if self._bsf else [packet])
        self._mux_raw(out)

    def _mux_raw(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            packet.stream = self.stream
            try:
                self._container.mux(packet)
            except av.FFmpegError as exc:
                raise OutputError(f"cannot write: {exc}", path=self.path) from exc
