"""The queue: real progress, cooperative cancel, and state that survives a restart."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from endoveil.errors import MediaError
from endoveil.gui import GuiSettings
from endoveil.gui.jobs import JobCancelled, JobFailed, JobRunner, Tracker, plain_error
from endoveil.gui.store import Job, Store

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from fastapi.testclient import TestClient

Settle = Callable[..., list[dict[str, Any]]]
OpenClient = Callable[..., "AbstractContextManager[TestClient]"]


def test_tracker_reports_rate_and_eta(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    job = store.add_job("detect", "t", {})
    tracker = Tracker(store, job.id, threading.Event())
    clock = iter([100.0, 100.5, 101.0])
    tracker_time = pytest.MonkeyPatch()
    tracker_time.setattr("endoveil.gui.jobs.time.monotonic", lambda: next(clock))
    try:
        tracker.update("detect", 0, 100)
        tracker.update("detect", 25, 100)  # 25 frames in 0.5 s
        assert tracker.snapshot == {
            "stage": "detect",
            "done": 25,
            "total": 100,
            "fps": 50.0,
            "eta_s": 1.5,
        }
        tracker.update("write", 0, 100)  # a new stage starts its own rate
        assert tracker.snapshot["fps"] == 0.0 and tracker.snapshot["eta_s"] is None
    finally:
        tracker_time.undo()
    assert store.job(job.id).progress["stage"] == "write"  # type: ignore[union-attr]


def test_tracker_raises_once_cancelled(tmp_path: Path) -> None:
    cancel = threading.Event()
    tracker = Tracker(Store(tmp_path / "db.sqlite3"), 1, cancel)
    tracker.update("detect", 1, 10)
    cancel.set()
    with pytest.raises(JobCancelled):
        tracker.update("detect", 2, 10)
    # Not an Exception: code that isolates failures (the batch runner) lets it through.
    assert not issubclass(JobCancelled, Exception)


def test_runner_runs_in_order_cancels_and_reports_failures(
    tmp_path: Path, poll: Callable[..., Any]
) -> None:
    store = Store(tmp_path / "db.sqlite3")
    started = threading.Event()
    ran: list[int] = []

    def slow(job: Job, tracker: Tracker) -> dict[str, Any]:
        for done in range(10_000):
            tracker.update("work", done, 10_000)
            if done == 50:
                started.set()
            threading.Event().wait(0.001)
        return {}

    def quick(job: Job, tracker: Tracker) -> dict[str, Any]:
        ran.append(job.id)
        return {"answer": 42}

    def broken(job: Job, tracker: Tracker) -> dict[str, Any]:
        raise MediaError("not a video FFmpeg can read", path=Path("x.mp4"))

    def unverified(job: Job, tracker: Tracker) -> dict[str, Any]:
        raise JobFailed("verification failed", {"report": "r.json"})

    runner = JobRunner(store, {"slow": slow, "quick": quick, "broken": broken, "bad": unverified})
    slow_job = store.add_job("slow", "slow", {})
    jobs = [store.add_job(kind, kind, {}) for kind in ("quick", "broken", "bad", "quick")]
    runner.start()
    try:
        assert started.wait(10)
        assert runner.cancel(jobs[-1].id)  # still queued: cancelled without running
        assert runner.cancel(slow_job.id)  # running: stops at its next progress call
        poll(lambda: all(store.job(j.id).status not in ("queued", "running") for j in jobs))  # type: ignore[union-attr]
    finally:
        runner.stop()
    status = {j.id: store.job(j.id) for j in [slow_job, *jobs]}
    assert status[slow_job.id].status == "cancelled"  # type: ignore[union-attr]
    assert 0 < status[slow_job.id].progress["done"] < 10_000  # type: ignore[union-attr]
    assert status[jobs[0].id].result == {"answer": 42}  # type: ignore[union-attr]
    assert status[jobs[1].id].error == "x.mp4: not a video FFmpeg can read"  # type: ignore[union-attr]
    assert status[jobs[2].id].status == "failed"  # type: ignore[union-attr]
    assert status[jobs[2].id].result == {"report": "r.json"}  # type: ignore[union-attr]
    assert status[jobs[3].id].status == "cancelled"  # type: ignore[union-attr]
    assert ran == [jobs[0].id]
    assert not runner.cancel(jobs[0].id)


def test_plain_errors() -> None:
    assert plain_error(OSError(28, "No space left on device", "/out/x.mp4")) == (
        "No space left on device (/out/x.mp4)"
    )
    assert plain_error(ValueError("bad setting")) == "bad setting"
    assert plain_error(KeyError("k")).startswith("unexpected error (KeyError)")


def test_jobs_and_reviews_survive_a_restart(
    settings: GuiSettings, root: Path, open_client: OpenClient, settle: Settle
) -> None:
    from dataclasses import replace

    # A server that dies mid-job: its worker never ran, the job was left "running".
    paused = replace(settings, start_worker=False)
    with open_client(paused) as client:
        made = client.post("/api/work", json={"path": "clip.mp4"}).json()
        assert client.get("/api/jobs").json()[0]["status"] == "queued"
        assert client.app.state.gui.store.next_queued() is not None  # type: ignore[attr-defined]
    with open_client(paused) as client:
        (job,) = client.get("/api/jobs").json()
        assert job["status"] == "interrupted"
        (review,) = client.get("/api/reviews").json()
        assert review["id"] == made["reviews"][0] and review["status"] == "failed"
    with open_client(settings) as client:
        assert client.post(f"/api/jobs/{job['id']}/resume").status_code == 200
        (job,) = settle(client)
        assert job["status"] == "done"
        assert client.get("/api/reviews").json()[0]["status"] == "ready"


def test_cancel_a_queued_job(settings: GuiSettings, open_client: OpenClient) -> None:
    from dataclasses import replace

    with open_client(replace(settings, start_worker=False)) as client:
        client.post("/api/work", json={"path": "clip.mp4"})
        assert client.post("/api/jobs/1/cancel").json() == {"cancelled": 1}
        assert client.get("/api/jobs/1").json()["status"] == "cancelled"
        assert client.get("/api/reviews/1").json()["status"] == "failed"
        assert client.post("/api/jobs/1/cancel").status_code == 409
        assert client.post("/api/jobs/1/resume").status_code == 200
        assert client.get("/api/reviews/1").json()["status"] == "detecting"
        assert client.delete("/api/reviews/1").status_code == 409
