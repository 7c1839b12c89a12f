"""GUI fixtures: a root folder with generated cases, the brightness model, the app and a
real server."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("fastapi", reason="the gui extra is not installed")

if TYPE_CHECKING:
    from fastapi import FastAPI

from clips import write_clip
from endoveil.gui import GuiSettings, create_app

with warnings.catch_warnings():
    # Starlette asks for httpx2 but works with httpx, which the dev extra installs.
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

FPS = 25
SEGMENT_FRAMES = 50  # 2 s per segment file
# case -> (segment file, out-of-body frames of that segment)
CASES: dict[str, list[tuple[str, range]]] = {
    "case-0412": [("VID1.mp4", range(20, 35)), ("VID2.mp4", range(0, 0))],
    "case-0413": [("VID1.mp4", range(0, 0)), ("VID2.mp4", range(10, 30))],
}


def make_cases(folder: Path) -> Path:
    """Two cases of two 2-s segments each (320x240, 25 fps); bright frames are out of body."""
    for case, segments in CASES.items():
        (folder / case).mkdir(parents=True)
        for name, oob in segments:
            write_clip(folder / case / name, SEGMENT_FRAMES, oob=lambda i, r=oob: i in r)
    return folder


@pytest.fixture(scope="session")
def cases_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cases(tmp_path_factory.mktemp("cases-template") / "cases")


@pytest.fixture
def root(tmp_path: Path, cases_template: Path) -> Path:
    """The GUI's only allowed folder: ``cases/`` and a single video ``clip.mp4``."""
    folder = tmp_path / "root"
    folder.mkdir()
    shutil.copytree(cases_template, folder / "cases")
    shutil.copy(cases_template / "case-0413" / "VID2.mp4", folder / "clip.mp4")
    return folder


@pytest.fixture
def settings(root: Path, tmp_path: Path, brightness_model_path: Path) -> GuiSettings:
    return GuiSettings(roots=(root,), data_dir=tmp_path / "data", model=brightness_model_path)


@contextmanager
def _open_client(settings: GuiSettings, *, token: bool = True) -> Iterator[TestClient]:
    # The Host a browser on this machine sends (other names are refused: DNS rebinding).
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as test_client:
        if token:
            test_client.headers["X-Endoveil-Token"] = settings.token
        yield test_client


@pytest.fixture
def open_client() -> Callable[..., AbstractContextManager[TestClient]]:
    """Opens a client on an app made from the given settings (``token=False``: anonymous)."""
    return _open_client


@pytest.fixture
def client(settings: GuiSettings) -> Iterator[TestClient]:
    """A client carrying the session token (its header)."""
    with _open_client(settings) as test_client:
        yield test_client


@pytest.fixture
def anonymous(settings: GuiSettings) -> Iterator[TestClient]:
    """A client without the token."""
    with _open_client(settings, token=False) as test_client:
        yield test_client


@pytest.fixture
def poll() -> Callable[..., Any]:
    """``poll(check, timeout, what)`` waits until ``check()`` is truthy and returns it."""
    return wait_for


@pytest.fixture
def settle() -> Callable[..., list[dict[str, Any]]]:
    """``settle(client)`` waits until no job is queued or running and returns the jobs."""
    return wait_jobs


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_jobs(client: TestClient, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Wait until no job is queued or running; returns the jobs."""

    def settled() -> list[dict[str, Any]] | None:
        jobs = client.get("/api/jobs").json()
        busy = any(j["status"] in ("queued", "running") for j in jobs)
        return None if busy else jobs

    return wait_for(settled, timeout, "the queue to settle")


@pytest.fixture
def served_app(settings: GuiSettings) -> FastAPI:
    """The app the `server` fixture serves."""
    return create_app(settings)


@pytest.fixture
def launch_url(server: str, served_app: FastAPI) -> Callable[[], str]:
    """Makes links like the one ``endoveil gui`` prints (a one-time launch token each)."""
    return lambda: f"{server}/#launch={served_app.state.gui.launches.issue()}"


@pytest.fixture
def server(served_app: FastAPI) -> Iterator[str]:
    """A real uvicorn server in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(served_app, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: uv.started, 20, "the server to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(30)
        sock.close()
