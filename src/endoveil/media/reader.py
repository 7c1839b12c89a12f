"""Decoded frames, in presentation order, each with its exact index and time.

`FrameReader` yields one `Frame` for every frame of the video's timeline (as `probe` lists
it), in order. A frame that cannot be decoded (corrupt or truncated stream) is still yielded,
with ``video_frame`` None, so that callers can treat it as out of body instead of losing track.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

from endoveil.errors import MediaError
from endoveil.media.colour import FULL, LIMITED, is_full_range, supported_matrix
from endoveil.media.probe import VideoInfo, open_input, probe

__all__ = [
    "Frame",
    "FrameReader",
    "decoder_cores",
    "decoder_threads",
    "to_model_image",
    "upright",
    "usable_cores",
    "use_decoder_threads",
]


@dataclass
class Frame:
    """One frame of the timeline.

    Attributes:
        index: position in presentation order, from 0.
        pts: presentation timestamp in the stream's time base.
        time_s: seconds from the stream's first frame.
        video_frame: the decoded frame, or None if it could not be decoded.
        skipped: not decoded on purpose (``skip_nonref``), as opposed to undecodable.
    """

    index: int
    pts: int
    time_s: float
    video_frame: av.VideoFrame | None
    skipped: bool = False

    @property
    def decoded(self) -> bool:
        return self.video_frame is not None


def to_model_image(
    frame: av.VideoFrame, size: int, reformatter: VideoReformatter | None = None
) -> npt.NDArray[np.uint8]:
    """Resize a whole frame to size×size RGB in FFmpeg (area filter), upright.

    ``reformatter``: one kept for a whole video reuses its scaler instead of setting one up
    per frame (the same pixels, in about half the time); not to be shared between threads.
    """
    options = {"width": size, "height": size, "format": "rgb24", "interpolation": "AREA"}
    small = reformatter.reformat(frame, **options) if reformatter else frame.reformat(**options)
    image = small.to_ndarray()
    turns = _quarter_turns(frame)
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def upright(frame: av.VideoFrame) -> av.VideoFrame:
    """The frame as players show it: display-matrix rotation applied, in 8-bit limited-range
    yuv420p with even dimensions (odd sizes lose their last row or column: yuv420p needs even
    sizes). Full-range levels are converted, the matrix is kept (see `endoveil.media.colour`)."""
    turns = _quarter_turns(frame)
    even = frame.width % 2 == 0 and frame.height % 2 == 0
    full = is_full_range(frame)
    if not turns and even and frame.format.name == "yuv420p" and not full:
        return frame
    src_range = FULL if full else LIMITED
    matrix = supported_matrix(frame)
    if not turns and even:
        out = frame.reformat(format="yuv420p", src_color_range=src_range, dst_color_range=LIMITED)
    else:
        rgb = frame.reformat(
            format="rgb24", src_color_range=src_range, dst_color_range=FULL
        ).to_ndarray()
        if turns:
            rgb = np.rot90(rgb, turns)
        h, w = rgb.shape[0] & ~1, rgb.shape[1] & ~1
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
        out = out.reformat(
            format="yuv420p", dst_colorspace=matrix, src_color_range=FULL, dst_color_range=LIMITED
        )
    out.color_range = LIMITED
    out.pts = frame.pts
    if frame.time_base is not None:  # frames made from arrays (cameras) have none
        out.time_base = frame.time_base
    return out


# Frame threads per core when decoding runs straight through. With one thread more than cores
# (FFmpeg's default), 1080p H.264 with B-frames kept only 1.4 of 2 cores busy: a thread waits on
# the rows of the pictures its own refers to, and with pictures nothing refers to skipped,
# about half the threads are handed a picture they drop. With 8 threads on 2 cores the
# referenced pictures of real surgical and endoscopic clips (720p, 1080p, 5 MP; B-frames)
# decoded in 0.73-0.87 of the time, 0.97 without B-frames, and a full decode in 0.91-0.98
# (bench/offline.py, docs/benchmarks.md).
FRAME_THREADS_PER_CORE = 4
# FFmpeg's own ceiling for automatic thread counts.
MAX_DECODER_THREADS = 16
# Each frame thread holds pictures of its own (about 25 MB a thread at 4K): threads beyond
# FFmpeg's count are added only while they hold at most this many pixels between them.
FRAME_THREAD_PIXEL_BUDGET = 64_000_000

ThreadType = Literal["AUTO", "SLICE"]


_granted_cores: ContextVar[int | None] = ContextVar("endoveil_decoder_cores", default=None)


@contextmanager
def decoder_cores(cores: int | None) -> Iterator[None]:
    """Decoders set up within this block spread over at most ``cores`` cores (None: all that
    `usable_cores` finds): jobs running side by side share the machine."""
    token = _granted_cores.set(max(1, cores) if cores is not None else None)
    try:
        yield
    finally:
        _granted_cores.reset(token)


def usable_cores() -> int:
    """Cores decoding may use: as a `decoder_cores` block grants, else those this process may
    run on (its CPU affinity, as FFmpeg counts them)."""
    granted = _granted_cores.get()
    if granted is not None:
        return granted
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def decoder_threads(info: VideoInfo, *, seeking: bool = False) -> tuple[ThreadType, int]:
    """How FFmpeg should spread decoding over the cores.

    ("SLICE", cores) where each picture has exactly one slice per core; else ("AUTO", n): frame
    threads where the codec has them (H.264, HEVC), slice threads where not (MPEG-2), with n 4
    a core (at most 16, and fewer for very large pictures); with ``seeking`` (many short
    decodes, each draining the threads), or on one core, FFmpeg's own count.

    Frame threads decode several pictures at once, each waiting on the pictures it refers to;
    slice threads work on one picture, one slice each. On 2 cores, 1080p H.264 cut in 2 slices
    decoded with slice threads in 0.82-0.84 of the time 8 frame threads took (referenced
    pictures or all); cut in 4 slices, slice threads were 1.04-1.21 times slower (2 or 4 of them:
    a core with two slices waits for the slower one), and with fewer slices than cores they
    leave cores idle.
    """
    cores = usable_cores()
    if cores == 1:
        return "AUTO", 1
    if info.slices_per_picture == cores:
        return "SLICE", cores
    ffmpegs = min(cores + 1, MAX_DECODER_THREADS)
    if seeking:
        return "AUTO", ffmpegs
    by_memory = FRAME_THREAD_PIXEL_BUDGET // max(info.width * info.height, 1)
    return "AUTO", max(ffmpegs, min(FRAME_THREADS_PER_CORE * cores, MAX_DECODER_THREADS, by_memory))


def use_decoder_threads(stream: av.VideoStream, info: VideoInfo, *, seeking: bool = False) -> None:
    """Set `decoder_threads` on a stream before its first packet is decoded."""
    stream.thread_type, stream.thread_count = decoder_threads(info, seeking=seeking)


def _quarter_turns(frame: av.VideoFrame) -> int:
    """np.rot90 turns (counter-clockwise) that show the frame upright."""
    return (round(frame.rotation) // 90) % 4


class FrameReader:
    """Decode a video's frames in presentation order; a context manager.

    Args:
        path: the video.
        info: its `probe` result, if already known.
        threads: let FFmpeg decode with frame/slice threads.
        skip_nonref: do not decode H.264 pictures that no other picture refers to.

    The reader owns the container and closes it on exit.

    Example:
        >>> with FrameReader("clip.mp4") as reader:  # doctest: +SKIP
        ...     for frame in reader:
        ...         print(frame.index, frame.time_s, frame.decoded)
    """

    def __init__(
        self,
        path: Path | str,
        info: VideoInfo | None = None,
        *,
        threads: bool = True,
        skip_nonref: bool = False,
    ) -> None:
        self.path = Path(path)
        self.info = info or probe(self.path)
        self._container = open_input(self.path)
        self._stream = self._container.streams.video[0]
        if threads:
            use_decoder_threads(self._stream, self.info)
        # Skipping pictures nothing refers to makes sampled decoding cheap; they come out as
        # frames with ``skipped`` set, told apart from undecodable ones by the packet headers.
        self._skippable = np.zeros(self.info.frame_count, bool)
        # Without timestamps (raw streams) frames are placed by counting, so none may be skipped.
        timed = any(p.dts is not None for p in self.info.packets)
        if skip_nonref and self.info.codec == "h264" and timed:
            self._stream.codec_context.skip_frame = "NONREF"
            self._skippable = ~self.info.reference_frames()
        self.undecodable = 0

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def __iter__(self) -> Iterator[Frame]:
        info = self.info
        next_index = 0
        lost = 0  # packets that failed to decode since the last frame
        damaged = False  # since a decode error, until the next clean keyframe
        for video_frame in self._decode():
            if video_frame is None:
                lost += 1
                damaged = True
                continue
            pts = video_frame.pts if video_frame.pts is not None else video_frame.dts
            if pts is None:
                # No timestamps (raw elementary streams): frames come in presentation order
                # and fill the timeline's slots in turn; a lost packet leaves its slot empty.
                index = min(next_index + lost, info.frame_count)
                if index >= info.frame_count:
                    continue
            else:
                index = int(np.searchsorted(info.frame_pts, pts))
                if index >= info.frame_count or info.frame_pts[index] != pts or index < next_index:
                    continue  # a frame outside the demuxed timeline (duplicate or stray pts)
            lost = 0
            # Frames predicted from a damaged picture show concealment guesses that differ
            # from one decode to the next; they cannot be judged, so they count as undecodable.
            damaged = video_frame.is_corrupt or (damaged and not video_frame.key_frame)
            yield from self._missing(next_index, index)
            if damaged:
                yield from self._missing(index, index + 1, undecodable=True)
            else:
                yield self._frame(index, video_frame)
            next_index = index + 1
        yield from self._missing(next_index, info.frame_count)

    def _decode(self) -> Iterator[av.VideoFrame | None]:
        """Decoded frames in presentation order, and None for each packet that failed."""
        container, stream = self._container, self._stream
        try:
            packets = container.demux(stream)
            for packet in packets:
                try:
                    yield from packet.decode()
                except av.error.InvalidDataError:
                    yield None  # a corrupt packet: its frame is reported as undecodable
        except av.FFmpegError as exc:
            if not isinstance(exc, av.error.EOFError | av.error.InvalidDataError):
                raise MediaError(f"cannot decode: {exc}", path=self.path) from exc
        try:
            yield from stream.codec_context.decode(None)
        except av.FFmpegError:
            return

    def _missing(self, start: int, end: int, *, undecodable: bool = False) -> Iterator[Frame]:
        for index in range(start, end):
            skipped = not undecodable and bool(self._skippable[index])
            self.undecodable += not skipped
            pts = int(self.info.frame_pts[index])
            yield Frame(index, pts, self._time(index), None, skipped=skipped)

    def _frame(self, index: int, video_frame: av.VideoFrame) -> Frame:
        return Frame(index, int(self.info.frame_pts[index]), self._time(index), video_frame)

    def _time(self, index: int) -> float:
        return float(self.info.frame_times[index])
