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


def test_black_borders_do_not_turn_out_of_body_into_in_body(shared_data: Path) -> None:
    # The known risk: an OR picture letterboxed on black looks like an endoscope field.
    import cv2

    from endoveil.detect.classifier import resize_for_model

    clf = OnnxClassifier(threads=2)
    frames = []
    for path in sorted((shared_data / "val" / "out_of_body").rglob("*.jpg")):
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        h, w = image.shape[:2]
        boxed = np.zeros((h, w * 2, 3), np.uint8)  # pillarbox: half the frame black
        boxed[:, w // 2 : w // 2 + w] = image
        frames.append(resize_for_model(boxed, clf.input_size))
    p = clf.score(np.stack(frames))
    assert len(p) > 10
    assert (p >= clf.threshold).mean() >= 0.95
