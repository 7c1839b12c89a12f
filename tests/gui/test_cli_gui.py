"""``endoveil gui``: the real command serves the app with a fresh token; unsafe use is refused."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ENDOVEIL = [sys.executable, "-m", "endoveil"]


def test_gui_serves_with_a_one_time_launch_link(
    tmp_path: Path, brightness_model_path: Path
) -> None:
    data = tmp_path / "data"
    command = [
        *ENDOVEIL,
        "gui",
        "--root",
        str(tmp_path),
        "--data-dir",
        str(data),
        "--model",
        str(brightness_model_path),
    ]
    # "Opening the browser" runs `true`: the launch page is written, nothing is shown.
    env = {**os.environ, "BROWSER": "true"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"(http://127\.0\.0\.1:\d+)/#launch=(\S+)", line)
            assert match, line
            base, launch = match.groups()
            page = data / "open.html"
            assert page.is_file() and stat.S_IMODE(page.stat().st_mode) == 0o600
            assert launch not in page.read_text()  # the browser got a launch token of its own
            assert httpx.get(f"{base}/api/session", timeout=10).status_code == 401
            got = httpx.post(f"{base}/api/launch", json={"launch": launch}, timeout=10)
            assert got.status_code == 200 and "set-cookie" not in got.headers
            token = got.json()["token"]
            assert httpx.post(f"{base}/api/launch", json={"launch": launch}).status_code == 403
            session = httpx.get(
                f"{base}/api/session", headers={"X-Endoveil-Token": token}, timeout=10
            )
            assert session.status_code == 200
            assert session.json()["roots"] == [str(tmp_path.resolve())]
            assert session.json()["model"] == brightness_model_path.name
            evil = httpx.get(f"{base}/", headers={"Host": "evil.example"}, timeout=10)
            assert evil.status_code == 421
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
    assert not (data / "open.html").exists(), "the launch page is removed on exit"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "--password-file"),
        (["--root", "/no/such/folder"], "not a folder"),
        (["--model", "/no/such/model.onnx"], "no such file"),
    ],
)
def test_gui_refuses_unsafe_or_wrong_use(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [*ENDOVEIL, "gui", "--no-browser", *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert message in proc.stderr


def test_gui_password_must_be_long_enough(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("short\n")
    proc = subprocess.run(
        [*ENDOVEIL, "gui", "--no-browser", "--host", "0.0.0.0", "--password-file", str(secret)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "at least 8 characters" in proc.stderr


def test_browser_is_sent_a_private_page_not_the_token(tmp_path: Path) -> None:
    from endoveil.cli_gui import _launch_page

    page = _launch_page(tmp_path / "open.html", "http://127.0.0.1:5/#launch=secret&x=1")
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert "launch=secret&amp;x=1" in page.read_text()
    assert "secret" not in page.as_uri()


def test_a_wildcard_address_answers_to_this_machines_names_and_addresses() -> None:
    import socket

    from endoveil.cli_gui import _machine_names

    names = _machine_names("0.0.0.0")
    assert socket.gethostname() in names and "0.0.0.0" in names
    try:  # browsers on the network use this machine's addresses, too
        addresses = {str(i[4][0]) for i in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        addresses = set()
    assert addresses <= set(names)
    assert _machine_names("192.0.2.7")[0] == "192.0.2.7"
