"""Join the segments' sound on the merged video's timeline (only with ``--keep-audio``).

Sound is decoded, resampled to the first sound track's rate and layout, and re-encoded to
AAC, sample-counted from zero: each segment's samples are placed at the segment's offset on
the video timeline (plus its own audio/video start difference). Gaps are filled with silence
and overlaps (a segment whose sound outlasts its pictures) are trimmed, so sound never drifts
from the pictures across joins. A segment without sound contributes silence.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from endoveil.errors import MediaError, OutputError
from endoveil.media.probe import VideoInfo, open_input
from endoveil.media.writer import MUXER_OPTIONS

__all__ = ["join_audio"]


def join_audio(
    video_path: Path,
    segments: Sequence[VideoInfo],
    offsets_s: Sequence[float],
    out_path: Path,
) -> None:
    """Write ``out_path``: ``video_path``'s pictures (copied) and the segments' joined sound.

    Args:
        video_path: the merged pictures.
        segments: the segments, in order; at least one has sound.
        offsets_s: where each segment starts on the merged timeline.
        out_path: the result (MP4).

    Raises:
        MediaError: a segment's sound cannot be read.
        OutputError: the result cannot be written.
    """
    source = next(info for info in segments if info.has_audio)
    with open_input(source.path) as c:
        ctx = c.streams.audio[0].codec_context
        rate, layout = ctx.sample_rate, ctx.layout
    try:
        out = av.open(str(out_path), "w", format="mp4", options=dict(MUXER_OPTIONS))
    except av.FFmpegError as exc:
        raise OutputError(f"cannot create: {exc}", path=out_path) from exc
    with open_input(video_path) as video_in, out:
        v_in = video_in.streams.video[0]
        v_out = out.add_stream_from_template(v_in)
        v_out.metadata.clear()
        a_out = out.add_stream("aac", rate=rate)
        a_out.layout = layout
        a_out.codec_context.flags |= av.codec.context.Flags.bitexact
        out.start_encoding()
        video = (
            (float(p.dts * p.time_base) if p.dts is not None else 0.0, 0, n, p)
            for n, p in enumerate(video_in.demux(v_in))
            if p.size
        )
        joined = _Joiner(a_out, rate)
        sound = (
            (float(p.pts * p.time_base) if p.pts is not None else 0.0, 1, n, p)
            for n, p in enumerate(joined.packets(segments, offsets_s))
        )
        # Interleave by time, as players and muxers expect.
        for _, kind, _, packet in heapq.merge(video, sound, key=lambda item: item[:3]):
            packet.stream = v_out if kind == 0 else a_out
            try:
                out.mux(packet)
            except av.FFmpegError as exc:
                raise OutputError(f"cannot write: {exc}", path=out_path) from exc


class _Joiner:
    """Samples placed on the merged timeline, encoded in the encoder's frame size."""

    def __init__(self, encoder: av.AudioStream, rate: int) -> None:
        self.encoder = encoder
        self.rate = rate
        self.layout = encoder.layout
        self.channels = len(encoder.layout.channels)
        self.frame_size = encoder.codec_context.frame_size or 1024
        self.fifo = av.AudioFifo()
        self.written = 0

    def packets(
        self, segments: Sequence[VideoInfo], offsets_s: Sequence[float]
    ) -> Iterator[av.Packet]:
        for info, offset in zip(segments, offsets_s, strict=True):
            start = round(offset * self.rate)
            yield from self._place(np.zeros((self.channels, 0), np.float32), start)
            if info.has_audio:
                yield from self._segment(info, start)
        rest = self.fifo.read()
        if rest is not None:
            yield from self.encoder.encode(rest)
        yield from self.encoder.encode(None)

    def _segment(self, info: VideoInfo, start: int) -> Iterator[av.Packet]:
        resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        video_start = info.start_pts * info.time_base
        with open_input(info.path) as container:
            stream = container.streams.audio[0]
            for frame in itertools.chain(_decode(container, stream, info.path), [None]):
                for chunk in resampler.resample(frame):
                    samples = chunk.to_ndarray().astype(np.float32, copy=False)
                    if chunk.pts is None:
                        position = self.written
                    else:
                        at = chunk.pts * chunk.time_base - video_start
                        position = start + round(at * self.rate)
                    yield from self._place(samples, position)

    def _place(self, samples: npt.NDArray[np.float32], position: int) -> Iterator[av.Packet]:
        """Put ``samples`` at sample ``position``: pad a gap with silence, trim an overlap."""
        if position > self.written:
            gap = np.zeros((self.channels, position - self.written), np.float32)
            samples = np.concatenate([gap, samples], axis=1)
        elif position < self.written:
            samples = samples[:, self.written - position :]
        if samples.shape[1] == 0:
            return
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples), format="fltp", layout=self.layout
        )
        frame.sample_rate = self.rate
        frame.pts, frame.time_base = self.written, Fraction(1, self.rate)
        self.written += samples.shape[1]
        self.fifo.write(frame)
        for block in self.fifo.read_many(self.frame_size):
            yield from self.encoder.encode(block)


def _decode(
    container: av.container.InputContainer, stream: av.AudioStream, path: Path
) -> Iterator[av.AudioFrame]:
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                continue  # a damaged sound packet: the gap is filled with silence
    except av.FFmpegError as exc:
        if not isinstance(exc, av.error.EOFError | av.error.InvalidDataError):
            raise MediaError(f"cannot decode audio: {exc}", path=path) from exc
