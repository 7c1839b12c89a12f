"""The shipped default model end to end, on a clip made of real images from ../shared/data.

The clip is built in a temporary folder (shared data is never copied into the repository):
in-body images, then out-of-body images, then in-body images again, each held for a few
frames at 25 fps, 640x360.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from typer.testing import CliRunner

from clips import write_clip
from endoveil.anonymize.verify import verify
from endoveil.cli import app
from endoveil.detect.classifier import default_model_path
from endoveil.detect.labels import Labels

SIZE = (640, 360)
HOLD = 5  # frames per image
SOURCES = {
    "in_body": ["val/in_body/yt_1035614", "train/in_body/cholecseg"],
    "out_of_body": ["val/out_of_body/holohub_generic", "train/out_of_body/bedroom"],
}


def _images(shared: Path, kind: str, count: int) -> list[npt.NDArray[np.uint8]]:
    files: list[Path] = []
    for folder in SOURCES[kind]:
        files += sorted((shared / folder).glob("*.jpg"))[: count // 2]
    if len(files) < count // 2:
        pytest.skip(f"too few {kind} images under {shared}")
    images = []
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        assert bgr is not None, f
        images.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), SIZE, cv2.INTER_AREA))
    return images


def test_default_model_hides_every_out_of_body_frame(shared_data: Path, tmp_path: Path) -> None:
    if not default_model_path().is_file():
        pytest.skip(f"no shipped model at {default_model_path()}")
    inside, outside = _images(shared_data, "in_body", 12), _images(shared_data, "out_of_body", 12)
    sequence = inside[:6] + outside + inside[6:]
    frames = [image for image in sequence for _ in range(HOLD)]
    truth = np.zeros(len(frames), bool)
    truth[6 * HOLD : (6 + len(outside)) * HOLD] = True
    clip = write_clip(tmp_path / "real.mp4", frames, options={"preset": "ultrafast"})

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["anonymize", str(clip), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr

    labels = Labels.load(out / "real.labels.json")
    assert labels.oob_mask()[truth].all(), np.flatnonzero(truth & ~labels.oob_mask())
    video = out / "real.anonymized.mp4"
    # Every truly OOB frame is in the labels' segments, and verify proves each one hidden.
    report = verify(clip, video, labels)
    assert report.ok, report.problems
    assert report.oob_frames >= int(truth.sum())
