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


@pytest.fixture(scope="module")
def clip_with_sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from clips import write_clip

    path = tmp_path_factory.mktemp("sound") / "sound.mp4"
    return write_clip(path, 100, oob=lambda i: 40 <= i < 60, audio=True)


def test_audio_is_dropped_by_default(
    clip_with_sound: Path, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    result = run_pipeline(clip_with_sound, tmp_path, PipelineConfig(margin_s=0.2), classifier)
    assert not probe(result.video_path).has_audio  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("action", ["blur", "cut"])
def test_kept_audio_is_silent_while_hidden(
    clip_with_sound: Path, classifier: OnnxClassifier, tmp_path: Path, mode: str, action: str
) -> None:
    import av

    config = PipelineConfig(mode=mode, action=action, margin_s=0.2, keep_audio=True)  # type: ignore[arg-type]
    result = run_pipeline(clip_with_sound, tmp_path, config, classifier)
    assert result.mode == mode
    report = verify(clip_with_sound, result.video_path, result.labels)  # type: ignore[arg-type]
    assert report.ok, report.problems
    with av.open(str(result.video_path)) as container:
        stream = container.streams.audio[0]
        sound = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
    seconds = len(sound) / stream.rate
    hidden = result.labels.oob_seconds
    expected = result.labels.video.duration_s - (hidden if action == "cut" else 0)
    assert abs(seconds - expected) < 0.1
    if action == "blur":
        seg = result.labels.segments[0]
        t = np.arange(len(sound)) / stream.rate
        inside = (t > seg.start_s + 0.05) & (t < seg.end_s - 0.05)
        assert np.abs(sound[inside]).max() < 1e-3
        assert np.abs(sound[~inside]).max() > 0.05
    assert not list(tmp_path.glob("*.part*"))


@pytest.mark.parametrize("action", ACTIONS)
def test_fast_mode_with_short_gops_copies_and_draws_hidden_gops(
    classifier: OnnxClassifier, tmp_path: Path, action: str
) -> None:
    """Keyframes every second: whole GOPs are hidden (drawn from detection's previews, not
    decoded), GOPs at the edges are re-encoded, the rest copied."""
    from clips import write_clip

    clip = write_clip(
        tmp_path / "gops.mp4", 200, oob=lambda i: 60 <= i < 140, options={"g": "25", "bf": "2"}
    )
    config = PipelineConfig(mode="fast", action=action, margin_s=0.2)  # type: ignore[arg-type]
    result = run_pipeline(clip, tmp_path, config, classifier)
    assert result.mode == "fast" and result.render is not None
    assert result.render.inbody_frames_reencoded < 40, "only GOPs at the edges re-encoded"
    report = verify(clip, result.video_path, result.labels)  # type: ignore[arg-type]
    assert report.ok, report.problems
