"""Where the anonymized live picture goes: recording, network push, browser, window, camera.

Each sink runs in its own thread behind a bounded queue (`SinkRunner`), so a slow disk or a
dead network peer costs that sink frames, never the others. Sinks that fail are reopened with
exponential back-off; everything that happens is logged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from endoveil.atomic import place_group, scratch_path
from endoveil.detect.formats import labels_text
from endoveil.detect.labels import Labels, VideoSummary, segments_from_mask
from endoveil.errors import EndoveilError, OutputError, OutputExistsError
from endoveil.media.writer import VideoWriter

__all__ = [
    "LIVE_TIME_BASE",
    "Delivery",
    "PushSink",
    "RecordSink",
    "Sink",
    "SinkRunner",
    "VirtualCameraSink",
    "WindowSink",
    "push_format",
    "recording_labels",
]

log = logging.getLogger("endoveil.live")

# Output timestamps are the capture clock in 1/90000 s, the MPEG clock every muxer accepts.
LIVE_TIME_BASE = Fraction(1, 90000)
# Recordings are fragmented MP4: playable up to the last fragment even after a crash.
RECORD_MUXER_OPTIONS = {
    "movflags": "+frag_keyframe+empty_moov+default_base_moof",
    "fflags": "+bitexact",
}


@dataclass(frozen=True)
class Delivery:
    """One output frame: the picture (already anonymized where ``hidden``) and its facts."""

    frame: av.VideoFrame
    pts: int
    hidden: bool
    p_out: float | None
    t_capture: float
    state: str
    source_index: int = -1
    """The source frame shown (-1 for a paused card)."""


class Sink(ABC):
    """One output. ``open`` may be called again after a failure (reconnect)."""

    name: str = "sink"
    #: whether a failure is worth retrying (a network peer may come back; a full disk won't)
    reconnect: bool = True

    @abstractmethod
    def open(self, width: int, height: int, fps: float) -> None: ...

    @abstractmethod
    def write(self, item: Delivery) -> None: ...

    @abstractmethod
    def close(self) -> None:
        """Finish cleanly (finalize files); safe to call twice."""


def recording_labels(path: Path) -> Path:
    """The labels file a recording to ``path`` writes beside it."""
    return path.with_name(f"{path.stem}.labels.json")


class RecordSink(Sink):
    """A recording to an MP4 file, with its labels JSON (offline format) beside it.

    Both files are written under temporary names and put in place together when the recording
    is finalized, so an interrupted recording never poses as complete and a video never sits
    beside labels that are not its own. Without ``overwrite`` nothing is replaced: an existing
    name is refused when the sink is made; if a file appears under either name while recording,
    it is kept and the recording is put under the next free name (``<stem>-1.mp4`` and its
    labels), with a warning — a live recording cannot be made again. `placed` says where it
    went.

    Raises:
        OutputExistsError: (when made) the video or its labels exist and ``overwrite`` is off.
    """

    reconnect = False
    MAX_OTHER_NAMES = 1000

    def __init__(
        self, path: Path, *, preset: str = "superfast", crf: int = 20, overwrite: bool = False
    ) -> None:
        self.path = Path(path)
        self.labels_path = recording_labels(self.path)
        self.name = f"record {self.path.name}"
        self.preset, self.crf, self.overwrite = preset, crf, overwrite
        if not overwrite:
            for target in (self.path, self.labels_path):
                if target.exists() or target.is_symlink():
                    raise OutputExistsError(
                        "exists; choose another name, or replace it with --force "
                        "(overwrite=True from Python)",
                        path=target,
                    )
        self.placed: Path | None = None
        """The recording's final name, once finalized (None before, or if it failed)."""
        self._files = ExitStack()
        self._writer: VideoWriter | None = None
        self._parts: tuple[Path, Path] | None = None
        self._times: list[float] = []
        self._hidden: list[bool] = []
        self._scores: list[tuple[int, float, float]] = []
        self._sources: list[int] = []
        self._size = (0, 0)
        self._last_pts = -1

    def open(self, width: int, height: int, fps: float) -> None:
        with ExitStack() as files:  # a writer that cannot start leaves no temporary file
            video_part = files.enter_context(scratch_path(self.path, ".mp4"))
            labels_part = files.enter_context(scratch_path(self.labels_path, ".json"))
            try:
                self._writer = VideoWriter(
                    video_part,
                    width=width,
                    height=height,
                    time_base=LIVE_TIME_BASE,
                    fps=Fraction(fps).limit_denominator(1001),
                    preset=self.preset,
                    crf=self.crf,
                    muxer_options=RECORD_MUXER_OPTIONS,
                )
            except OutputError as exc:  # named by the temporary file: name the recording
                raise OutputError(exc.message, path=self.path) from exc
            self._parts = (video_part, labels_part)
            self._size = (width, height)
            self._files = files.pop_all()

    def write(self, item: Delivery) -> None:
        if self._writer is None or item.pts <= self._last_pts:
            return
        frame = item.frame
        frame.pts = item.pts
        self._writer.write(frame)
        self._last_pts = item.pts
        index = len(self._times)
        t = item.pts * float(LIVE_TIME_BASE)
        self._times.append(t)
        self._hidden.append(item.hidden)
        self._sources.append(item.source_index)
        if item.p_out is not None:
            self._scores.append((index, t, item.p_out))

    def close(self) -> None:
        if self._writer is None or self._parts is None:
            return
        writer, self._writer = self._writer, None
        video_part, labels_part = self._parts
        # Leaving the stack deletes what is left of the temporary files: nothing once they
        # are placed; both if anything failed.
        with self._files:
            writer.close()
            if not self._times:
                raise OutputError("nothing was recorded", path=self.path)
            labels_part.write_text(labels_text(self._labels()), encoding="utf-8")
            self.placed = self._place(video_part, labels_part)

    def _place(self, video_part: Path, labels_part: Path) -> Path:
        for n in range(self.MAX_OTHER_NAMES + 1):
            path = self.path if n == 0 else self.path.with_stem(f"{self.path.stem}-{n}")
            overwrite = self.overwrite and n == 0
            try:
                place_group(
                    [video_part, labels_part], [path, recording_labels(path)], overwrite=overwrite
                )
            except OutputExistsError:
                continue
            if n:
                log.warning(
                    "%s: %s or its labels appeared while recording and were kept; the recording "
                    "is %s",
                    self.name,
                    self.path.name,
                    path,
                )
            return path
        raise OutputExistsError("exists, and so do its next free names", path=self.path)

    def _labels(self) -> Labels:
        times = np.asarray(self._times) - self._times[0]
        n = len(times)
        fps = (n - 1) / times[-1] if n > 1 and times[-1] > 0 else 0.0
        duration = float(times[-1] + (1 / fps if fps else 0.0))
        summary = VideoSummary(round(duration, 6), round(fps, 6), n, *self._size)
        index, time_s, p_out = zip(*self._scores, strict=True) if self._scores else ((), (), ())
        return Labels(
            video=summary,
            index=np.asarray(index, np.int64),
            time_s=np.asarray(time_s, np.float64) - self._times[0],
            p_out=np.asarray(p_out, np.float32),
            segments=segments_from_mask(np.asarray(self._hidden), times, duration),
            params={"live": True},
            extra={"source_frames": self._sources},
        )


def push_format(url: str) -> str:
    """The muxer a push URL needs."""
    if url.startswith(("rtmp:", "rtmps:")):
        return "flv"
    if url.startswith(("rtsp:", "rtsps:")):
        return "rtsp"
    return "mpegts"  # srt, udp, tcp


class PushSink(Sink):
    """A network push (RTMP, SRT, RTSP, UDP/TCP MPEG-TS), libx264 tuned for zero latency."""

    def __init__(self, url: str, *, preset: str = "ultrafast", crf: int = 23) -> None:
        self.url = url
        self.name = f"push {url}"
        self.preset, self.crf = preset, crf
        self._writer: VideoWriter | None = None
        self._last_pts = -1

    def open(self, width: int, height: int, fps: float) -> None:
        rate = Fraction(fps).limit_denominator(1001)
        self._writer = VideoWriter(
            self.url,
            width=width,
            height=height,
            time_base=LIVE_TIME_BASE,
            fps=rate,
            preset=self.preset,
            crf=self.crf,
            format=push_format(self.url),
            muxer_options={"fflags": "+bitexact"},
            codec_options={"tune": "zerolatency", "g": str(max(1, round(2 * fps)))},
        )
        self._last_pts = -1

    def write(self, item: Delivery) -> None:
        if self._writer is None or item.pts <= self._last_pts:
            return
        item.frame.pts = item.pts
        self._writer.write(item.frame)
        self._last_pts = item.pts

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except EndoveilError as exc:
                log.warning("%s: closing: %s", self.name, exc)


class WindowSink(Sink):
    """A preview window (needs an OpenCV build with a GUI, i.e. not opencv-python-headless)."""

    name = "window"
    reconnect = False

    def open(self, width: int, height: int, fps: float) -> None:
        import cv2

        try:
            cv2.namedWindow("endoveil live", cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise OutputError(
                "this OpenCV has no GUI: install opencv-python (not -headless) for --window, "
                "or use --http for a browser preview"
            ) from exc

    def write(self, item: Delivery) -> None:
        import cv2

        image = item.frame.to_ndarray(format="bgr24")
        colour = (60, 200, 60) if item.state == "clear" else (40, 160, 255)
        cv2.putText(image, item.state, (12, 32), cv2.FONT_HERSHEY_SIMPLEX, 0.9, colour, 2)
        cv2.imshow("endoveil live", image)
        cv2.waitKey(1)

    def close(self) -> None:
        import cv2

        cv2.destroyAllWindows()


class VirtualCameraSink(Sink):
    """A virtual camera (pyvirtualcam) that OBS, Zoom or Teams can pick up."""

    name = "virtual camera"

    def __init__(self) -> None:
        self._camera = None

    def open(self, width: int, height: int, fps: float) -> None:
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise OutputError(
                "--virtual-camera needs pyvirtualcam: pip install 'endoveil[live]'"
            ) from exc
        try:
            self._camera = pyvirtualcam.Camera(width=width, height=height, fps=fps)
        except RuntimeError as exc:
            raise OutputError(f"no virtual camera device: {exc}") from exc

    def write(self, item: Delivery) -> None:
        if self._camera is not None:
            self._camera.send(item.frame.to_ndarray(format="rgb24"))

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None


@dataclass
class SinkStats:
    delivered: int = 0
    dropped: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    close_error: str | None = None
    """Why the sink could not be finished (a recording that could not be finalized)."""


class SinkRunner(threading.Thread):
    """Feeds one sink from a bounded queue in its own thread; reopens it with back-off."""

    def __init__(self, sink: Sink, *, capacity: int = 60, max_backoff_s: float = 10.0) -> None:
        super().__init__(name=f"endoveil-{sink.name}", daemon=True)
        self.sink = sink
        self.stats = SinkStats()
        self._queue: queue.Queue[Delivery | None] = queue.Queue(maxsize=capacity)
        self._format: tuple[int, int, float] | None = None
        self._is_open = False
        self._dead = False
        self._retry_at = 0.0
        self._backoff = 0.5
        self._max_backoff = max_backoff_s

    def configure(self, width: int, height: int, fps: float) -> None:
        self._format = (width, height, fps)

    def offer(self, item: Delivery) -> None:
        """Queue a frame without ever blocking the live loop; a full queue drops it."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.stats.dropped += 1

    def stop(self) -> None:
        """Finish what is queued, close the sink and end the thread."""
        while True:
            try:
                self._queue.put(None, timeout=0.5)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.stats.dropped += 1
                except queue.Empty:
                    pass

    def run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            if self._dead or not self._ensure_open():
                self.stats.dropped += 1
                continue
            try:
                self.sink.write(item)
                self.stats.delivered += 1
            except Exception as exc:  # any sink failure must not end the live loop
                self._failed(exc)
        self._close()
        try:
            self.sink.close()  # also release what a sink that never opened holds (a socket)
        except Exception as exc:
            log.error("%s: releasing failed: %s", self.sink.name, exc)

    def _ensure_open(self) -> bool:
        if self._is_open:
            return True
        if self._format is None or time.monotonic() < self._retry_at:
            return False
        try:
            self.sink.open(*self._format)
        except Exception as exc:
            self._failed(exc)
            return False
        self._is_open = True
        self._backoff = 0.5
        log.info("%s: open", self.sink.name)
        return True

    def _failed(self, exc: BaseException) -> None:
        self.stats.failures += 1
        self.stats.errors.append(str(exc))
        self._close()
        if not self.sink.reconnect:
            self._dead = True
            log.error("%s: failed, stopped: %s", self.sink.name, exc)
            return
        self._retry_at = time.monotonic() + self._backoff
        log.warning("%s: failed (%s); retrying in %.1f s", self.sink.name, exc, self._backoff)
        self._backoff = min(self._backoff * 2, self._max_backoff)

    def _close(self) -> None:
        if not self._is_open:
            return
        self._is_open = False
        try:
            self.sink.close()
        except Exception as exc:
            self.stats.failures += 1
            self.stats.close_error = str(exc)
            self.stats.errors.append(f"closing: {exc}")
            log.error("%s: closing failed: %s", self.sink.name, exc)
