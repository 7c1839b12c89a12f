"""The live page's API on a file played in real time: status, MJPEG preview, recording."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from endoveil.detect.labels import Labels
from endoveil.media.probe import probe

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def test_live_session_preview_and_recording(
    client: TestClient, root: Path, poll: Callable[..., Any]
) -> None:
    assert client.get("/api/live/status").json()["state"] == "stopped"
    assert client.post("/api/live/record/start", json={"path": "rec.mp4"}).status_code == 409
    started = client.post("/api/live/start", json={"source": "clip.mp4", "loop": True})
    assert started.status_code == 200, started.text
    assert client.post("/api/live/start", json={"source": "clip.mp4"}).status_code == 409
    status = poll(lambda: (s := client.get("/api/live/status").json())["frames_out"] > 5 and s)
    assert status["running"] and status["state"] in ("clear", "anonymized", "fail-closed")
    assert status["fps"] > 0

    assert client.post("/api/live/record/start", json={"path": "rec.txt"}).status_code == 422
    assert client.post("/api/live/record/start", json={"path": "rec.mp4"}).status_code == 200
    assert client.post("/api/live/record/start", json={"path": "rec2.mp4"}).status_code == 409
    recording = client.get("/api/live/status").json()["recording"]
    assert recording == str(root / "rec.mp4")
    poll(lambda: client.get("/api/live/status").json()["frames_out"] > status["frames_out"] + 25)
    stopped = client.post("/api/live/record/stop").json()
    assert stopped["path"] == str(root / "rec.mp4") and stopped["frames"] > 0
    assert probe(root / "rec.mp4").frame_count == stopped["frames"]
    assert Labels.load(root / "rec.labels.json").video.frame_count == stopped["frames"]
    assert client.post("/api/live/record/stop").status_code == 409

    assert client.post("/api/live/stop").json()["state"] == "stopped"
    assert client.get("/api/live/preview.mjpg").status_code == 409


def test_live_preview_streams_jpeg_until_the_source_ends(client: TestClient) -> None:
    # A 2-s file without loop: the stream ends with the session (the test client reads it all).
    assert client.post("/api/live/start", json={"source": "clip.mp4"}).status_code == 200
    response = client.get("/api/live/preview.mjpg")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/x-mixed-replace")
    parts = response.content.split(b"--endoveilframe\r\n")[1:]
    assert len(parts) >= 5
    assert all(b"\r\n\r\n\xff\xd8" in part for part in parts)  # each part is a JPEG
    assert client.get("/api/live/status").json()["running"] is False


def test_live_sources_and_bad_settings(client: TestClient) -> None:
    sources = client.get("/api/live/sources").json()
    assert "rtsp" in sources["schemes"] and isinstance(sources["cameras"], list)
    assert (
        client.post("/api/live/start", json={"source": "clip.mp4", "action": "cut"}).status_code
        == 422
    )
    assert client.post("/api/live/start", json={"source": "missing.mp4"}).status_code == 404
