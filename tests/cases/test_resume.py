"""Kill ``endoveil cases`` (SIGKILL) mid-batch, run it again: finished cases are skipped,
the half-done one is redone cleanly, nothing is left behind."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from case_archive import FPS, make_segment
from endoveil.cases.state import STATE_DIR

TIMEOUT_S = 90


def _archive(root: Path) -> Path:
    # Longer cases than elsewhere, so that the kill lands while one is being written.
    for n in range(3):
        folder = root / f"Patient {n} Ärger"
        folder.mkdir(parents=True)
        for k in range(2):
            make_segment(folder / f"VID{k + 1}.MP4", 10 * n + k, 3 * FPS, oob=lambda i: i < 10)
    return root


def _records(out: Path) -> list[dict[str, str]]:
    records = []
    for path in (out / STATE_DIR).glob("*.json"):
        if path.name != "run.json" and not path.name.startswith("."):
            try:
                records.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                continue  # being replaced right now
    return records


def _half_done(out: Path, work: Path) -> bool:
    """One case finished, another one running with files on disk."""
    records = _records(out)
    running = [r["pseudonym"] for r in records if r["status"] == "running"]
    started = any(list(out.glob(f".{p}.*")) or any(work.glob(f"*/{p}/*")) for p in running)
    return any(r["status"] == "done" for r in records) and started


def test_killed_batch_resumes(tmp_path: Path, brightness_model_path: Path) -> None:
    archive = _archive(tmp_path / "in")
    out, log = tmp_path / "out", tmp_path / "private" / "log.csv"
    command = [
        sys.executable, "-m", "endoveil", "cases", str(archive), "-o", str(out),
        "--log", str(log), "--model", str(brightness_model_path), "--verify", "-q",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not _half_done(out, log.parent / "work"):
            assert proc.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline, "no half-done case seen"
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)

    before = {r["pseudonym"]: r["status"] for r in _records(out)}
    done_before = {p for p, s in before.items() if s == "done"}
    half_done = {p for p, s in before.items() if s == "running"}
    assert done_before and half_done
    finished_files = {p: p.stat().st_mtime_ns for d in done_before for p in out.glob(f"{d}.*")}

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert rerun.returncode == 0, rerun.stderr

    report = json.loads((out / "cases-report.json").read_text(encoding="utf-8"))
    statuses = {e["pseudonym"]: e["status"] for e in report["entries"]}
    assert {statuses[p] for p in done_before} == {"skipped"}
    assert {statuses[p] for p in half_done} == {"done"}, "the half-done case keeps its name"
    assert report["recovered_unfinished"] == len(half_done)
    assert {p: p.stat().st_mtime_ns for p in finished_files} == finished_files
    assert all(e["verified"] for e in report["entries"] if e["status"] == "done")

    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [STATE_DIR]
    assert not [p for p in out.rglob("*") if ".part" in p.name]
    assert not any(p.is_file() for p in (log.parent / "work").rglob("*"))
    assert len(list(out.glob("*.anonymized.mp4"))) == 3
    with open(log, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["case"] for r in rows) == [f"Patient {n} Ärger" for n in range(3)]
