"""Tokens, cookies, passwords and roots: every endpoint is guarded, no path leaves the roots."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from endoveil.gui import GuiSettings
from endoveil.gui.security import MediaSigner, PathRefused, Roots, check_secret

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

OpenClient = Callable[..., AbstractContextManager["TestClient"]]

# Every API endpoint (the static assets and the page itself hold no data).
ENDPOINTS = [
    ("GET", "/api/session"),
    ("GET", "/api/fs"),
    ("POST", "/api/work"),
    ("GET", "/api/reviews"),
    ("GET", "/api/reviews/1"),
    ("GET", "/api/reviews/1/video"),
    ("GET", "/api/reviews/1/thumb?frame=0"),
    ("PUT", "/api/reviews/1/segments"),
    ("POST", "/api/reviews/1/import"),
    ("POST", "/api/reviews/1/export"),
    ("DELETE", "/api/reviews/1"),
    ("GET", "/api/jobs"),
    ("GET", "/api/jobs/1"),
    ("POST", "/api/jobs/1/cancel"),
    ("POST", "/api/jobs/1/resume"),
    ("GET", "/api/jobs/1/report"),
    ("GET", "/api/live/sources"),
    ("POST", "/api/live/start"),
    ("POST", "/api/live/stop"),
    ("GET", "/api/live/status"),
    ("POST", "/api/live/record/start"),
    ("POST", "/api/live/record/stop"),
    ("GET", "/api/live/preview.mjpg"),
]
MEDIA = ["/api/reviews/1/video", "/api/reviews/1/thumb?frame=0", "/api/live/preview.mjpg"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_missing_token_is_401(anonymous: TestClient, method: str, path: str) -> None:
    response = anonymous.request(method, path)
    assert response.status_code == 401, response.text


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_wrong_token_is_403(anonymous: TestClient, method: str, path: str) -> None:
    response = anonymous.request(method, path, headers={"X-Endoveil-Token": "not-the-token"})
    assert response.status_code == 403, response.text


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_cookie_never_authenticates(
    anonymous: TestClient, settings: GuiSettings, method: str, path: str
) -> None:
    """Cookies of 127.0.0.1 reach every local port: another local server would get one. The
    token travels only in a header the page adds (item 1)."""
    anonymous.cookies.set("endoveil_token", settings.token)
    assert anonymous.request(method, path).status_code == 401
    anonymous.cookies.clear()


def test_the_page_sets_no_cookie_and_the_launch_token_works_once(
    anonymous: TestClient, settings: GuiSettings
) -> None:
    page = anonymous.get(f"/?token={settings.token}", follow_redirects=False)
    assert page.status_code == 200 and "set-cookie" not in page.headers
    launches = anonymous.app.state.gui.launches  # type: ignore[attr-defined]
    launch = launches.issue()
    assert anonymous.post("/api/launch", json={"launch": "guess"}).status_code == 403
    got = anonymous.post("/api/launch", json={"launch": launch})
    assert got.status_code == 200 and got.json() == {"token": settings.token}
    assert "set-cookie" not in got.headers
    again = anonymous.post("/api/launch", json={"launch": launch})
    assert again.status_code == 403 and "used already" in again.json()["detail"]


def test_session_token_in_the_query_is_not_accepted(
    anonymous: TestClient, settings: GuiSettings
) -> None:
    for path in ["/api/session", *MEDIA]:
        separator = "&" if "?" in path else "?"
        assert anonymous.get(f"{path}{separator}token={settings.token}").status_code == 401


def test_media_signatures_are_bound_to_one_path_and_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = MediaSigner(ttl_s=300)
    url = signer.sign("/api/reviews/1/video")
    exp = url.split("exp=")[1].split("&")[0]
    sig = url.split("sig=")[1]
    assert signer.check("/api/reviews/1/video", exp, sig)
    assert not signer.check("/api/reviews/2/video", exp, sig)  # another review
    assert not signer.check("/api/reviews/1/video", str(int(exp) + 1), sig)  # a longer life
    assert not MediaSigner().check("/api/reviews/1/video", exp, sig)  # another server start
    import time

    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 301)
    assert not signer.check("/api/reviews/1/video", exp, sig)


def test_page_and_assets_are_local_and_served_without_token(anonymous: TestClient) -> None:
    for path in ["/", "/static/app.js", "/static/style.css"]:
        response = anonymous.get(path)
        assert response.status_code == 200
        # Nothing from the internet: the GUI works offline.
        assert "http://" not in response.text and "https://" not in response.text
    page = anonymous.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_password_login(settings: GuiSettings, open_client: OpenClient) -> None:
    with open_client(replace(settings, password="correct horse"), token=False) as c:
        assert c.get("/api/auth").json() == {"password": True}
        assert c.post("/api/login", json={"password": "wrong"}).status_code == 403
        assert c.get("/api/session").status_code == 401
        ok = c.post("/api/login", json={"password": "correct horse"})
        assert ok.status_code == 200 and "set-cookie" not in ok.headers
        assert c.get("/api/session").status_code == 401  # nothing is remembered by cookie
        headers = {"X-Endoveil-Token": ok.json()["token"]}
        assert c.get("/api/session", headers=headers).json()["password"] is True


def test_no_password_login_on_localhost(anonymous: TestClient) -> None:
    assert anonymous.get("/api/auth").json() == {"password": False}
    assert anonymous.post("/api/login", json={"password": "x"}).status_code == 404


def test_check_secret() -> None:
    assert check_secret("abc", "abc")
    assert not check_secret("abd", "abc")
    assert not check_secret(None, "abc")
    assert not check_secret("", "abc")


def test_roots_resolve(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    roots = Roots([root])
    assert roots.resolve("a") == root / "a"
    assert roots.resolve(root / "a" / ".." / "a") == root / "a"
    assert roots.resolve(root / "new" / "file.mp4") == root / "new" / "file.mp4"
    for bad in ["..", "a/../../outside", str(outside), "/etc/passwd", "link", "link/x", "", "a\0b"]:
        with pytest.raises(PathRefused):
            roots.resolve(bad)


@pytest.fixture
def escape_link(root: Path, tmp_path: Path) -> Path:
    """A symlink inside the root that points outside it."""
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "other-patient.mp4").write_bytes(b"x")
    link = root / "escape"
    link.symlink_to(outside)
    return link


@pytest.mark.parametrize(
    "path", ["..", "../..", "cases/../..", "/etc", "/", "escape", "escape/other-patient.mp4"]
)
def test_fs_refuses_traversal(client: TestClient, escape_link: Path, path: str) -> None:
    response = client.get("/api/fs", params={"path": path})
    assert response.status_code == 403, response.text


def test_fs_hides_links_out_of_the_roots(client: TestClient, root: Path, escape_link: Path) -> None:
    names = [e["name"] for e in client.get("/api/fs", params={"path": str(root)}).json()["entries"]]
    assert names == ["cases", "clip.mp4"]


@pytest.mark.parametrize(
    "body",
    [
        {"path": "../"},
        {"path": "/etc/passwd"},
        {"path": "escape/other-patient.mp4"},
        {"path": "clip.mp4", "settings": {"output": "/tmp/elsewhere"}},
        {"path": "clip.mp4", "settings": {"output": "../out"}},
        {"path": "clip.mp4", "settings": {"mapping_log": "/var/tmp/log.csv"}},
        {"path": "clip.mp4", "settings": {"mapping_log": "escape/log.csv"}},
        {"path": "clip.mp4", "settings": {"pseudonym": "hmac", "secret_file": "/etc/hostname"}},
    ],
)
def test_work_refuses_paths_outside_the_roots(
    client: TestClient, escape_link: Path, body: dict[str, object]
) -> None:
    response = client.post("/api/work", json=body)
    assert response.status_code == 403, response.text
    assert client.get("/api/jobs").json() == []


def test_live_refuses_files_outside_the_roots(client: TestClient, escape_link: Path) -> None:
    for source in ["/etc/passwd", "../x.mp4", "escape/other-patient.mp4"]:
        assert client.post("/api/live/start", json={"source": source}).status_code == 403
    # lavfi can read any file (movie=...), file: URLs too: refused outright.
    for source in ["lavfi:movie=/etc/passwd", "file:/etc/passwd"]:
        assert client.post("/api/live/start", json={"source": source}).status_code == 400
    response = client.post("/api/live/record/start", json={"path": "/tmp/rec.mp4"})
    assert response.status_code == 403


def test_data_folder_and_database_are_owner_only(client: TestClient, settings: GuiSettings) -> None:
    assert os.stat(settings.data_dir).st_mode & 0o777 == 0o700
    assert os.stat(settings.data_dir / "gui.sqlite3").st_mode & 0o777 == 0o600


def test_work_refuses_a_case_whose_segment_links_outside(
    client: TestClient, root: Path, tmp_path: Path
) -> None:
    from clips import write_clip

    outside = write_clip(tmp_path / "elsewhere.mp4", 10)
    case = root / "linked" / "Case 1"
    case.mkdir(parents=True)
    (case / "VID1.mp4").symlink_to(outside)
    response = client.post("/api/work", json={"path": str(root / "linked")})
    assert response.status_code == 403
    assert "outside the allowed folders" in response.json()["detail"]
