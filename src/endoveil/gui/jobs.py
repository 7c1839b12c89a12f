"""The queue: one worker thread runs one job at a time, with real progress and cancel.

Progress is what the pipeline reports — frames done of frames in total, per stage — from
which the tracker derives the stage's rate (fps) and time left (ETA); nothing is estimated
ahead of the work. Cancel is cooperative: the next progress call raises `JobCancelled`,
which unwinds the pipeline (outputs are atomic: nothing half-written is left). It derives
from BaseException so that the batch runner, which isolates each case's ``Exception``,
lets it through instead of counting it as one failed case.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from endoveil.errors import EndoveilError, OutputExistsError
from endoveil.gui.store import Job, Store, now_utc

__all__ = ["JobCancelled", "JobFailed", "JobRunner", "Tracker", "plain_error"]

log = logging.getLogger("endoveil.gui")

WRITE_INTERVAL_S = 0.5  # progress reaches the database (and the page) twice a second
MIN_RATE_WINDOW_S = 0.2
IDLE_POLL_S = 1.0

Handler = Callable[[Job, "Tracker"], dict[str, Any]]


class JobCancelled(BaseException):
    """Raised from a progress callback once the user cancelled the job."""


class JobFailed(Exception):
    """A job that ran to the end but must not count as done (e.g. verify found a problem).

    Args:
        message: what went wrong, in plain words.
        result: what the page should still show (e.g. the report's link).
    """

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result or {}


def plain_error(exc: BaseException) -> str:
    """One line a clinician can act on, for any error a job may raise."""
    if isinstance(exc, OutputExistsError):
        # The CLI says "use --force"; here the way out is a button.
        name = exc.path.name if exc.path else "an output"
        return (
            f"{name} is already in the output folder (an earlier export): open the review "
            "and press “Replace the earlier export…”, or choose another output folder"
        )
    if isinstance(exc, EndoveilError | JobFailed):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    if isinstance(exc, ValueError | NotADirectoryError):
        return str(exc)
    return f"unexpected error ({type(exc).__name__}): {exc}"


class Tracker:
    """Turns (stage, done, total) calls into progress rows; raises once cancelled.

    Args:
        store: where progress is written.
        job_id: the job.
        cancel: set to cancel the job.
    """

    def __init__(self, store: Store, job_id: int, cancel: threading.Event) -> None:
        self.store, self.job_id, self.cancel = store, job_id, cancel
        self.snapshot: dict[str, Any] = {}
        self._stage = ""
        self._t0 = self._d0 = 0.0
        self._last_write = 0.0

    def update(self, stage: str, done: int, total: int) -> None:
        """Record progress of ``stage``; raise `JobCancelled` if the job was cancelled."""
        if self.cancel.is_set():
            raise JobCancelled
        now = time.monotonic()
        if stage != self._stage:
            self._stage, self._t0, self._d0 = stage, now, float(done)
        elapsed = now - self._t0
        finished = done >= total and elapsed > 0
        fps = (done - self._d0) / elapsed if elapsed >= MIN_RATE_WINDOW_S or finished else 0.0
        eta = (total - done) / fps if fps > 0 else None
        self.snapshot = {
            "stage": stage,
            "done": done,
            "total": total,
            "fps": round(fps, 1),
            "eta_s": round(eta, 1) if eta is not None else None,
        }
        if now - self._last_write >= WRITE_INTERVAL_S or done >= total:
            self._last_write = now
            self.store.update_job(self.job_id, progress=self.snapshot)

    def stage(self, name: str) -> Callable[[int, int], None]:
        """A ``(done, total)`` callback for one stage (the offline pipeline's kind)."""
        return lambda done, total: self.update(name, done, total)


class JobRunner(threading.Thread):
    """Runs queued jobs one after the other until `stop`.

    Args:
        store: the jobs.
        handlers: what to do for each job kind; returns the job's result.
    """

    def __init__(self, store: Store, handlers: dict[str, Handler]) -> None:
        super().__init__(name="endoveil-gui-jobs", daemon=True)
        self.store, self.handlers = store, handlers
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._cancel = threading.Event()
        self._current: int | None = None
        self._lock = threading.Lock()

    def wake(self) -> None:
        """Look for queued jobs now."""
        self._wake.set()

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; False if it is neither."""
        if self.store.cancel_queued(job_id):
            return True
        with self._lock:
            if self._current == job_id:
                self._cancel.set()
                return True
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Interrupt the running job (it is marked ``interrupted``) and end the thread."""
        self._stopping.set()
        self._cancel.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        while not self._stopping.is_set():
            job = self.store.next_queued()
            if job is None:
                self._wake.wait(IDLE_POLL_S)
                self._wake.clear()
                continue
            with self._lock:
                self._current = job.id
                self._cancel.clear()
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._current = None

    def _run(self, job: Job) -> None:
        tracker = Tracker(self.store, job.id, self._cancel)
        values: dict[str, Any]
        try:
            result = self.handlers[job.kind](job, tracker)
            values = {"status": "done", "result": result}
        except JobCancelled:
            values = {"status": "interrupted" if self._stopping.is_set() else "cancelled"}
        except JobFailed as exc:
            values = {"status": "failed", "error": str(exc), "result": exc.result}
        except Exception as exc:  # any failure ends this job only; the queue goes on
            log.exception("job %s failed", job.id)
            values = {"status": "failed", "error": plain_error(exc)}
        self.store.update_job(job.id, **values, progress=tracker.snapshot, finished_at=now_utc())
