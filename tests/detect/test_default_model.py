"""The shipped default model: its contract, and its figures on the validation split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from endoveil.detect.classifier import OnnxClassifier, default_model_path


def test_default_model_honours_the_contract() -> None:
    path = default_model_path()
    assert path.stat().st_size < 20 * 1024 * 1024
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert {"endoveil.name", "endoveil.version", "endoveil.threshold"} <= set(meta)
    clf = OnnxClassifier(threads=2)
    assert clf.input_size == int(meta["endoveil.input_size"])
    assert 0 < clf.threshold < 1
    images = np.zeros((3, clf.input_size, clf.input_size, 3), np.uint8)
    p = clf.score(images)
    assert p.shape == (3,) and p.dtype == np.float32


def test_default_model_meets_the_targets_on_the_validation_split(shared_data: Path) -> None:
    from endoveil.train.evaluate import evaluate

    result = evaluate(None, [shared_data / "val"], threads=2)
    frames = result.summary["frames"]
    assert frames["oob"] > 0 and frames["in_body"] > 0
    assert frames["roc_auc"] >= 0.99
    assert frames["sensitivity"] >= 0.99
    assert frames["specificity"] >= 0.95
    # After temporal post-processing no out-of-body frame of a labelled video leaks.
    assert result.summary["video_totals"]["leaked"] == 0
