"""Inputs that would make FFmpeg read other files never get past the GUI (security item 3)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bad_media import _playlist_text

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def test_a_playlist_is_refused_as_work_and_as_live_source(client: TestClient, root: Path) -> None:
    (root / "evil.m3u8").write_text(_playlist_text(root), encoding="utf-8")

    work = client.post("/api/work", json={"path": "evil.m3u8"})
    assert work.status_code == 422 and "not a video type" in work.json()["detail"]
    live = client.post("/api/live/start", json={"source": "evil.m3u8"})
    assert live.status_code == 422 and "not a video type" in live.json()["detail"]
    assert client.get("/api/live/status").json()["running"] is False
    assert client.get("/api/jobs").json() == []


def test_a_playlist_named_mp4_is_refused_by_live_and_by_detection(
    client: TestClient, root: Path, settle: Callable[..., Any]
) -> None:
    (root / "evil.mp4").write_text(_playlist_text(root), encoding="utf-8")
    live = client.post("/api/live/start", json={"source": "evil.mp4"})
    assert live.status_code == 422 and "refers to other files" in live.json()["detail"]

    case = root / "cases" / "case-0412"
    (case / "VID2.mp4").unlink()
    shutil.copy(root / "evil.mp4", case / "VID2.mp4")
    made = client.post("/api/work", json={"path": "cases"}).json()
    jobs = {j["id"]: j for j in settle(client)}
    first = jobs[made["jobs"][0]]
    assert first["status"] == "failed" and "refers to other files" in first["error"]
    review = client.get(f"/api/reviews/{made['reviews'][0]}").json()
    assert "frame_times" not in review  # nothing of the outside video reached the page
    assert client.get(f"/api/reviews/{made['reviews'][0]}/thumb?frame=0").status_code == 409
