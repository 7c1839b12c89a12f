"""Sound beside anonymized pictures: decode it, edit it as samples, re-encode it to AAC.

Operating-room sound carries names, so audio is dropped unless asked for. When kept
(`add_audio`), it is decoded, zeroed inside every hidden interval (or, for ``cut``, removed so
that sound stays in step with the cut pictures), re-encoded and muxed beside an already
written video. `mux_with_sound` and `SampleEncoder` are the shared parts: cases use them to
join the sound of recorder segments.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from endoveil.errors import MediaError, OutputError
from endoveil.media.probe import VideoInfo, open_input
from endoveil.media.writer import MUXER_OPTIONS

__all__ = ["SampleEncoder", "add_audio", "decode_audio", "mux_with_sound"]

Interval = tuple[float, float]


class SampleEncoder:
    """Planar float samples in, AAC packets out, counted in samples from zero."""

    def __init__(self, stream: av.AudioStream) -> None:
        self.stream = stream
        self.rate = stream.codec_context.sample_rate
        self.layout = stream.layout
        self.channels = len(stream.layout.channels)
        self.frame_size = stream.codec_context.frame_size or 1024
        self.written = 0
        self._fifo = av.AudioFifo()

    def resampler(self) -> av.AudioResampler:
        """A resampler to this encoder's rate and layout, in planar float."""
        return av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)

    def write(self, samples: npt.NDArray[np.float32]) -> Iterator[av.Packet]:
        """Append ``samples`` (channels × n) after what was written so far."""
        if samples.shape[1] == 0:
            return
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, np.float32), format="fltp", layout=self.layout
        )
        frame.sample_rate = self.rate
        frame.pts, frame.time_base = self.written, Fraction(1, self.rate)
        self.written += samples.shape[1]
        self._fifo.write(frame)
        for block in self._fifo.read_many(self.frame_size):
            yield from self.stream.encode(block)

    def write_at(self, samples: npt.NDArray[np.float32], position: int) -> Iterator[av.Packet]:
        """Put ``samples`` at sample ``position`` of the output: a gap before it is filled
        with silence, an overlap with what was written is trimmed, so sound stays where its
        timestamps put it."""
        if position > self.written:
            gap = np.zeros((self.channels, position - self.written), np.float32)
            samples = np.concatenate([gap, samples], axis=1)
        elif position < self.written:
            samples = samples[:, self.written - position :]
        yield from self.write(samples)

    def flush(self) -> Iterator[av.Packet]:
        rest = self._fifo.read()
        if rest is not None:
            yield from self.stream.encode(rest)
        yield from self.stream.encode(None)


def mux_with_sound(
    video_path: Path,
    out_path: Path,
    *,
    rate: int,
    layout: str | av.AudioLayout,
    sound: Callable[[SampleEncoder], Iterator[av.Packet]],
) -> None:
    """Write ``out_path``: ``video_path``'s pictures (copied) and the AAC packets ``sound``
    makes with the encoder it is given, interleaved by time as players expect."""
    try:
        out = av.open(str(out_path), "w", format="mp4", options=dict(MUXER_OPTIONS))
    except av.FFmpegError as exc:
        raise OutputError(f"cannot create output: {exc}", path=out_path) from exc
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
        audio = (
            (float(p.pts * p.time_base) if p.pts is not None else 0.0, 1, n, p)
            for n, p in enumerate(sound(SampleEncoder(a_out)))
        )
        for _, kind, _, packet in heapq.merge(video, audio, key=lambda item: item[:3]):
            packet.stream = v_out if kind == 0 else a_out
            try:
                out.mux(packet)
            except av.FFmpegError as exc:
                raise OutputError(f"cannot write: {exc}", path=out_path) from exc


def decode_audio(
    container: av.container.InputContainer, stream: av.AudioStream, path: Path
) -> Iterator[av.AudioFrame]:
    """Decoded sound; a damaged packet is skipped (its gap becomes silence downstream)."""
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                continue
    except av.FFmpegError as exc:
        if not isinstance(exc, av.error.EOFError | av.error.InvalidDataError):
            raise MediaError(f"cannot decode audio: {exc}", path=path) from exc


def add_audio(
    video_path: Path,
    source: VideoInfo,
    hidden: Sequence[Interval],
    out_path: Path,
    *,
    cut: bool,
) -> None:
    """Write ``out_path``: the video of ``video_path`` (copied) plus ``source``'s first audio
    track with ``hidden`` intervals (seconds on the source's video timeline) silenced or cut.
    """
    with open_input(source.path) as probe_in:
        ctx = probe_in.streams.audio[0].codec_context
        rate, layout = ctx.sample_rate, ctx.layout

    def sound(encoder: SampleEncoder) -> Iterator[av.Packet]:
        resampler = encoder.resampler()
        video_start = source.start_pts * source.time_base
        with open_input(source.path) as container:
            stream = container.streams.audio[0]
            for frame in decode_audio(container, stream, source.path):
                for chunk in resampler.resample(frame):
                    if chunk.pts is None:
                        continue
                    start = float(chunk.pts * chunk.time_base - video_start)
                    samples = chunk.to_ndarray().astype(np.float32)
                    times = start + np.arange(samples.shape[1]) / encoder.rate
                    hide = _inside(times, hidden)
                    if not cut:
                        samples[:, hide] = 0.0
                    keep = (times >= 0) & ~hide if cut else times >= 0
                    if not keep.any():
                        continue
                    # Where the first kept sample plays in the output: its own time, less
                    # the hidden time cut before it.
                    first = float(times[np.argmax(keep)])
                    at = first - (_cut_before(first, hidden) if cut else 0.0)
                    yield from encoder.write_at(samples[:, keep], round(at * encoder.rate))
        yield from encoder.flush()

    mux_with_sound(video_path, out_path, rate=rate, layout=layout, sound=sound)


def _cut_before(t: float, intervals: Sequence[Interval]) -> float:
    """Seconds of ``intervals`` that lie before time ``t``."""
    return sum(max(0.0, min(end, t) - start) for start, end in intervals if start < t)


def _inside(times: npt.NDArray[np.float64], intervals: Sequence[Interval]) -> npt.NDArray[np.bool_]:
    mask = np.zeros(len(times), bool)
    for start, end in intervals:
        mask |= (times >= start) & (times < end)
    return mask
