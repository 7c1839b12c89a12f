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
from endoveil.gui.security import COOKIE, PathRefused, Roots, check_secret

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
    anonymous.cookies.set("endoveil_token", "not-the-token")
    assert anonymous.request(method, path).status_code == 403
    anonymous.cookies.clear()


def test_page_with_token_sets_a_strict_httponly_cookie(
    anonymous: TestClient, settings: GuiSettings
) -> None:
    response = anonymous.get(f"/?token={settings.token}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert f"endoveil_token={settings.token}" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    # The cookie alone now authenticates the API.
    assert anonymous.get("/api/session").status_code == 200
    assert anonymous.get("/?token=wrong", follow_redirects=False).status_code == 403


def test_query_token_only_on_media_urls(anonymous: TestClient, settings: GuiSettings) -> None:
    assert anonymous.get(f"/api/session?token={settings.token}").status_code == 401
    for path in MEDIA:
        separator = "&" if "?" in path else "?"
        response = anonymous.get(f"{path}{separator}token={settings.token}")
        # Past the token check: the review or session does not exist yet.
        assert response.status_code in (404, 409), (path, response.text)


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
        assert c.post("/api/login", json={"password": "correct horse"}).status_code == 200
        assert c.get("/api/session").json()["password"] is True


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


def test_cookie_alone_cannot_change_anything(anonymous: TestClient, settings: GuiSettings) -> None:
    """Another page on 127.0.0.1 (any port) gets the cookie sent along, but cannot add the
    page's request header without a CORS preflight, and its Origin differs."""
    anonymous.get(f"/?token={settings.token}")
    assert anonymous.cookies.get(COOKIE)
    assert anonymous.get("/api/jobs").status_code == 200  # reading with the cookie is fine
    forged = anonymous.post("/api/reviews/1/export", headers={"Origin": "http://127.0.0.1:8888"})
    assert forged.status_code == 403
    no_header = anonymous.post("/api/reviews/1/export")
    assert no_header.status_code == 403
    ours = anonymous.post(
        "/api/reviews/1/export",
        headers={"X-Endoveil-Request": "1", "Origin": "http://testserver"},
    )
    assert ours.status_code == 404  # accepted, then: no such review


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
