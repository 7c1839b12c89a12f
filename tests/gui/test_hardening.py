"""Security review of the GUI on 127.0.0.1 (issue 10, items 1-7): each attack as reproduced,
now refused."""

from __future__ import annotations

import hashlib
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from endoveil.gui import GuiSettings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

Settle = Callable[..., list[dict[str, Any]]]
HUGE_ID = 2**70


def _detect(client: TestClient, settle: Settle, path: str = "cases") -> list[dict[str, Any]]:
    made = client.post("/api/work", json={"path": path, "settings": {"margin_s": 0.2}}).json()
    assert all(j["status"] == "done" for j in settle(client))
    return [client.get(f"/api/reviews/{i}").json() for i in made["reviews"]]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_media_urls_are_signed_for_one_review_and_the_token_is_never_in_them(
    client: TestClient, settings: GuiSettings, settle: Settle
) -> None:
    first, _ = _detect(client, settle)
    url = first["video_url"]
    assert url.startswith("/api/reviews/1/video?exp=") and settings.token not in url
    fresh = client.get("/api/reviews/2/video-url").json()["url"]
    preview = client.get("/api/live/status").json()["preview_url"]
    assert preview.startswith("/api/live/preview.mjpg?exp=")
    del client.headers["X-Endoveil-Token"]  # from here on: a <video> or <img>, no header
    # The signed URL alone plays this review's video...
    assert client.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
    assert client.get(fresh, headers={"Range": "bytes=0-9"}).status_code == 206
    assert client.get(preview).status_code == 409  # past the check: no live session
    # ...and nothing else: not another review, not the API.
    assert client.get(url.replace("/reviews/1/", "/reviews/2/")).status_code == 403
    query = url.split("?", 1)[1]
    assert client.get(f"/api/reviews?{query}").status_code == 401
    assert client.get(f"/api/reviews/1?{query}").status_code == 401
    assert client.get(f"/api/reviews/1/thumb?frame=0&{query}").status_code == 403


def test_a_mapping_log_setting_never_writes_into_another_file(
    client: TestClient, root: Path, settle: Settle
) -> None:
    video = root / "cases" / "case-0412" / "VID1.mp4"
    before = (_sha(video), stat.S_IMODE(video.stat().st_mode))
    response = client.post(
        "/api/work", json={"path": "cases", "settings": {"mapping_log": str(video)}}
    )
    assert response.status_code == 400 and "video" in response.json()["detail"]
    notes = root / "notes.csv"
    notes.write_text("patient,notes\nSmith,ok\n")
    response = client.post(
        "/api/work", json={"path": "cases", "settings": {"mapping_log": "notes.csv"}}
    )
    assert response.status_code == 400
    assert "not an endoveil mapping log" in response.json()["detail"]
    assert client.get("/api/jobs").json() == []
    assert (_sha(video), stat.S_IMODE(video.stat().st_mode)) == before
    assert notes.read_text() == "patient,notes\nSmith,ok\n"


def test_requests_naming_another_host_are_refused(client: TestClient) -> None:
    for host in ["evil.example", "evil.example:80", "127.0.0.1.evil.example"]:
        for path in ["/", "/api/session", "/static/app.js"]:
            response = client.get(path, headers={"Host": host})
            assert response.status_code == 421, (host, path)
        assert (
            client.post("/api/launch", json={"launch": "x"}, headers={"Host": host}).status_code
            == 421
        )
    for host in ["127.0.0.1:8000", "localhost:1234", "[::1]:80", "127.0.0.1"]:
        assert client.get("/api/session", headers={"Host": host}).status_code == 200, host


def test_password_guesses_are_throttled_across_connections(
    root: Path, tmp_path: Path, brightness_model_path: Path, open_client: Callable[..., Any]
) -> None:
    import socket

    import uvicorn

    from endoveil.gui import create_app

    settings = GuiSettings(
        roots=(root,),
        data_dir=tmp_path / "d",
        model=brightness_model_path,
        password="correct horse",
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    codes: list[int] = []

    def guess(n: int) -> None:
        with httpx.Client() as c:  # one connection each
            r = c.post(
                f"http://127.0.0.1:{port}/api/login", json={"password": f"guess {n}"}, timeout=30
            )
            codes.append(r.status_code)

    try:
        started = time.monotonic()
        guesses = [threading.Thread(target=guess, args=(n,)) for n in range(6)]
        for g in guesses:
            g.start()
        for g in guesses:
            g.join()
        elapsed = time.monotonic() - started
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
    assert codes == [403] * 6
    assert elapsed >= 6 * 0.5 - 0.05, f"6 parallel guesses took only {elapsed:.2f} s"


def test_a_recording_never_replaces_an_existing_file(
    client: TestClient, root: Path, poll: Callable[..., Any]
) -> None:
    labels = root / "exported.labels.json"
    labels.write_text('{"verified": "export"}')
    assert (
        client.post("/api/live/start", json={"source": "clip.mp4", "loop": True}).status_code == 200
    )
    try:
        refused = client.post("/api/live/record/start", json={"path": "exported.mp4"})
        assert (
            refused.status_code == 409 and "exported.labels.json exists" in refused.json()["detail"]
        )
        (root / "taken.mp4").write_bytes(b"earlier")
        assert client.post("/api/live/record/start", json={"path": "taken.mp4"}).status_code == 409
    finally:
        client.post("/api/live/stop")
    assert labels.read_text() == '{"verified": "export"}'
    assert (root / "taken.mp4").read_bytes() == b"earlier"


def test_bad_requests_are_4xx_with_one_line(client: TestClient, root: Path, settle: Settle) -> None:
    for method, path in [
        ("GET", f"/api/reviews/{HUGE_ID}"),
        ("GET", f"/api/reviews/{HUGE_ID}/video"),
        ("DELETE", f"/api/reviews/{HUGE_ID}"),
        ("POST", f"/api/reviews/{HUGE_ID}/export"),
        ("GET", f"/api/jobs/{HUGE_ID}"),
        ("POST", f"/api/jobs/{HUGE_ID}/resume"),
        ("GET", "/api/reviews/0"),
    ]:
        assert client.request(method, path).status_code == 422, (method, path)
    (review,) = _detect(client, settle, "clip.mp4")
    rid = review["id"]
    for name, content in [
        ("labels.json", bytes(range(256)) * 8),
        ("intervals.csv", b"start_s,end_s\nnan,nan\n"),
    ]:
        response = client.post(f"/api/reviews/{rid}/import", files={"file": (name, content)})
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert "\n" not in detail and "Traceback" not in detail
    nan = client.post(
        f"/api/reviews/{rid}/import", files={"file": ("i.csv", b"start_s,end_s\nnan,nan\n")}
    )
    assert "finite" in nan.json()["detail"]


def test_private_files_are_owner_only(
    client: TestClient, settings: GuiSettings, settle: Settle
) -> None:
    first, _ = _detect(client, settle)
    for name in ["gui.sqlite3", "gui.sqlite3-wal", "gui.sqlite3-shm"]:
        path = settings.data_dir / name
        assert path.exists(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    merged = settings.data_dir / "reviews" / "1" / f"{first['pseudonym']}.mp4"
    assert not merged.is_symlink() and stat.S_IMODE(merged.stat().st_mode) == 0o600
