"""Tamper with encoded media at the packet level: plant NAL units, add streams.

Used by the tamper suite: each function makes a file a careless or hostile tool could produce,
which `inspect` or `verify` must catch.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from endoveil.anonymize.render import Blur
from endoveil.media.probe import VideoInfo
from endoveil.media.reader import FrameReader, upright

SECRET = b"Jane Doe DOB 1970-01-01"


def plant_nals(
    src: Path, dst: Path, types: tuple[int, ...], *, text: bytes = SECRET, codec: str = "h264"
) -> Path:
    """Copy ``src`` (length-prefixed H.264/HEVC in MP4) adding one NAL unit of each of
    ``types`` carrying ``text`` to every video packet."""
    with av.open(str(src)) as source, av.open(str(dst), "w", format="mp4") as out:
        stream = source.streams.video[0]
        target = out.add_stream_from_template(stream)
        for packet in source.demux(stream):
            if packet.size == 0:
                continue
            data = bytes(packet)
            for kind in types:
                header = bytes([kind << 1, 1]) if codec == "hevc" else bytes([kind])
                unit = header + text
                data += len(unit).to_bytes(4, "big") + unit
            planted = av.Packet(data)
            planted.pts, planted.dts, planted.time_base = packet.pts, packet.dts, packet.time_base
            planted.is_keyframe = packet.is_keyframe
            planted.stream = target
            out.mux(planted)
    return dst


def add_stream_copy(
    video: Path, dst: Path, extra: Path, *, kind: str = "video", tags: dict[str, str] | None = None
) -> Path:
    """``video`` with the first ``kind`` stream of ``extra`` added as a second stream
    (``none``: no stream) and container ``tags``."""
    with (
        av.open(str(video)) as main,
        av.open(str(extra)) as other,
        av.open(str(dst), "w", format="mp4") as out,
    ):
        if tags:
            out.metadata.update(tags)
        ours = out.add_stream_from_template(main.streams.video[0])
        pairs = [(main, main.streams.video[0], ours)]
        if kind != "none":
            source = other.streams.video[0] if kind == "video" else other.streams.audio[0]
            pairs.append((other, source, out.add_stream_from_template(source)))
        for container, stream, target in pairs:
            for packet in container.demux(stream):
                if packet.size:
                    packet.stream = target
                    out.mux(packet)
    return dst


def originals_and_blurred(
    video: Path, hidden: npt.NDArray[np.bool_], info: VideoInfo | None = None
) -> tuple[list[npt.NDArray[np.uint8]], list[npt.NDArray[np.uint8]]]:
    """The video's pictures (upright RGB) and those of a correct output: blurred where
    ``hidden`` (``info``: the video's probe, if known)."""
    originals, blurred = [], []
    blur = Blur()
    with FrameReader(video, info) as reader:
        for frame in reader:
            assert frame.video_frame is not None
            image = upright(frame.video_frame)
            originals.append(image.to_ndarray(format="rgb24"))
            shown = blur.render(image) if hidden[frame.index] else image
            blurred.append(shown.to_ndarray(format="rgb24"))
    return originals, blurred


__all__ = ["SECRET", "add_stream_copy", "originals_and_blurred", "plant_nals"]
