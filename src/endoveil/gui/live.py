"""The live page's session: one `LiveSession` at a time, its preview as JPEG, recording.

The live loop's `JpegSink` keeps only the latest anonymized picture as a JPEG; the app
streams it as MJPEG behind the session token. Frames reach it only through the live
loop, so the browser sees exactly what any other sink gets: judged, and hidden when unsure.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from endoveil.detect.classifier import OnnxClassifier
from endoveil.errors import OutputExistsError
from endoveil.gui.jobs import plain_error
from endoveil.live.loop import LiveConfig, LiveSession
from endoveil.live.preview import JpegSink
from endoveil.live.sinks import RecordSink
from endoveil.live.sources import open_source

__all__ = ["LiveManager", "LiveRequest"]

log = logging.getLogger("endoveil.gui")


@dataclass(frozen=True)
class LiveRequest:
    """What the user asked for: a source (camera, stream URL or file) and how to hide."""

    source: str
    action: str = "blur"
    threshold: float | None = None
    loop: bool = False


class LiveManager:
    """Starts, stops and records the one live session of this server.

    Args:
        model: ONNX model; None for the embedded one.
    """

    def __init__(self, model: Path | None) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._session: LiveSession | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._preview: JpegSink | None = None
        self._record: RecordSink | None = None
        self._source = ""
        self._error = ""
        self._last_recording: dict[str, Any] = {}

    @property
    def preview(self) -> JpegSink | None:
        return self._preview

    def start(self, request: LiveRequest) -> None:
        """Open the source and run the session in a thread.

        Raises:
            RuntimeError: a session is running already.
            EndoveilError, ValueError: the model, source or settings are not usable.
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("a live session is running; stop it first")
            config = LiveConfig(action=request.action, threshold=request.threshold)  # type: ignore[arg-type]
            classifier = OnnxClassifier(self.model)
            source = open_source(request.source, realtime=True, loop=request.loop)
            preview = JpegSink(max_fps=12.0)
            session = LiveSession(source, classifier, [preview], config)
            self._stop = threading.Event()
            self._session, self._preview, self._record = session, preview, None
            self._source, self._error = request.source, ""
            self._thread = threading.Thread(
                target=self._run, args=(session, self._stop), name="endoveil-gui-live", daemon=True
            )
            self._thread.start()

    def _run(self, session: LiveSession, stop: threading.Event) -> None:
        try:
            session.run(stop)
        except Exception as exc:  # shown on the live page; the server goes on
            log.exception("live session failed")
            self._error = plain_error(exc)
        finally:
            if self._record is not None:
                self._finish_recording(session, self._record)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the session (a recording is finalized first)."""
        with self._lock:
            thread, self._thread = self._thread, None
            session = self._session
            record = self._record
        if session is not None and record is not None:
            self._finish_recording(session, record)
        self._stop.set()
        if thread is not None:
            thread.join(timeout)

    def start_recording(self, path: Path) -> None:
        """Record the anonymized output to ``path`` (MP4, with its labels JSON beside it).

        Raises:
            RuntimeError: no session runs, or it records already.
            FileExistsError: ``path`` exists.
        """
        with self._lock:
            if self._session is None or self._thread is None or not self._thread.is_alive():
                raise RuntimeError("start the live session first")
            if self._record is not None:
                raise RuntimeError("already recording")
            if not path.parent.is_dir():
                raise FileNotFoundError(f"{path.parent}: folder does not exist")
            # The recording is two files (the video and its labels): the sink replaces
            # neither, e.g. the labels of an earlier export of the same name.
            try:
                self._record = RecordSink(path)
            except OutputExistsError as exc:
                raise FileExistsError(f"{exc.path} exists; choose another name") from exc
            self._session.add_sink(self._record)

    def stop_recording(self) -> dict[str, Any]:
        """Finish the recording; returns what was written.

        Raises:
            RuntimeError: nothing is being recorded.
        """
        with self._lock:
            session, record = self._session, self._record
        if session is None or record is None:
            raise RuntimeError("not recording")
        return self._finish_recording(session, record)

    def _finish_recording(self, session: LiveSession, record: RecordSink) -> dict[str, Any]:
        with self._lock:
            if self._record is not record:
                return self._last_recording
            self._record = None
        stats = session.remove_sink(record)
        # Where it went: under the asked name, another free one (a file appeared meanwhile)
        # or nowhere (it could not be finalized, and the page says why).
        self._last_recording = {
            "path": str(record.placed) if record.placed is not None else "",
            "frames": stats.delivered if record.placed is not None else 0,
            "errors": stats.errors,
        }
        return self._last_recording

    def status(self) -> dict[str, Any]:
        """The page's view: running or not, the loop's state, fps, latency, recording."""
        with self._lock:
            session, thread, record = self._session, self._thread, self._record
        running = thread is not None and thread.is_alive()
        status: dict[str, Any] = {"running": running, "source": self._source if running else ""}
        if session is not None and running:
            status.update(session.status.as_dict())
        else:
            status["state"] = "stopped"
        status["recording"] = str(record.path) if record is not None else ""
        status["last_recording"] = self._last_recording
        status["error"] = self._error
        return status
