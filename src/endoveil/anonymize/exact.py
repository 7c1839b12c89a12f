"""Exact mode: every frame decoded and re-encoded; out-of-body frames rendered or dropped."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from endoveil.anonymize.render import Action, Black, renderer_for
from endoveil.detect.scan import Progress
from endoveil.media.probe import VideoInfo
from endoveil.media.reader import FrameReader, upright
from endoveil.media.writer import VideoWriter

__all__ = ["RenderStats", "write_exact"]


@dataclass(frozen=True)
class RenderStats:
    """What writing the anonymized video did."""

    frames_written: int
    frames_anonymized: int
    frames_cut: int
    inbody_frames_reencoded: int
    inbody_frames_lost: int


def write_exact(
    info: VideoInfo,
    oob: npt.NDArray[np.bool_],
    out_path: Path,
    *,
    action: Action,
    preset: str,
    crf: int,
    progress: Progress | None = None,
) -> RenderStats:
    """Write ``info.path`` to ``out_path`` with every frame re-encoded.

    Args:
        info: the source video.
        oob: one boolean per frame, True to anonymize (or drop, for ``cut``).
        out_path: the output file (the caller makes it atomic).
        action: blur, pixelate, black or cut.
        preset, crf: libx264 settings.
        progress: called with (frames done, total).

    Frames the decoder could not read are never shown: black in place, or dropped for ``cut``.
    """
    renderer = renderer_for(action)
    durations = info.frame_durations()
    width, height = (s & ~1 for s in info.display_size)
    removed = 0
    anonymized = cut = lost = 0
    with (
        FrameReader(info.path, info) as reader,
        VideoWriter(
            out_path,
            width=width,
            height=height,
            time_base=info.time_base,
            fps=info.fps or Fraction(30),
            preset=preset,
            crf=crf,
            colour=info.colour,
        ) as writer,
    ):
        black = Black()
        for frame in reader:
            hide = bool(oob[frame.index]) or not frame.decoded
            lost += not frame.decoded and not oob[frame.index]
            if hide and renderer is None:
                removed += int(durations[frame.index])
                cut += 1
            else:
                source = frame.video_frame
                if source is None:
                    out = black.render(_blank(width, height))
                else:
                    out = upright(source)
                    if hide and renderer is not None:
                        out = renderer.render(out)
                anonymized += hide
                out.pts = frame.pts - info.start_pts - removed
                writer.write(out)
            if progress:
                progress(frame.index + 1, info.frame_count)
        written = writer.frames_written
    inbody = int(np.count_nonzero(~oob))
    return RenderStats(
        frames_written=written,
        frames_anonymized=anonymized,
        frames_cut=cut,
        inbody_frames_reencoded=inbody - lost,
        inbody_frames_lost=lost,
    )


def _blank(width: int, height: int) -> av.VideoFrame:
    return av.VideoFrame(width, height, "yuv420p")
