"""What the review page shows of a video besides the player: single frames as JPEG thumbnails,
and whether the browser can play the file at all.

A thumbnail is decoded from the nearest keyframe before it (a seek), so an edge late in a long
video costs one GOP, not the whole file. Probe results are cached per file version.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import av
import cv2

from endoveil.errors import MediaError
from endoveil.media.probe import VideoInfo, open_input, probe
from endoveil.media.reader import FrameReader, upright

__all__ = ["ProbeCache", "browser_playable", "frame_jpeg"]

JPEG_QUALITY = 80
# Chromium's <video> plays H.264 in MP4/MOV with 8-bit 4:2:0; anything else is reviewed
# from server-side thumbnails.
PLAYABLE_CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2"}
PLAYABLE_CODECS = {"h264"}
PLAYABLE_PIX_FMTS = {"yuv420p", "yuvj420p"}


def browser_playable(info: VideoInfo) -> tuple[bool, str]:
    """(True, "") if Chromium's player can show the video, else (False, why not)."""
    if info.container not in PLAYABLE_CONTAINERS:
        return False, f"the {info.container.split(',')[0]} container does not play in a browser"
    if info.codec not in PLAYABLE_CODECS:
        return False, f"the {info.codec} codec does not play in a browser"
    if info.pix_fmt not in PLAYABLE_PIX_FMTS:
        return False, f"the {info.pix_fmt} pixel format does not play in a browser"
    return True, ""


class ProbeCache:
    """`probe` results for the last few files, invalidated when a file changes."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int, int], VideoInfo] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> VideoInfo:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        info = probe(path)
        with self._lock:
            self._items[key] = info
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return info


def frame_jpeg(info: VideoInfo, index: int, width: int = 160) -> bytes:
    """Frame ``index`` of the video (upright) as a JPEG ``width`` pixels wide.

    Raises:
        ValueError: ``index`` is outside the video.
        MediaError: the frame cannot be decoded.
    """
    if not 0 <= index < info.frame_count:
        raise ValueError(f"frame {index} is outside the video (0..{info.frame_count - 1})")
    frame = _seek_decode(info, index) or _scan_decode(info, index)
    if frame is None:
        raise MediaError(f"frame {index} cannot be decoded", path=info.path)
    frame = upright(frame)
    height = max(2, round(width * frame.height / frame.width) // 2 * 2)
    image = frame.reformat(width=width, height=height, format="bgr24").to_ndarray()
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise MediaError(f"frame {index} cannot be encoded as JPEG", path=info.path)
    return jpeg.tobytes()


def _seek_decode(info: VideoInfo, index: int) -> av.VideoFrame | None:
    """Seek to the keyframe before the frame, decode up to it; None if that does not work."""
    target = int(info.frame_pts[index])
    with open_input(info.path) as container:
        stream = container.streams.video[0]
        try:
            container.seek(target, stream=stream, backward=True)
            for packet in container.demux(stream):
                for frame in packet.decode():
                    if frame.pts is None:
                        return None  # an untimed stream: only counting finds the frame
                    if frame.pts == target:
                        return frame
                    if frame.pts > target:
                        return None
        except av.FFmpegError:
            return None
    return None


def _scan_decode(info: VideoInfo, index: int) -> av.VideoFrame | None:
    """Decode from the start (streams that cannot seek); slow but exact."""
    with FrameReader(info.path, info) as reader:
        for frame in reader:
            if frame.index == index:
                return frame.video_frame
    return None
