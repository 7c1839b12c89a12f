"""Fast mode's plan: which GOPs are copied untouched and which must be re-encoded.

A GOP runs from one keyframe packet to the next, in decode order. A GOP that shows any frame
to hide is re-encoded. A copied run must start at a *clean* keyframe — an IDR picture that no
earlier frame is displayed after, and that no frame of its own GOP is displayed before — or its
first frames would refer to pictures that are no longer there; so a GOP that follows a
re-encoded one and does not start clean is re-encoded too. Open GOPs and B-frames are handled
by that rule, not by snapping cuts to keyframes (which is how peers re-include OOB frames).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from endoveil.media.nal import length_size_of
from endoveil.media.probe import VideoInfo

__all__ = ["Region", "assign_dts", "fast_mode_blocker", "plan_regions"]


@dataclass(frozen=True)
class Region:
    """A run of whole GOPs handled the same way.

    Attributes:
        copy: True to stream-copy its packets, False to re-encode its frames.
        packets: its packets, as indices into ``VideoInfo.packets`` (decode order).
        frames: its frames, as sorted presentation indices.
        gops: its GOPs, as packet ranges.
    """

    copy: bool
    packets: range
    frames: npt.NDArray[np.int64]
    gops: tuple[range, ...] = ()


def fast_mode_blocker(info: VideoInfo) -> str | None:
    """Why fast mode cannot copy this video's packets, or None if it can."""
    if info.codec != "h264":
        return f"fast mode copies H.264 only; this video is {info.codec}"
    if info.pix_fmt not in ("yuv420p", "yuvj420p"):
        return f"fast mode needs 8-bit 4:2:0 video; this one is {info.pix_fmt}"
    if info.rotation:
        return "fast mode cannot keep rotation metadata, which is stripped; rotated video"
    if info.width % 2 or info.height % 2:
        return "fast mode needs even frame sizes"
    if info.extradata is None or length_size_of(info.extradata, "h264") is None:
        return "fast mode needs H.264 in MP4/MOV/MKV (length-prefixed), not a raw or TS stream"
    if not info.packets[0].is_keyframe:
        return "the video does not start with a keyframe"
    return None


def plan_regions(info: VideoInfo, hide: npt.NDArray[np.bool_]) -> list[Region] | None:
    """Split the video into copied and re-encoded regions; None if the GOPs do not allow it.

    Args:
        info: the video (its packets in decode order).
        hide: one boolean per frame, True where the frame must not be copied.
    """
    packets = info.packets
    pts = np.fromiter((p.pts for p in packets), np.int64, len(packets))
    frame_of = np.searchsorted(info.frame_pts, pts)
    starts = [i for i, p in enumerate(packets) if p.is_keyframe]
    bounds = [*starts, len(packets)]
    gops = [range(a, b) for a, b in itertools.pairwise(bounds)]

    seen_max = np.maximum.accumulate(pts)
    encode = []
    for g, gop in enumerate(gops):
        key = gop.start
        clean = (
            packets[key].is_idr
            and int(pts[gop].min()) == int(pts[key])
            and (key == 0 or int(seen_max[key - 1]) < int(pts[key]))
        )
        dirty = bool(hide[frame_of[gop]].any())
        encode.append(dirty or (g > 0 and encode[g - 1] and not clean))

    regions: list[Region] = []
    g = 0
    while g < len(gops):
        end = g
        while end + 1 < len(gops) and encode[end + 1] == encode[g]:
            end += 1
        span = range(gops[g].start, gops[end].stop)
        members = tuple(gops[g : end + 1])
        regions.append(Region(not encode[g], span, np.sort(frame_of[span]), members))
        g = end + 1

    # GOPs (and so regions) must follow each other in presentation order too, or cutting
    # between them would reorder frames: true for all but exotic streams, which exact mode
    # handles instead.
    expected = 0
    for gop in gops:
        frames = np.sort(frame_of[gop])
        if frames[0] != expected or frames[-1] - frames[0] + 1 != len(frames):
            return None
        expected = int(frames[-1]) + 1
    return regions


def assign_dts(pts: npt.NDArray[np.int64], step: int) -> npt.NDArray[np.int64]:
    """Decode timestamps for packets in decode order whose presentation times are ``pts``.

    With ``r`` the deepest reordering in the stream, packet ``k`` gets the ``(k - r)``-th
    smallest presentation time: strictly increasing, never after the packet's own ``pts``.
    The first ``r`` packets count back from the first time by ``step``.
    """
    if len(pts) == 0:
        return pts.copy()
    order = np.argsort(pts, kind="stable")
    rank = np.empty(len(pts), np.int64)
    rank[order] = np.arange(len(pts))
    delay = int(max(0, np.max(np.arange(len(pts)) - rank)))
    ordered = pts[order]
    k = np.arange(len(pts))
    return np.where(
        k >= delay,
        ordered[np.clip(k - delay, 0, None)],
        ordered[0] - (delay - k) * max(step, 1),
    ).astype(np.int64)
