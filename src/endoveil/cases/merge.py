"""Join a case's segments into one video whose timeline runs on without a gap or overlap.

Two ways, chosen by `plan_merge`:

- **copy**: every segment is H.264 with the same parameter sets (SPS/PPS), size, pixel
  format and time base, length-prefixed (MP4/MOV/MKV), unrotated, and starts with an IDR
  picture. Picture data is copied bit for bit (only slices and parameter sets are kept);
  presentation times are shifted so that each segment starts where the previous one ends (its
  last frame lasting one nominal frame), and decode times are rebuilt for the whole video at
  once with `assign_dts`, which keeps B-frame reordering valid across every join.
- **re-encode**: anything else (other codecs, sizes, encoder settings...). Frames are decoded
  (`FrameReader`), turned upright, scaled to the first segment's size and encoded with
  `VideoWriter` on one common time base, on the same continuous timeline.

The merged file is a scratch intermediate: the caller names it after the pseudonym and
deletes it. With ``keep_audio`` the segments' sound is joined on the same timeline
(`endoveil.cases.merge_audio`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
import numpy.typing as npt

from endoveil.atomic import scratch_path
from endoveil.cases.merge_audio import join_audio
from endoveil.errors import MediaError, OutputError
from endoveil.media.nal import length_size_of, reframe
from endoveil.media.probe import VideoInfo, open_input, probe
from endoveil.media.reader import FrameReader, upright
from endoveil.media.remux import assign_dts
from endoveil.media.writer import MUXER_OPTIONS, VideoWriter

__all__ = ["MergePlan", "MergeResult", "check_segments", "merge_segments", "plan_merge"]

MergeMethod = Literal["copy", "re-encode", "single"]
Progress = Callable[[int, int], None]

# A common time base finer than this many ticks per second is not worth it: 90 kHz (MPEG's)
# is exact for every usual frame rate.
MAX_TIMESCALE = 10_000_000
FALLBACK_TIMESCALE = 90_000


@dataclass(frozen=True)
class MergePlan:
    """How the segments are joined, and why.

    Attributes:
        method: ``copy`` (packets copied), ``re-encode`` or ``single`` (one segment: used as is).
        reason: for ``re-encode``, which parameter differs, naming segments by number only.
        segments: the segments' properties, in order.
    """

    method: MergeMethod
    reason: str
    segments: tuple[VideoInfo, ...]

    @property
    def message(self) -> str:
        if self.method == "single":
            return "one segment: nothing to merge"
        if self.method == "copy":
            return f"{len(self.segments)} segments joined by stream copy (parameters match)"
        return f"{len(self.segments)} segments re-encoded to one format: {self.reason}"


@dataclass(frozen=True)
class MergeResult:
    """The merged video and how its frames map to the segments."""

    path: Path
    plan: MergePlan
    segment_frames: tuple[int, ...]
    offsets_s: tuple[float, ...]

    @property
    def frame_count(self) -> int:
        return sum(self.segment_frames)


def check_segments(paths: Sequence[Path]) -> tuple[VideoInfo, ...]:
    """Probe every segment and decode its first frame.

    Raises:
        MediaError: a segment cannot be opened, has no video, or its first frame does not
            decode; ``path`` names the segment.
    """
    infos = []
    for path in paths:
        info = probe(path)
        with FrameReader(path, info, threads=False) as reader:
            first = next(iter(reader), None)
        if first is None or not first.decoded:
            raise MediaError("its first frame cannot be decoded", path=path)
        infos.append(info)
    return tuple(infos)


def plan_merge(infos: Sequence[VideoInfo]) -> MergePlan:
    """Copy if every segment can be joined packet for packet, else re-encode (with why)."""
    segments = tuple(infos)
    if not segments:
        raise ValueError("a case needs at least one segment")
    if len(segments) == 1:
        return MergePlan("single", "", segments)
    reason = _copy_blocker(segments)
    return MergePlan("re-encode" if reason else "copy", reason or "", segments)


def _copy_blocker(segments: tuple[VideoInfo, ...]) -> str | None:
    first = segments[0]
    for n, info in enumerate(segments, start=1):
        if info.codec != "h264":
            return f"segment {n} is {info.codec}, stream copy joins H.264 only"
        if length_size_of(info.extradata, "h264") is None:
            return f"segment {n} is a raw or TS H.264 stream without MP4-style parameters"
        if info.rotation:
            return f"segment {n} is rotated ({info.rotation}°)"
        if not (info.packets[0].is_keyframe and info.packets[0].is_idr):
            return f"segment {n} does not start with an IDR picture"
        if (info.width, info.height, info.pix_fmt) != (first.width, first.height, first.pix_fmt):
            return (
                f"segment {n} is {info.width}x{info.height} {info.pix_fmt}, "
                f"segment 1 is {first.width}x{first.height} {first.pix_fmt}"
            )
        if info.extradata != first.extradata:
            return f"segment {n} was encoded with other H.264 parameters (SPS/PPS) than segment 1"
        if info.time_base != first.time_base:
            return f"segment {n} has time base {info.time_base}, segment 1 {first.time_base}"
    return None


def merge_segments(
    plan: MergePlan,
    out_path: Path,
    *,
    keep_audio: bool = False,
    preset: str = "superfast",
    crf: int = 18,
    progress: Progress | None = None,
) -> MergeResult:
    """Write the segments of ``plan`` as one MP4 at ``out_path`` (``single``: a symlink).

    Args:
        plan: from `plan_merge`.
        out_path: the merged file (scratch; the caller deletes it).
        keep_audio: also join the segments' sound.
        preset, crf: libx264 settings for ``re-encode``.
        progress: called with (frames done, total).

    Raises:
        MediaError: a segment cannot be read while merging.
        OutputError: the merged file cannot be written (disk full...).
    """
    segments = plan.segments
    lengths = [_duration_ticks(info) * info.time_base for info in segments]
    offsets_s = tuple(float(sum(lengths[:k], Fraction(0))) for k in range(len(segments)))
    frames = tuple(info.frame_count for info in segments)
    if plan.method == "single":
        try:
            os.symlink(os.path.abspath(segments[0].path), out_path)
        except OSError as exc:
            raise OutputError(f"cannot create: {exc.strerror}", path=out_path) from exc
        return MergeResult(out_path, plan, frames, offsets_s)

    # A merged case is the patient's unblurred video: owner-only from its first byte (FFmpeg
    # keeps the mode of a file it overwrites; a new one would follow the umask, often 0644).
    _create_private(out_path)
    with_audio = keep_audio and any(info.has_audio for info in segments)
    if not with_audio:
        _write_video(plan, out_path, preset, crf, progress)
        return MergeResult(out_path, plan, frames, offsets_s)
    with scratch_path(out_path, ".video.mp4") as pictures:
        _write_video(plan, pictures, preset, crf, progress)
        join_audio(pictures, segments, offsets_s, out_path)
    return MergeResult(out_path, plan, frames, offsets_s)


def _create_private(path: Path) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        os.chmod(path, 0o600)
    except OSError as exc:
        raise OutputError(f"cannot create: {exc.strerror}", path=path) from exc


def _write_video(
    plan: MergePlan, path: Path, preset: str, crf: int, progress: Progress | None
) -> None:
    try:
        if plan.method == "copy":
            _copy(plan.segments, path, progress)
        else:
            _reencode(plan.segments, path, preset, crf, progress)
    except OSError as exc:
        raise OutputError(f"cannot write the merged video: {exc.strerror}", path=path) from exc


def _duration_ticks(info: VideoInfo) -> int:
    """The segment's length in its time base: first frame to the end of its last frame."""
    return int(info.frame_pts[-1] - info.frame_pts[0] + info.frame_durations()[-1])


# copy ------------------------------------------------------------------------------------------
def _copy(segments: tuple[VideoInfo, ...], path: Path, progress: Progress | None) -> None:
    first = segments[0]
    pts_parts: list[npt.NDArray[np.int64]] = []
    offset = 0
    for info in segments:
        packet_pts = np.fromiter((p.pts for p in info.packets), np.int64, len(info.packets))
        pts_parts.append(packet_pts - info.start_pts + offset)
        offset += _duration_ticks(info)
    all_pts = np.concatenate(pts_parts)
    step = min(int(np.min(info.frame_durations())) for info in segments)
    dts = assign_dts(all_pts, max(step, 1)).tolist()
    total = len(all_pts)

    with open_input(first.path) as template_in:
        try:
            out = av.open(str(path), "w", format="mp4", options=dict(MUXER_OPTIONS))
        except av.FFmpegError as exc:
            raise OutputError(f"cannot create: {exc}", path=path) from exc
        try:
            stream = out.add_stream_from_template(template_in.streams.video[0])
            stream.metadata.clear()  # nothing of the source's tags goes along
            stream.time_base = first.time_base
            done = 0
            for info in segments:
                for keyframe, data in _packets_of(info):
                    if done >= total:
                        raise MediaError("more packets than when probed", path=info.path)
                    packet = av.Packet(data)
                    packet.pts = int(all_pts[done])
                    packet.dts = int(dts[done])
                    packet.time_base = first.time_base
                    packet.is_keyframe = keyframe
                    packet.stream = stream
                    _mux(out, packet, path)
                    done += 1
                    if progress:
                        progress(done, total)
            if done != total:
                raise MediaError(f"only {done} of {total} packets could be read", path=path)
        except BaseException:
            out.close()
            raise
        try:
            out.close()
        except av.FFmpegError as exc:
            raise OutputError(f"cannot finish: {exc}", path=path) from exc


def _packets_of(info: VideoInfo) -> Iterator[tuple[bool, bytes]]:
    """The video packets of one segment in decode order, as (is keyframe, data)."""
    size = length_size_of(info.extradata, "h264") or 4
    with open_input(info.path) as container:
        stream = container.streams.video[0]
        try:
            for packet in container.demux(stream):
                if packet.size:
                    data = reframe(bytes(packet), size, source_length_size=size)
                    yield bool(packet.is_keyframe), data
        except av.FFmpegError as exc:
            raise MediaError(f"cannot read: {exc}", path=info.path) from exc


def _mux(out: av.container.OutputContainer, packet: av.Packet, path: Path) -> None:
    try:
        out.mux(packet)
    except av.FFmpegError as exc:
        raise OutputError(f"cannot write: {exc}", path=path) from exc


# re-encode -------------------------------------------------------------------------------------
def _common_time_base(segments: Sequence[VideoInfo]) -> Fraction:
    """The coarsest time base in which every segment's timestamps are exact (else 1/90000)."""
    scale = 1
    for info in segments:
        scale = math.lcm(scale, info.time_base.denominator)
        if scale > MAX_TIMESCALE:
            return Fraction(1, FALLBACK_TIMESCALE)
    return Fraction(1, scale)


def _reencode(
    segments: tuple[VideoInfo, ...],
    path: Path,
    preset: str,
    crf: int,
    progress: Progress | None,
) -> None:
    first = segments[0]
    width, height = first.display_size
    width, height = width & ~1, height & ~1
    time_base = _common_time_base(segments)
    total = sum(info.frame_count for info in segments)
    done = 0
    offset = Fraction(0)
    black = np.zeros((height, width, 3), np.uint8)
    with VideoWriter(
        path,
        width=width,
        height=height,
        time_base=time_base,
        fps=first.fps or Fraction(25),
        preset=preset,
        crf=crf,
    ) as writer:
        for info in segments:
            with FrameReader(info.path, info) as reader:
                for frame in reader:
                    if frame.video_frame is None:
                        # An undecodable picture stays in the timeline as black: nothing of it
                        # can show, and no frame after it moves.
                        out = av.VideoFrame.from_ndarray(black, format="rgb24")
                        out = out.reformat(format="yuv420p")
                    else:
                        out = upright(frame.video_frame)
                        if (out.width, out.height) != (width, height):
                            out = out.reformat(width=width, height=height, format="yuv420p")
                    t = offset + (frame.pts - info.start_pts) * info.time_base
                    out.pts = round(t / time_base)
                    writer.write(out)
                    done += 1
                    if progress:
                        progress(done, total)
            offset += _duration_ticks(info) * info.time_base
