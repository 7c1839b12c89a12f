"""Join the segments' sound on the merged video's timeline (only with ``--keep-audio``).

Sound is decoded, resampled to the first sound track's rate and layout, and re-encoded to
AAC, sample-counted from zero: each segment's samples are placed at the segment's offset on
the video timeline (plus its own audio/video start difference). Gaps are filled with silence
and overlaps (a segment whose sound outlasts its pictures) are trimmed, so sound never drifts
from the pictures across joins. A segment without sound contributes silence.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import numpy as np

from endoveil.media.audio import SampleEncoder, decode_audio, mux_with_sound
from endoveil.media.probe import VideoInfo, open_input

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
    mux_with_sound(
        video_path,
        out_path,
        rate=rate,
        layout=layout,
        sound=lambda encoder: _Joiner(encoder).packets(segments, offsets_s),
    )


class _Joiner:
    """Samples placed on the merged timeline: gaps filled with silence, overlaps trimmed."""

    def __init__(self, encoder: SampleEncoder) -> None:
        self.encoder = encoder

    def packets(
        self, segments: Sequence[VideoInfo], offsets_s: Sequence[float]
    ) -> Iterator[av.Packet]:
        rate = self.encoder.rate
        for info, offset in zip(segments, offsets_s, strict=True):
            start = round(offset * rate)
            yield from self.encoder.write_at(
                np.zeros((self.encoder.channels, 0), np.float32), start
            )
            if info.has_audio:
                yield from self._segment(info, start)
        yield from self.encoder.flush()

    def _segment(self, info: VideoInfo, start: int) -> Iterator[av.Packet]:
        resampler = self.encoder.resampler()
        video_start = info.start_pts * info.time_base
        with open_input(info.path) as container:
            stream = container.streams.audio[0]
            frames = decode_audio(container, stream, info.path)
            for frame in itertools.chain(frames, [None]):
                for chunk in resampler.resample(frame):
                    samples = chunk.to_ndarray().astype(np.float32, copy=False)
                    if chunk.pts is None:
                        position = self.encoder.written
                    else:
                        at = chunk.pts * chunk.time_base - video_start
                        position = start + round(at * self.encoder.rate)
                    yield from self.encoder.write_at(samples, position)
