"""The command line: exit codes, one-line errors, no traceback, no partial output.

Most cases run in-process with Typer's runner; a few run ``python -m endoveil`` for real,
where only a real process can show the behaviour (signals, file-size limits, the entry point).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from bad_media import BAD_INPUTS, fingerprint, good_clip, leftovers
from clips import write_clip
from endoveil.cli import app
from endoveil.detect.classifier import ScriptedClassifier
from endoveil.detect.labels import Labels
from endoveil.errors import ModelError

runner = CliRunner()


def _anonymize(*args: str | Path, model: Path) -> Result:
    return runner.invoke(app, ["anonymize", *map(str, args), "--model", str(model), "-q"])


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _assert_one_error(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr
    lines = _error_lines(stderr)
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return good_clip(tmp_path_factory.mktemp("cli") / "clip.mp4")


@pytest.mark.parametrize(("name", "case"), BAD_INPUTS.items(), ids=list(BAD_INPUTS))
def test_bad_input_exits_1_with_one_line(
    name: str,
    case: tuple[Callable[[Path], Path], str],
    brightness_model_path: Path,
    tmp_path: Path,
) -> None:
    build, reason = case
    path = build(tmp_path)
    before = fingerprint(path)
    out = tmp_path / "out"

    result = _anonymize(path, "-o", out, model=brightness_model_path)

    assert result.exit_code == 1
    _assert_one_error(result.stderr, str(path), reason)
    assert leftovers(out) == []
    assert fingerprint(path) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--action", "smudge"], "--action"),
        (["--mode", "turbo"], "--mode"),
        (["--labels-format", "xml"], "--labels-format"),
        (["--threshold", "0"], "--threshold"),
        (["--threshold", "1.5"], "--threshold"),
        (["--margin", "-1"], "--margin"),
        (["--sample-every", "0"], "sample-every"),
        (["--crf", "60"], "crf"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], needle: str, clip: Path, brightness_model_path: Path, tmp_path: Path
) -> None:
    result = _anonymize(clip, "-o", tmp_path / "out", *args, model=brightness_model_path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    assert needle in result.stderr
    assert leftovers(tmp_path / "out") == []


def test_anonymize_writes_labels_and_video_that_verify(
    clip: Path, brightness_model_path: Path, tmp_path: Path
) -> None:
    before = fingerprint(clip)
    result = _anonymize(clip, "-o", tmp_path, "--margin", "0.2", model=brightness_model_path)
    assert result.exit_code == 0, result.stderr
    labels_path, video = tmp_path / "clip.labels.json", tmp_path / "clip.anonymized.mp4"
    assert sorted(leftovers(tmp_path)) == sorted([labels_path.name, video.name])
    labels = Labels.load(labels_path)
    assert labels.oob_mask()[10:20].all()
    assert fingerprint(clip) == before

    checked = runner.invoke(app, ["verify", str(clip), str(video), str(labels_path), "-q"])
    assert checked.exit_code == 0, checked.output
    assert "OK" in checked.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--labels-only"], ["clip.labels.json"]),
        (["--labels-only", "--labels-format", "roban"], ["clip.labels.json", "clip_labels.json"]),
        (
            ["--labels-only", "--labels-format", "oobnet-csv"],
            ["clip.labels.json", "clip.oobnet.csv"],
        ),
        (["--action", "cut", "--sample-every", "3"], ["clip.anonymized.mp4", "clip.labels.json"]),
    ],
)
def test_output_files_follow_the_options(
    args: list[str], expected: list[str], clip: Path, brightness_model_path: Path, tmp_path: Path
) -> None:
    result = _anonymize(clip, "-o", tmp_path, *args, model=brightness_model_path)
    assert result.exit_code == 0, result.stderr
    assert leftovers(tmp_path) == expected
    labels = Labels.load(tmp_path / "clip.labels.json")
    if "--sample-every" in args:
        assert labels.params["sample_every"] == 3
        gaps = np.diff(labels.index)  # the first decoded frame at or after every 3rd
        assert labels.index[0] == 0 and gaps.min() >= 3 and gaps.max() <= 5, labels.index
    if "roban" in args:
        roban = json.loads((tmp_path / "clip_labels.json").read_text(encoding="utf-8"))
        assert roban["labels"] == labels.oob_mask().astype(int).tolist()


def test_existing_outputs_need_force(
    clip: Path, brightness_model_path: Path, tmp_path: Path
) -> None:
    assert _anonymize(clip, "-o", tmp_path, model=brightness_model_path).exit_code == 0
    written = {p: fingerprint(tmp_path / p) for p in leftovers(tmp_path)}

    again = _anonymize(clip, "-o", tmp_path, model=brightness_model_path)
    assert again.exit_code == 1
    _assert_one_error(again.stderr, "exists", "--force")
    assert {p: fingerprint(tmp_path / p) for p in leftovers(tmp_path)} == written

    forced = _anonymize(clip, "-o", tmp_path, "--force", model=brightness_model_path)
    assert forced.exit_code == 0, forced.stderr
    assert leftovers(tmp_path) == sorted(written)


def test_one_bad_input_among_good_ones(
    clip: Path, brightness_model_path: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.mp4"
    out = tmp_path / "out"
    result = _anonymize(missing, clip, "-o", out, model=brightness_model_path)
    assert result.exit_code == 1
    _assert_one_error(result.stderr, str(missing), "no such file")
    assert leftovers(out) == ["clip.anonymized.mp4", "clip.labels.json"]


def test_output_folder_under_a_file(
    clip: Path, brightness_model_path: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    result = _anonymize(clip, "-o", blocker / "out", model=brightness_model_path)
    assert result.exit_code == 1
    _assert_one_error(result.stderr, str(blocker / "out"), "output folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions; see the test above")
def test_output_folder_not_writable(
    clip: Path, brightness_model_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o500)
    try:
        result = _anonymize(clip, "-o", out, model=brightness_model_path)
    finally:
        out.chmod(0o700)
    assert result.exit_code == 1
    _assert_one_error(result.stderr, "not writable")
    assert leftovers(out) == []


def test_missing_model_is_one_error(clip: Path, tmp_path: Path) -> None:
    result = _anonymize(clip, "-o", tmp_path, model=tmp_path / "nope.onnx")
    assert result.exit_code == 1
    _assert_one_error(result.stderr, "nope.onnx", "model file not found")
    assert leftovers(tmp_path) == []


def test_unloadable_model_stops_the_run_with_one_error(clip: Path, tmp_path: Path) -> None:
    """The model loads while the first input is probed; when it cannot load, the run stops
    there with one error, before any output of any input."""
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    out = tmp_path / "out"
    result = _anonymize(clip, clip.with_name("other.mp4"), "-o", out, model=broken)
    assert result.exit_code == 1
    _assert_one_error(result.stderr, "broken.onnx", "not a loadable ONNX model")
    assert leftovers(out) == []


def test_a_model_that_fails_on_one_input_does_not_stop_the_others(
    clip: Path, brightness_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a model that cannot load stops the run; inference failing on one input (e.g. out
    of memory) fails that input alone."""

    def fails(images: np.ndarray) -> np.ndarray:
        raise ModelError("inference failed: out of memory")

    monkeypatch.setattr("endoveil.api.load_model", lambda *a, **k: ScriptedClassifier(fails))
    out = tmp_path / "out"
    result = _anonymize(clip, clip, "-o", out, model=brightness_model_path)
    assert result.exit_code == 1
    assert len(_error_lines(result.stderr)) == 2, result.stderr
    assert leftovers(out) == []


# Real processes -------------------------------------------------------------------------------
def _endoveil(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "endoveil", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_module_entry_point_reports_a_missing_file(tmp_path: Path) -> None:
    """The command fails at once, while the model is still loading in its thread: the process
    must still end with its own exit code (ONNX Runtime aborted it, exit 134, in about half of
    such runs while the loading thread was a daemon)."""
    missing = tmp_path / "missing.mp4"
    for _ in range(6):
        proc = _endoveil("anonymize", missing, "-o", tmp_path / "out", "-q")
        assert proc.returncode == 1, proc.stderr
        _assert_one_error(proc.stderr, str(missing), "no such file")
    assert leftovers(tmp_path / "out") == []


def test_version(tmp_path: Path) -> None:
    proc = _endoveil("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("endoveil ")


def _small_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_disk_full_leaves_no_partial_file(brightness_model_path: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "big.mp4", 100, size=(320, 240))
    before = fingerprint(clip)
    out = tmp_path / "out"
    out.mkdir()
    proc = _endoveil(
        "anonymize",
        clip,
        "-o",
        out,
        "--model",
        brightness_model_path,
        "--crf",
        "0",
        "-q",
        preexec_fn=_small_file_limit,
    )
    assert proc.returncode == 1, proc.stderr
    _assert_one_error(proc.stderr, str(out / "big.anonymized.mp4"), "cannot write")
    assert leftovers(out) == []
    assert fingerprint(clip) == before


def _ctrl_c_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_exits_130_and_leaves_nothing(
    signum: int, brightness_model_path: Path, tmp_path: Path
) -> None:
    """SIGTERM (a service manager, a cluster, ``timeout``) must clean up like Ctrl-C."""
    clip = write_clip(tmp_path / "long.mp4", 400, size=(640, 360), options={"preset": "ultrafast"})
    before = fingerprint(clip)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "endoveil",
            "anonymize",
            str(clip),
            "-o",
            str(out),
            "--model",
            str(brightness_model_path),
            "--preset",
            "medium",
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a suite started in the background (``cmd &`` in a script)
        # ignores SIGINT, and a Python started with it ignored keeps ignoring it.
        preexec_fn=_ctrl_c_default,
    )
    deadline = time.monotonic() + 60
    # Interrupt while the video is being written: its temporary file exists.
    while not any(".part" in name for name in leftovers(out)):
        assert proc.poll() is None, "finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130
    _assert_one_error(stderr, "interrupted")
    assert leftovers(out) == []
    assert fingerprint(clip) == before
