"""What a video is: size, rate, codec, and the exact time of every frame, read by demuxing."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from endoveil.errors import MediaError
from endoveil.media.colour import ColourTags
from endoveil.media.inputs import open_input
from endoveil.media.nal import H264_IDR, H264_SLICE, iter_nals, length_size_of, nal_type

__all__ = [
    "MAX_FRAME_PIXELS",
    "MAX_FRAME_SIDE",
    "PacketInfo",
    "VideoInfo",
    "check_frame_size",
    "open_input",
    "probe",
]

# Far above any surgical camera (8K UHD is 7680x4320, 33 million pixels), within libx264's.
MAX_FRAME_SIDE = 16384
MAX_FRAME_PIXELS = 8192 * 8192


@dataclass(frozen=True)
class PacketInfo:
    """One compressed video frame as demuxed, in decode order."""

    pts: int
    dts: int | None
    is_keyframe: bool
    size: int
    is_idr: bool = False
    """For H.264: the packet holds an IDR picture (nothing after it refers to anything before)."""
    is_reference: bool = True
    """False for an H.264 picture no other picture refers to (``nal_ref_idc`` 0)."""


@dataclass(frozen=True, eq=False)
class VideoInfo:
    """Standard properties of a video's first video stream.

    ``frame_pts`` and ``frame_times`` list every frame in presentation order: times are in
    seconds from the stream's first frame (not from zero), read from packet timestamps, so
    variable frame rate is exact. ``packets`` keeps the decode order for stream copy.
    """

    path: Path
    container: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    fps: Fraction
    time_base: Fraction
    frame_pts: npt.NDArray[np.int64]
    frame_times: npt.NDArray[np.float64]
    duration_s: float
    rotation: int
    has_audio: bool
    packets: tuple[PacketInfo, ...] = field(repr=False)
    extradata: bytes | None = field(default=None, repr=False)
    colour: ColourTags = field(default_factory=ColourTags)
    """Matrix, primaries and transfer the source declares (outputs carry them on)."""
    video_streams: tuple[int, ...] = ()
    """Indices of every video stream but cover art; endoveil reads the first (``[0]``)."""
    slices_per_picture: int = 1
    """H.264: slices in the first picture (hardware and sliced-thread encoders write several)."""

    @property
    def frame_count(self) -> int:
        return len(self.frame_pts)

    @property
    def start_pts(self) -> int:
        return int(self.frame_pts[0]) if len(self.frame_pts) else 0

    def frame_durations(self) -> npt.NDArray[np.int64]:
        """Each frame's display duration in time-base units (the last: the nominal rate's)."""
        nominal = round(1 / (self.fps * self.time_base)) if self.fps else 1
        last = np.array([max(int(nominal), 1)], np.int64)
        return np.concatenate([np.diff(self.frame_pts), last])

    def reference_frames(self) -> npt.NDArray[np.bool_]:
        """One boolean per frame: False where no other frame refers to it (may be skipped)."""
        flags = np.ones(self.frame_count, bool)
        pts = np.fromiter((p.pts for p in self.packets), np.int64, len(self.packets))
        index = np.searchsorted(self.frame_pts, pts)
        flags[index] = [p.is_reference for p in self.packets]
        return flags

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height once rotation metadata is applied."""
        if self.rotation % 180:
            return self.height, self.width
        return self.width, self.height


def probe(path: Path | str) -> VideoInfo:
    """Read a video's properties and its frame timeline without decoding every frame.

    Raises:
        MediaError: the file is missing, unreadable, not a video, or has no video frames.
    """
    path = Path(path)
    with open_input(path) as container:
        if not container.streams.video:
            raise MediaError("has no video stream", path=path)
        stream = container.streams.video[0]
        ctx = stream.codec_context
        check_frame_size(ctx.width, ctx.height, path)
        packets, slices = _demux_packets(container, stream, path)
        if not packets:
            raise MediaError("has a video stream but no video frames", path=path)
        frame_pts = np.unique(np.fromiter((p.pts for p in packets), np.int64, len(packets)))
        time_base = Fraction(stream.time_base or Fraction(1, 90000))
        frame_times = (frame_pts - frame_pts[0]).astype(np.float64) * float(time_base)
        fps = _frame_rate(stream, frame_times)
        duration_s = float(frame_times[-1] + 1 / fps) if fps else float(frame_times[-1])
        rotation = _first_frame_rotation(path)
        return VideoInfo(
            path=path,
            container=container.format.name,
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            pix_fmt=ctx.pix_fmt or "",
            fps=fps,
            time_base=time_base,
            frame_pts=frame_pts,
            frame_times=frame_times,
            duration_s=duration_s,
            rotation=rotation,
            has_audio=bool(container.streams.audio),
            packets=tuple(packets),
            extradata=ctx.extradata,
            colour=ColourTags.of(ctx),
            video_streams=tuple(
                s.index
                for s in container.streams.video
                if not s.disposition & av.stream.Disposition.attached_pic
            ),
            slices_per_picture=slices,
        )


def check_frame_size(width: int, height: int, path: Path) -> None:
    """Refuse a declared frame size no camera makes (a damaged header, usually): decoding it
    would exhaust memory or the encoder's limits far from where the cause can be named.

    Raises:
        MediaError: no size, wider or taller than `MAX_FRAME_SIDE`, or more than
            `MAX_FRAME_PIXELS`.
    """
    if width <= 0 or height <= 0:
        # FFmpeg leaves the size unset when it refuses the header's (e.g. 65000x65000).
        raise MediaError(
            f"declares no usable frame size ({width}x{height}); is the file damaged?", path=path
        )
    if max(width, height) > MAX_FRAME_SIDE or width * height > MAX_FRAME_PIXELS:
        raise MediaError(
            f"declares {width}x{height} frames, more than endoveil handles (at most "
            f"{MAX_FRAME_SIDE} a side and {MAX_FRAME_PIXELS // 1_000_000} million pixels); "
            "is the file damaged?",
            path=path,
        )


def _demux_packets(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> tuple[list[PacketInfo], int]:
    """The packets in decode order, and the number of slices of the first H.264 picture."""
    packets: list[PacketInfo] = []
    slices = 1
    last_pts = None
    codec = stream.codec_context.codec.canonical_name
    length_size = length_size_of(stream.codec_context.extradata, codec)
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:
                # No timestamp at all (raw streams): continue the previous frame's clock.
                pts = 0 if last_pts is None else last_pts + (packet.duration or 1)
            last_pts = pts
            idr, reference = False, True
            if codec == "h264":
                data = bytes(packet)
                idr, reference = _h264_picture_kind(data, length_size)
                if not packets:
                    slices = max(1, _h264_slice_count(data, length_size))
            packets.append(
                PacketInfo(
                    int(pts), packet.dts, bool(packet.is_keyframe), packet.size, idr, reference
                )
            )
    except av.FFmpegError:
        # A truncated or corrupt tail: keep what was demuxed; the rest cannot be judged.
        pass
    return packets, slices


def _h264_picture_kind(data: bytes, length_size: int | None) -> tuple[bool, bool]:
    """(is IDR, is referenced) from the first slice NAL unit of an H.264 packet."""
    for nal in iter_nals(data, length_size):
        kind = nal_type(nal, "h264")
        if kind in (H264_SLICE, H264_IDR):
            return kind == H264_IDR, (nal[0] >> 5) & 3 != 0
    return False, True


def _h264_slice_count(data: bytes, length_size: int | None) -> int:
    """Slices of the packet's first picture: a packet may carry two fields, and the second
    field starts again at macroblock 0 (``first_mb_in_slice``, the first bit after the NAL
    header, is 1 exactly when it is 0)."""
    count = 0
    for nal in iter_nals(data, length_size):
        if nal_type(nal, "h264") not in (H264_SLICE, H264_IDR) or len(nal) < 2:
            continue
        if count and nal[1] & 0x80:
            break
        count += 1
    return count


def _frame_rate(stream: av.VideoStream, frame_times: npt.NDArray[np.float64]) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if rate:
        return Fraction(rate)
    if len(frame_times) > 1 and frame_times[-1] > 0:
        return Fraction((len(frame_times) - 1) / frame_times[-1]).limit_denominator(1001)
    return Fraction(0)


def _first_frame_rotation(path: Path) -> int:
    """Rotation (degrees, counter-clockwise) that the display matrix asks players to apply."""
    try:
        with open_input(path) as container:
            for frame in container.decode(video=0):
                return round(frame.rotation) % 360
    except (av.FFmpegError, MediaError):
        return 0
    return 0
