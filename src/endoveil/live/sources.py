"""Where live frames come from: a camera or capture card, a network stream, or a file.

Every source hands out `Captured` frames stamped with the moment they arrived
(``time.monotonic()``), which is the clock the live output follows. Cameras go through
OpenCV (V4L2 on Linux, AVFoundation on macOS, Media Foundation/DirectShow on Windows; an NDI
feed that appears as a camera works the same way); streams and files through PyAV/FFmpeg.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from endoveil.errors import MediaError
from endoveil.media.inputs import open_input

__all__ = [
    "STREAM_SCHEMES",
    "CameraSource",
    "Captured",
    "FileSource",
    "IterableSource",
    "Source",
    "SourceError",
    "StreamSource",
    "open_source",
]

STREAM_SCHEMES = ("rtsp", "rtsps", "srt", "rtmp", "rtmps", "udp", "tcp", "http", "https", "rtp")


class SourceError(MediaError):
    """The source cannot be opened or stopped delivering frames."""


@dataclass(frozen=True)
class Captured:
    """One frame as it arrived."""

    frame: av.VideoFrame
    t_capture: float
    index: int


class Source(ABC):
    """A live frame source. ``read`` blocks until the next frame; None means it has ended."""

    name: str = "source"
    nominal_fps: float = 30.0

    @abstractmethod
    def open(self) -> None:
        """(Re)connect; raise `SourceError` on failure."""

    @abstractmethod
    def read(self) -> Captured | None:
        """The next frame; None at the end of a finite source; `SourceError` on failure."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or connection; safe to call twice."""


class _PyAVSource(Source):
    """A source FFmpeg opens: network streams, synthetic (lavfi) sources and files."""

    def __init__(self, url: str, *, format: str | None = None, options: dict[str, str]) -> None:
        self.url, self.format, self.options = url, format, options
        self.name = url
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self._count = 0

    def open(self) -> None:
        self.close()
        self._container = self._open_container()
        if not self._container.streams.video:
            raise SourceError("the source has no video", path=self.name)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        self.nominal_fps = float(rate) if rate else 30.0
        self._frames = self._container.decode(stream)

    def _open_container(self) -> av.container.InputContainer:
        try:
            return av.open(self.url, format=self.format, options=self.options, timeout=(10.0, 5.0))
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open source: {exc}", path=self.name) from exc

    def _next_frame(self) -> av.VideoFrame | None:
        if self._frames is None:
            raise SourceError("source is not open", path=self.name)
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            raise SourceError(f"source failed: {exc}", path=self.name) from exc

    def read(self) -> Captured | None:
        frame = self._next_frame()
        if frame is None:
            return None
        self._count += 1
        return Captured(frame, time.monotonic(), self._count - 1)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._frames = None


class StreamSource(_PyAVSource):
    """RTSP, SRT, RTMP, UDP, TCP, HTTP/HLS streams; ``lavfi:SPEC`` for FFmpeg test sources."""

    def __init__(self, url: str) -> None:
        if url.startswith("lavfi:"):
            super().__init__(url.removeprefix("lavfi:"), format="lavfi", options={})
            return
        options = {"fflags": "nobuffer", "flags": "low_delay"}
        if url.startswith(("rtsp:", "rtsps:")):
            options["rtsp_transport"] = "tcp"
        super().__init__(url, options=options)


class FileSource(_PyAVSource):
    """A video file, optionally played at its own rate (``realtime``) and looped (``loop``).

    For rehearsals and tests: with ``realtime`` the frames arrive when a camera would have
    delivered them.
    """

    def __init__(self, path: Path, *, realtime: bool = True, loop: bool = False) -> None:
        if not Path(path).is_file():
            raise SourceError("no such file", path=path)
        super().__init__(str(path), options={})
        self.realtime, self.loop = realtime, loop
        self._start: float | None = None
        self._offset = 0.0
        self._last_t = 0.0

    def _open_container(self) -> av.container.InputContainer:
        # Files go through the one safe door (no playlists pulling files from elsewhere).
        try:
            return open_input(self.url)
        except MediaError as exc:
            raise SourceError(exc.message, path=self.name) from exc

    def read(self) -> Captured | None:
        frame = self._next_frame()
        if frame is None and self.loop:
            self._offset = self._last_t + 1.0 / max(self.nominal_fps, 1.0)
            self.open()
            frame = self._next_frame()
        if frame is None:
            return None
        t = self._offset + (float(frame.time) if frame.time is not None else 0.0)
        self._last_t = t
        if self._start is None:
            self._start = time.monotonic() - t
        if self.realtime:
            delay = self._start + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self._count += 1
        return Captured(frame, time.monotonic(), self._count - 1)


class CameraSource(Source):
    """A camera or capture card through OpenCV (index, or device path like /dev/video0)."""

    def __init__(self, device: int | str, *, width: int | None = None, fps: float | None = None):
        self.device = device
        self.name = f"camera {device}"
        self.width, self.fps = width, fps
        self._capture = None
        self._count = 0

    def open(self) -> None:
        import cv2

        self.close()
        capture = cv2.VideoCapture(self.device)
        if not capture.isOpened():
            raise SourceError("cannot open camera", path=self.name)
        if self.width:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.fps:
            capture.set(cv2.CAP_PROP_FPS, self.fps)
        self.nominal_fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        self._capture = capture

    def read(self) -> Captured | None:
        if self._capture is None:
            raise SourceError("camera is not open", path=self.name)
        ok, image = self._capture.read()
        if not ok:
            raise SourceError("camera stopped delivering frames", path=self.name)
        self._count += 1
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        return Captured(frame, time.monotonic(), self._count - 1)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class IterableSource(Source):
    """Frames the caller supplies (its own capture loop): RGB uint8 arrays (height × width × 3)
    or ``av.VideoFrame`` objects, stamped as they are taken from the iterable."""

    def __init__(
        self, frames: Iterable[npt.NDArray[np.uint8] | av.VideoFrame], *, fps: float = 30.0
    ):
        self.name = "frames"
        self.nominal_fps = fps
        self._frames = iter(frames)
        self._count = 0

    def open(self) -> None:
        """Nothing to open: the frames are the caller's."""

    def read(self) -> Captured | None:
        try:
            item = next(self._frames)
        except StopIteration:
            return None
        if isinstance(item, av.VideoFrame):
            frame = item
        else:
            image = np.asarray(item)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise SourceError(
                    f"frames must be uint8 RGB arrays (height, width, 3), got {image.dtype} "
                    f"{image.shape}",
                    path=self.name,
                )
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        self._count += 1
        return Captured(frame, time.monotonic(), self._count - 1)

    def close(self) -> None:
        """Nothing to release."""


def open_source(spec: str, *, realtime: bool = True, loop: bool = False) -> Source:
    """Pick the source for ``spec``: a camera index or device, a stream URL, ``lavfi:…``, or a
    file path."""
    if spec.isdigit():
        return CameraSource(int(spec))
    if spec.startswith("/dev/video"):
        return CameraSource(spec)
    scheme = re.match(r"^([a-z0-9+.-]+):", spec)
    if spec.startswith("lavfi:") or (scheme and scheme.group(1) in STREAM_SCHEMES):
        return StreamSource(spec)
    return FileSource(Path(spec), realtime=realtime, loop=loop)
