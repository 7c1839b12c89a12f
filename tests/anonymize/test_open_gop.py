"""Open GOPs in fast mode: no in-body frame is lost or replaced, wherever the hidden stretch
falls (a re-encoded GOP's leading pictures are predicted from the GOP before it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clips import write_clip
from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.anonymize.verify import verify
from endoveil.detect.classifier import OnnxClassifier

OPEN_GOP = {"x264-params": "open-gop=1:keyint=25:bframes=3:scenecut=0"}


@pytest.fixture(scope="module")
def classifier(brightness_model_path: Path) -> OnnxClassifier:
    return OnnxClassifier(brightness_model_path, threads=1)


@pytest.mark.parametrize("action", ["blur", "cut"])
@pytest.mark.parametrize("oob", [(100, 110), (30, 34), (60, 90)], ids=["late", "short", "long"])
def test_open_gop_loses_no_in_body_frame(
    oob: tuple[int, int], action: str, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    start, end = oob
    clip = write_clip(
        tmp_path / "open.mp4", 150, oob=lambda i: start <= i < end, size=(160, 120),
        options=OPEN_GOP,
    )  # fmt: skip
    config = PipelineConfig(mode="fast", action=action, margin_s=0.0)  # type: ignore[arg-type]
    result = run_pipeline(clip, tmp_path, config, classifier)
    assert result.mode == "fast" and result.render is not None
    assert result.render.inbody_frames_lost == 0
    assert result.render.inbody_frames_reencoded < 150 - (end - start)  # some GOPs copied
    report = verify(clip, result.video_path, result.labels_paths[0])  # type: ignore[arg-type]
    assert report.ok, report.problems
