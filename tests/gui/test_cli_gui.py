"""``endoveil gui``: the real command serves the app with a fresh token; unsafe use is refused."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ENDOVEIL = [sys.executable, "-m", "endoveil"]


def test_gui_serves_with_a_token(tmp_path: Path, brightness_model_path: Path) -> None:
    command = [
        *ENDOVEIL,
        "gui",
        "--no-browser",
        "--root",
        str(tmp_path),
        "--data-dir",
        str(tmp_path / "data"),
        "--model",
        str(brightness_model_path),
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
            assert match, line
            base, token = match.groups()
            assert httpx.get(f"{base}/api/session", timeout=10).status_code == 401
            session = httpx.get(
                f"{base}/api/session", headers={"X-Endoveil-Token": token}, timeout=10
            )
            assert session.status_code == 200
            assert session.json()["roots"] == [str(tmp_path.resolve())]
            assert session.json()["model"] == brightness_model_path.name
        finally:
            proc.terminate()
            proc.wait(timeout=20)


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
    import stat

    from endoveil.cli_gui import _launch_page

    page = _launch_page(tmp_path, "http://127.0.0.1:5/?token=secret&x=1")
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert "token=secret&amp;x=1" in page.read_text()
    assert "secret" not in page.as_uri()
