"""The offline pipeline end to end: every mode × action, proven by `verify`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.anonymize.verify import verify
from endoveil.detect.classifier import OnnxClassifier
from endoveil.detect.labels import Labels
from endoveil.media.inspect import inspect_file
from endoveil.media.probe import probe

ACTIONS = ["blur", "pixelate", "black", "cut"]
MODES = ["exact", "fast"]


@pytest.fixture(scope="module")
def classifier(brightness_model_path: Path) -> OnnxClassifier:
    return OnnxClassifier(brightness_model_path)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_mode_and_action_verifies(
    known_clip: Path, classifier: OnnxClassifier, tmp_path: Path, mode: str, action: str
) -> None:
    config = PipelineConfig(action=action, mode=mode, margin_s=0.2)  # type: ignore[arg-type]
    result = run_pipeline(known_clip, tmp_path, config, classifier)

    labels = Labels.load(result.labels_paths[0])
    truth = np.zeros(75, bool)
    truth[25:50] = True
    assert labels.oob_mask()[truth].all(), "every truly out-of-body frame is in a segment"
    assert result.video_path is not None and result.video_path.is_file()
    report = verify(known_clip, result.video_path, labels)
    assert report.ok, report.problems or report.findings
    assert report.cut == (action == "cut")
    assert not [f for f in inspect_file(result.video_path) if f.severity == "identifying"]
    assert labels.extra["output"]["action"] == action
    assert not list(tmp_path.glob("*.part*")), "no temporary file is left behind"


def test_cut_makes_timestamps_continuous(
    known_clip: Path, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    config = PipelineConfig(action="cut", margin_s=0.2)
    result = run_pipeline(known_clip, tmp_path, config, classifier)
    info = probe(result.video_path)  # type: ignore[arg-type]
    kept = int((~result.labels.oob_mask()).sum())
    assert info.frame_count == kept
    assert np.allclose(np.diff(info.frame_times), 0.04, atol=1e-3)
