"""The GUI's memory: jobs and reviews in one SQLite database (WAL), so both survive a restart.

A job that was running when the server stopped cannot be picked up mid-way; on the next
start it is marked ``interrupted`` and the user may resume it (it starts over; outputs are
atomic, so nothing half-written was left). Queued jobs simply run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

__all__ = ["JOB_STATUSES", "Job", "JobStatus", "Review", "Store", "now_utc"]

JobStatus = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
JOB_STATUSES: tuple[JobStatus, ...] = (
    "queued",
    "running",
    "done",
    "failed",
    "cancelled",
    "interrupted",
)
RESUMABLE = ("failed", "cancelled", "interrupted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,              -- video | case
    source TEXT NOT NULL,            -- the video, or the case folder
    title TEXT NOT NULL,
    segments TEXT NOT NULL,          -- JSON list of the case's segment files
    pseudonym TEXT NOT NULL DEFAULT '',
    work_dir TEXT NOT NULL,
    media TEXT NOT NULL DEFAULT '',  -- the video reviewed (the source, or the merged case)
    status TEXT NOT NULL,            -- detecting | ready | exporting | exported | failed
    settings TEXT NOT NULL,
    result TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,              -- detect | export | batch
    title TEXT NOT NULL,
    review_id INTEGER REFERENCES reviews(id) ON DELETE SET NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    started_at TEXT NOT NULL DEFAULT '',
    finished_at TEXT NOT NULL DEFAULT ''
);
"""


def now_utc() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass
class Review:
    """One video (or merged case) whose labels the user checks before export."""

    id: int
    kind: str
    source: str
    title: str
    segments: list[str]
    pseudonym: str
    work_dir: str
    media: str
    status: str
    settings: dict[str, Any]
    result: dict[str, Any]
    created_at: str
    updated_at: str

    @property
    def detected_labels(self) -> Path:
        return Path(self.work_dir) / "detected.labels.json"

    @property
    def reviewed_labels(self) -> Path:
        return Path(self.work_dir) / "reviewed.labels.json"


@dataclass
class Job:
    """One unit of work for the worker thread."""

    id: int
    kind: str
    title: str
    review_id: int | None
    params: dict[str, Any]
    status: JobStatus
    progress: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    started_at: str = ""
    finished_at: str = ""


_JSON_COLUMNS = {"segments", "settings", "result", "params", "progress"}


def _row(row: sqlite3.Row) -> dict[str, Any]:
    return {k: json.loads(row[k]) if k in _JSON_COLUMNS else row[k] for k in row.keys()}  # noqa: SIM118


class Store:
    """The database at ``path``; safe to share between threads (one connection, one lock).

    Args:
        path: the SQLite file (created, with its folder, if missing).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # SQLite gives its -wal and -shm files the database file's mode: create that
        # owner-only before SQLite does (it would follow the umask), and tighten old ones.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
            if file.exists():
                file.chmod(0o600)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        self.interrupted_at_start = self._interrupt_running()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _interrupt_running(self) -> int:
        """Jobs left running by a server that stopped: they did not finish."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status='interrupted', finished_at=? WHERE status='running'",
                (now_utc(),),
            )
            return cursor.rowcount

    # reviews ---------------------------------------------------------------------------------
    def add_review(
        self,
        *,
        kind: str,
        source: str,
        title: str,
        segments: list[str],
        pseudonym: str,
        work_root: Path,
        settings: dict[str, Any],
    ) -> Review:
        """A new review; its work folder is ``work_root/<id>``."""
        now = now_utc()
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO reviews (kind, source, title, segments, pseudonym, work_dir, status,"
                " settings, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    kind,
                    source,
                    title,
                    json.dumps(segments),
                    pseudonym,
                    "",
                    "detecting",
                    json.dumps(settings),
                    now,
                    now,
                ),
            )
            review_id = int(cursor.lastrowid or 0)
            work_dir = work_root / str(review_id)
            self._db.execute("UPDATE reviews SET work_dir=? WHERE id=?", (str(work_dir), review_id))
        work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        review = self.review(review_id)
        assert review is not None
        return review

    def review(self, review_id: int) -> Review | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM reviews WHERE id=?", (review_id,)).fetchone()
        return Review(**_row(row)) if row else None

    def reviews(self) -> list[Review]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM reviews ORDER BY id").fetchall()
        return [Review(**_row(r)) for r in rows]

    def update_review(self, review_id: int, **values: Any) -> None:
        self._update("reviews", review_id, {**values, "updated_at": now_utc()})

    def delete_review(self, review_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM reviews WHERE id=?", (review_id,))

    # jobs ------------------------------------------------------------------------------------
    def add_job(
        self, kind: str, title: str, params: dict[str, Any], review_id: int | None = None
    ) -> Job:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO jobs (kind, title, review_id, params, status, created_at)"
                " VALUES (?,?,?,?,?,?)",
                (kind, title, review_id, json.dumps(params), "queued", now_utc()),
            )
            job_id = int(cursor.lastrowid or 0)
        job = self.job(job_id)
        assert job is not None
        return job

    def job(self, job_id: int) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return Job(**_row(row)) if row else None

    def jobs(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY id DESC").fetchall()
        return [Job(**_row(r)) for r in rows]

    def next_queued(self) -> Job | None:
        """The oldest queued job, now marked running (atomically)."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE status='queued' ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE jobs SET status='running', started_at=?, error='', progress='{}'"
                " WHERE id=?",
                (now_utc(), row["id"]),
            )
        return self.job(int(row["id"]))

    def update_job(self, job_id: int, **values: Any) -> None:
        self._update("jobs", job_id, values)

    def requeue(self, job_id: int) -> bool:
        """Queue a failed, cancelled or interrupted job again; False if it is not one."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status='queued', error='', finished_at='' WHERE id=? AND status IN"
                f" ({','.join('?' * len(RESUMABLE))})",
                (job_id, *RESUMABLE),
            )
            return cursor.rowcount == 1

    def delete_finished(self) -> int:
        """Forget jobs that are done, failed or cancelled (reviews and outputs stay)."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM jobs WHERE status IN ('done', 'failed', 'cancelled')"
            )
            return cursor.rowcount

    def cancel_queued(self, job_id: int) -> bool:
        """Cancel a job that has not started; False if it is not queued."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status='cancelled', finished_at=? WHERE id=? AND status='queued'",
                (now_utc(), job_id),
            )
            return cursor.rowcount == 1

    def _update(self, table: str, row_id: int, values: dict[str, Any]) -> None:
        if not values:
            return
        columns = ", ".join(f"{name}=?" for name in values)
        cells = [json.dumps(v) if k in _JSON_COLUMNS else v for k, v in values.items()]
        with self._lock:
            self._db.execute(f"UPDATE {table} SET {columns} WHERE id=?", (*cells, row_id))
