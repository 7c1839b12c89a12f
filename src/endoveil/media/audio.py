"""Keep a video's sound, silenced (or cut) wherever its pictures are hidden.

Operating-room sound carries names, so audio is dropped unless asked for. When kept, it is
decoded, zeroed inside every hidden interval (or, for ``cut``, removed so that sound stays in
step with the cut pictures), re-encoded to AAC and muxed beside an already written video.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from endoveil.errors import MediaError, OutputError
from endoveil.media.probe import VideoInfo, open_input
from endoveil.media.writer import MUXER_OPTIONS

__all__ = ["add_audio"]

Interval = tuple[float, float]


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
    with (
        open_input(video_path) as video_in,
        open_input(source.path) as audio_in,
        _open_output(out_path) as out,
    ):
        v_in = video_in.streams.video[0]
        v_out = out.add_stream_from_template(v_in)
        v_out.metadata.clear()
        a_in = audio_in.streams.audio[0]
        a_out = out.add_stream("aac", rate=a_in.codec_context.sample_rate)
        a_out.layout = a_in.codec_context.layout
        a_out.codec_context.flags |= av.codec.context.Flags.bitexact
        out.start_encoding()

        video = (
            (float(p.dts * p.time_base) if p.dts is not None else 0.0, 0, n, p)
            for n, p in enumerate(video_in.demux(v_in))
            if p.size
        )
        sound = (
            (float(p.pts * p.time_base) if p.pts is not None else 0.0, 1, n, p)
            for n, p in enumerate(_audio_packets(audio_in, a_in, a_out, source, hidden, cut))
        )
        for _, kind, _, packet in heapq.merge(video, sound, key=lambda item: item[:3]):
            packet.stream = v_out if kind == 0 else a_out
            try:
                out.mux(packet)
            except av.FFmpegError as exc:
                raise OutputError(f"cannot write: {exc}", path=out_path) from exc


def _open_output(path: Path) -> av.container.OutputContainer:
    try:
        return av.open(str(path), "w", format="mp4", options=dict(MUXER_OPTIONS))
    except av.FFmpegError as exc:
        raise OutputError(f"cannot create output: {exc}", path=path) from exc


def _audio_packets(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    encoder_stream: av.AudioStream,
    source: VideoInfo,
    hidden: Sequence[Interval],
    cut: bool,
) -> Iterator[av.Packet]:
    rate = encoder_stream.codec_context.sample_rate
    resampler = av.AudioResampler(format="fltp", layout=encoder_stream.layout, rate=rate)
    fifo = av.AudioFifo()
    video_start = source.start_pts * source.time_base
    intervals = sorted(hidden)
    written = 0
    for frame in _decode_audio(container, stream, source.path):
        for chunk in resampler.resample(frame):
            if chunk.pts is None:
                continue
            start = float(chunk.pts * chunk.time_base - video_start)
            samples = chunk.to_ndarray()
            times = start + np.arange(samples.shape[1]) / rate
            hide = _inside(times, intervals)
            keep = (times >= 0) & ~hide if cut else times >= 0
            if not cut:
                samples = np.where(hide, 0.0, samples)
            samples = samples[:, keep]
            if samples.shape[1] == 0:
                continue
            out = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples, np.float32), format="fltp", layout=chunk.layout
            )
            out.sample_rate = rate
            out.pts, out.time_base = written, Fraction(1, rate)
            written += samples.shape[1]
            fifo.write(out)
            for block in fifo.read_many(encoder_stream.codec_context.frame_size or 1024):
                yield from encoder_stream.encode(block)
    rest = fifo.read()
    if rest is not None:
        yield from encoder_stream.encode(rest)
    yield from encoder_stream.encode(None)


def _decode_audio(
    container: av.container.InputContainer, stream: av.AudioStream, path: Path
) -> Iterator[av.AudioFrame]:
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                continue
    except av.FFmpegError as exc:
        if not isinstance(exc, av.error.EOFError | av.error.InvalidDataError):
            raise MediaError(f"cannot decode audio: {exc}", path=path) from exc


def _inside(times: np.ndarray, intervals: Sequence[Interval]) -> np.ndarray:
    mask = np.zeros(len(times), bool)
    for start, end in intervals:
        mask |= (times >= start) & (times < end)
    return mask
