"""Bad input at the library level: one specific error, no partial output, originals untouched;
damaged input: decode what can be decoded and hide the rest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bad_media import BAD_INPUTS, DAMAGED_INPUTS, OOB, fingerprint, good_clip, leftovers
from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.anonymize.verify import verify
from endoveil.detect.classifier import OnnxClassifier
from endoveil.errors import MediaError, OutputError
from endoveil.media.probe import probe
from endoveil.media.reader import FrameReader


@pytest.mark.parametrize(("name", "case"), BAD_INPUTS.items(), ids=list(BAD_INPUTS))
def test_bad_input_raises_one_clear_media_error(
    name: str,
    case: tuple[Callable[[Path], Path], str],
    classifier: OnnxClassifier,
    tmp_path: Path,
) -> None:
    build, reason = case
    path = build(tmp_path)
    before = fingerprint(path)
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(MediaError) as info:
        run_pipeline(path, out, PipelineConfig(), classifier)

    message = str(info.value)
    assert reason in message
    assert str(path) in message
    assert "\n" not in message
    assert not isinstance(info.value, OutputError), "the input is at fault, not the output"
    assert leftovers(out) == []
    assert fingerprint(path) == before


@pytest.mark.parametrize("name", DAMAGED_INPUTS)
def test_damaged_input_hides_what_cannot_be_decoded(
    name: str, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    path = DAMAGED_INPUTS[name](tmp_path)
    before = fingerprint(path)
    info = probe(path)
    with FrameReader(path, info) as reader:
        undecodable = [f.index for f in reader if not f.decoded]
    out = tmp_path / "out"
    out.mkdir()

    result = run_pipeline(path, out, PipelineConfig(margin_s=0.0, smoothing_s=0.0), classifier)

    mask = result.labels.oob_mask()
    assert mask[undecodable].all(), "a frame that cannot be judged is out of body"
    truth = [i for i in OOB if i < info.frame_count]
    assert mask[truth].all()
    assert not mask.all(), "what decodes cleanly stays visible"
    assert result.labels.extra.get("undecodable_frames", 0) == len(undecodable)
    assert result.video_path is not None
    report = verify(path, result.video_path, result.labels)
    assert report.ok, report.problems
    assert not [p for p in leftovers(out) if ".part" in p]
    assert fingerprint(path) == before


def test_corrupt_stretch_leaves_undecodable_frames(tmp_path: Path) -> None:
    """The corrupt elementary stream really has frames that cannot be judged (else the test
    above would prove nothing for it), and decoding it twice gives the same answer."""
    path = DAMAGED_INPUTS["h264-corrupt-stretch"](tmp_path)
    runs = []
    for _ in range(2):
        with FrameReader(path) as reader:
            runs.append([f.index for f in reader if not f.decoded])
    assert runs[0], "some frames fail to decode"
    assert runs[0] == runs[1]
    assert max(runs[0]) < probe(path).frame_count


def test_existing_output_needs_force(classifier: OnnxClassifier, tmp_path: Path) -> None:
    clip = good_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    out.mkdir()
    first = run_pipeline(clip, out, PipelineConfig(margin_s=0.2), classifier)
    assert first.video_path is not None
    written = {p: fingerprint(p) for p in [*first.labels_paths, first.video_path]}

    with pytest.raises(OutputError, match="exists"):
        run_pipeline(clip, out, PipelineConfig(margin_s=0.2), classifier)
    assert {p: fingerprint(p) for p in written} == written, "nothing was overwritten"

    again = run_pipeline(clip, out, PipelineConfig(margin_s=0.2, force=True), classifier)
    assert again.video_path == first.video_path
    assert verify(clip, again.video_path, again.labels).ok


@pytest.mark.parametrize("labels_only", [False, True])
def test_output_folder_that_cannot_exist(
    labels_only: bool, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    clip = good_clip(tmp_path / "clip.mp4")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(OutputError, match="output folder"):
        run_pipeline(clip, blocker / "out", PipelineConfig(labels_only=labels_only), classifier)


def test_original_is_never_modified(classifier: OnnxClassifier, tmp_path: Path) -> None:
    clip = good_clip(tmp_path / "clip.mp4", metadata={"title": "Jane Doe"})
    before = fingerprint(clip)
    for action in ("blur", "cut"):
        run_pipeline(clip, tmp_path, PipelineConfig(action=action, force=True), classifier)  # type: ignore[arg-type]
    assert fingerprint(clip) == before
