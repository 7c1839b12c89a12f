"""Outputs never replace a file by accident, come as a pair, and stale parts of dead runs go."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clips import write_clip
from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.anonymize.verify import verify
from endoveil.atomic import atomic_paths, file_sha256, remove_stale_parts
from endoveil.cli import app
from endoveil.detect.classifier import OnnxClassifier
from endoveil.detect.labels import Labels
from endoveil.errors import OutputError


@pytest.fixture(scope="module")
def classifier(brightness_model_path: Path) -> OnnxClassifier:
    return OnnxClassifier(brightness_model_path, threads=1)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("out") / "case.mp4", 30, oob=lambda i: i >= 20)


def test_a_name_taken_meanwhile_is_never_replaced(tmp_path: Path) -> None:
    target = tmp_path / "a.mp4"
    with pytest.raises(OutputError, match="exists"), atomic_paths([target]) as (tmp,):
        tmp.write_text("mine")
        target.write_text("another run's")  # after any early check
    assert target.read_text() == "another run's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def _racing_run(taken: str) -> Callable[[str, Path], None]:
    """A stage callback that makes another run's file appear under ``taken`` mid-run."""

    def stage(name: str, out: Path) -> None:
        if name == "write":
            (out / taken).write_text("another run's")

    return stage


@pytest.mark.parametrize("taken", ["case.anonymized.mp4", "case.labels.json"])
def test_two_runs_racing_for_one_output(
    taken: str, clip: Path, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    """The second run to finish fails and leaves nothing of its own: not its video without
    labels, not labels beside another run's video."""
    out = tmp_path / "out"
    out.mkdir()
    stage = _racing_run(taken)
    with pytest.raises(OutputError, match="exists"):
        run_pipeline(clip, out, PipelineConfig(), classifier, stage=lambda n: stage(n, out))
    assert sorted(p.name for p in out.iterdir()) == [taken]
    assert (out / taken).read_text() == "another run's"


def test_labels_pin_their_video(clip: Path, classifier: OnnxClassifier, tmp_path: Path) -> None:
    result = run_pipeline(clip, tmp_path, PipelineConfig(margin_s=0.0), classifier)
    assert result.video_path is not None
    labels = Labels.load(result.labels_paths[0])
    assert labels.extra["output"]["video_sha256"] == file_sha256(result.video_path)
    assert verify(clip, result.video_path, labels).ok
    (tmp_path / "b").mkdir()
    black = PipelineConfig(margin_s=0.0, action="black")
    other = run_pipeline(clip, tmp_path / "b", black, classifier)
    assert other.video_path is not None
    report = verify(clip, other.video_path, labels)  # blur's labels, black's video
    assert any("labels were written for another video file" in p for p in report.problems)


def test_one_run_refuses_inputs_with_the_same_output_names(
    brightness_model_path: Path, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_clip(tmp_path / "a" / "case.mp4", 10)
    second = write_clip(tmp_path / "b" / "case.mkv", 12)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["anonymize", str(first), str(second), "-o", str(out), "--force", "-q",
         "--model", str(brightness_model_path)],
    )  # fmt: skip
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {second}: same output names as {first} in this run; not written"]
    assert Labels.load(out / "case.labels.json").video.frame_count == 10


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_stale_parts_of_dead_runs_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / ".case.anonymized.k1x9.endoveil.part.mp4"  # its writer was killed
    dead.write_bytes(b"x" * 100)
    live = tmp_path / ".other.anonymized.q2z8.endoveil.part.mp4"
    live.write_bytes(b"y" * 100)
    kept = tmp_path / ".notes.part1.txt"  # a user's file that merely looks like a part
    kept.write_text("not ours")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(live)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert remove_stale_parts(tmp_path) == 1
        assert not dead.exists() and live.exists() and kept.exists()
    finally:
        holder.kill()
        holder.communicate()
    assert remove_stale_parts(tmp_path) == 1  # its writer is gone now
    assert not live.exists()


def test_a_run_removes_stale_parts_but_not_its_own(
    clip: Path, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    dead = tmp_path / ".case.anonymized.abcd.endoveil.part.mp4"
    dead.write_bytes(b"x")
    fd = os.open(dead, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as if a living run of this process were writing it
    os.close(fd)  # ... and now it has died
    run_pipeline(clip, tmp_path, PipelineConfig(), classifier)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "case.anonymized.mp4",
        "case.labels.json",
    ]
