"""The public API: the verbs, `Labels` on its own, errors instead of exits, a light import."""

from __future__ import annotations

import inspect as pyinspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import endoveil
from clips import BRIGHT, DARK, textured
from endoveil.detect.classifier import ScriptedClassifier
from endoveil.detect.labels import Labels, VideoSummary


def _bright() -> ScriptedClassifier:
    return ScriptedClassifier(lambda x: (x.mean(axis=(1, 2, 3)) > 128).astype("f4"))


def test_import_is_light() -> None:
    code = (
        "import sys, endoveil; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'av', 'onnxruntime', 'cv2', 'numpy', 'pydantic', 'typer', 'rich'}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("name", endoveil.__all__)
def test_every_public_name_resolves_and_is_documented(name: str) -> None:
    value = getattr(endoveil, name)
    assert name in dir(endoveil)
    if pyinspect.isfunction(value) or pyinspect.isclass(value):
        assert value.__doc__ and value.__doc__.strip(), name


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        endoveil.no_such_thing  # noqa: B018


def test_errors_not_exits(tmp_path: Path) -> None:
    with pytest.raises(endoveil.MediaError):
        endoveil.detect_oob(tmp_path / "missing.mp4", model=_bright())
    with pytest.raises(endoveil.MediaError):
        endoveil.inspect(tmp_path)
    with pytest.raises(ValueError, match="action"):
        endoveil.anonymize_video(tmp_path / "x.mp4", tmp_path, action="smudge", model=_bright())
    with pytest.raises(ValueError, match="threshold"):
        endoveil.detect_oob(tmp_path / "x.mp4", threshold=2.0)
    with pytest.raises(endoveil.ModelError):
        endoveil.load_model(tmp_path / "missing.onnx")


def test_a_model_loading_in_the_background_reports_its_error_at_first_use(
    brightness_model_path: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not an onnx file")
    waiting = endoveil.load_model(broken, background=True)
    raised = []
    for _ in range(2):
        with pytest.raises(endoveil.ModelError, match="not a loadable ONNX model") as error:
            waiting.threshold  # noqa: B018
        raised.append(error.value)
    # A new error each time: raising the stored one again would chain every caller's
    # traceback onto it.
    assert raised[0] is not raised[1]
    # A model that failed is not kept: once the file is mended, it loads, in the background
    # as in the foreground.
    broken.write_bytes(brightness_model_path.read_bytes())
    mended = endoveil.load_model(broken, background=True)
    assert mended is not waiting
    assert mended.score(np.zeros((1, mended.input_size, mended.input_size, 3), np.uint8)).shape
    assert endoveil.load_model(broken) is mended


def test_a_model_loaded_in_the_background_is_the_same_model(brightness_model_path: Path) -> None:
    from endoveil.detect.classifier import OnnxClassifier

    now = OnnxClassifier(brightness_model_path)
    later = OnnxClassifier(brightness_model_path, background=True)
    assert (later.input_size, later.threshold, later.info) == (
        now.input_size,
        now.threshold,
        now.info,
    )
    images = np.random.default_rng(0).integers(0, 255, (3, now.input_size, now.input_size, 3))
    images = images.astype(np.uint8)
    assert np.array_equal(later.score(images), now.score(images))


def test_detect_then_anonymize_with_given_labels(known_clip: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    labels = endoveil.detect_oob(
        known_clip,
        model=_bright(),
        margin_s=0,
        smoothing_s=0,
        sample_every=1,
        progress=lambda done, total: seen.append((done, total)),
    )
    # Out of body from frame 25 (the extraction memory may keep it hidden longer).
    (start, _end), *_ = labels.intervals_frames()
    assert start == 25 and labels.oob_mask()[25:50].all()
    assert labels.intervals_s()[0][0] == 1.0
    assert seen[-1] == (75, 75)
    reviewed = labels.with_review([(20, 50)])
    assert reviewed.intervals_s() == [(0.8, 2.0)]
    result = endoveil.anonymize_video(known_clip, tmp_path / "out", labels=reviewed, action="black")
    assert result.labels.intervals_frames() == [(20, 50)]
    assert result.video_path is not None and result.video_path.is_file()
    assert endoveil.verify(known_clip, result.video_path, result.labels).ok
    # A second run never replaces the first's outputs silently; the error says how, in
    # Python's words too, and is its own class (front ends offer their own way out).
    with pytest.raises(endoveil.OutputExistsError, match=r"force=True"):
        endoveil.anonymize_video(known_clip, tmp_path / "out", labels=reviewed, action="black")
    again = endoveil.anonymize_video(
        known_clip, tmp_path / "out", labels=reviewed, action="black", force=True
    )
    assert again.video_path == result.video_path
    # Labels for another video are refused, as an error of the tree.
    other = Labels.empty(VideoSummary(1.0, 25.0, 25, 320, 240))
    with pytest.raises(endoveil.LabelsFormatError):
        endoveil.anonymize_video(known_clip, tmp_path / "x", labels=other)


def test_anonymize_reads_any_labels_format(known_clip: Path, tmp_path: Path) -> None:
    csv = tmp_path / "hand.intervals.csv"
    csv.write_text("start_s,end_s\n1.0,2.0\n")
    result = endoveil.anonymize_video(known_clip, tmp_path / "out", labels=csv, labels_only=True)
    assert result.labels.intervals_frames() == [(25, 50)]
    assert result.video_path is None


def test_labels_formats_round_trip(tmp_path: Path) -> None:
    video = VideoSummary(4.0, 25.0, 100, 64, 48)
    labels = Labels.empty(video).with_review([(10, 30), (60, 100)])
    for name, fmt in [("a_labels.json", "roban"), ("a.oobnet.csv", "oobnet-csv")]:
        labels.save(tmp_path / name, format=fmt)
        back = Labels.load(tmp_path / name, video=video)
        assert back.intervals_frames() == [(10, 30), (60, 100)], fmt
        assert back.intervals_s() == [(0.4, 1.2), (2.4, 4.0)]
    labels.save(tmp_path / "a.labels.json")
    assert Labels.load(tmp_path / "a.labels.json") == labels
    with pytest.raises(endoveil.LabelsFormatError, match="give the video"):
        Labels.load(tmp_path / "a_labels.json")
    with pytest.raises(ValueError, match="format"):
        labels.save(tmp_path / "a.txt", format="xml")


def test_roban_json_is_told_from_endoveil_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"labels": [0, 1, 1, 0], "frames": [0, 1, 2, 3]}))
    labels = Labels.load(path, video=VideoSummary(0.4, 10.0, 4, 8, 8))
    assert labels.intervals_frames() == [(1, 3)]


def test_with_review_merges_and_checks() -> None:
    labels = Labels.empty(VideoSummary(4.0, 25.0, 100, 64, 48))
    mask = np.zeros(100, bool)
    mask[5:9] = True
    assert labels.with_review(mask).intervals_frames() == [(5, 9)]
    assert labels.with_review([(0, 10), (5, 20), (30, 31)]).intervals_frames() == [
        (0, 20),
        (30, 31),
    ]
    times = np.arange(100) * 0.05  # exact times, not the nominal rate's
    assert labels.with_review([(10, 20)], frame_times=times).intervals_s() == [(0.5, 1.0)]
    with pytest.raises(ValueError):
        labels.with_review([(90, 101)])
    with pytest.raises(ValueError):
        labels.with_review(np.zeros(99, bool))


def test_live_frames_from_callers_loop() -> None:
    frames = [textured(BRIGHT if 10 <= i < 20 else DARK, i, (64, 48)) for i in range(30)]
    out = list(endoveil.live_frames(frames, model=_bright(), hold_s=0.0))
    assert [f.index for f in out] == list(range(30))
    assert all(f.hidden for f in out[10:20])
    assert all(f.p_out is not None for f in out)
    assert not out[5].hidden and out[5].state == "clear"
    assert out[0].to_rgb().shape == (48, 64, 3)


def test_live_frames_look_ahead_hides_before_the_exit() -> None:
    frames = [textured(BRIGHT if i >= 20 else DARK, i, (64, 48)) for i in range(30)]
    out = list(endoveil.live_frames(frames, model=_bright(), hold_s=0.0, delay_frames=3))
    assert [f.index for f in out] == list(range(30))
    assert all(f.hidden for f in out[17:])
    assert not out[10].hidden


def test_live_frames_rejects_bad_frames() -> None:
    with pytest.raises(endoveil.MediaError, match="uint8 RGB"):
        list(endoveil.live_frames([np.zeros((4, 4), np.float32)], model=_bright()))
