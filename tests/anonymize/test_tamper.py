"""The tamper suite and the clean suite: `verify` catches every way an output can be made to
look right while it is not, and passes every correct output, in every mode × action.

Tampered outputs are built from the original's frames (decoded once) and a correct output's
pictures, then re-encoded, as a buggy renderer or a hostile editor would.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from clips import BRIGHT, DARK, textured, write_clip
from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.anonymize.verify import verify
from endoveil.detect.classifier import OnnxClassifier
from endoveil.detect.labels import Labels
from endoveil.detect.scan import scan_video
from endoveil.detect.temporal import TemporalParams
from endoveil.media.writer import VideoWriter
from tamper import add_stream_copy, originals_and_blurred, plant_nals

Image = npt.NDArray[np.uint8]
# (originals, correct pictures, hidden mask) → the pictures and their times (frame slots).
Tamper = Callable[[list[Image], list[Image], npt.NDArray[np.bool_]], list[tuple[Image, float]]]


@pytest.fixture(scope="module")
def classifier(brightness_model_path: Path) -> OnnxClassifier:
    return OnnxClassifier(brightness_model_path, threads=1)


@pytest.fixture(scope="module")
def known_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 25 fps, 320x240: a moving in-body scene, frames 25..49 a moving out-of-body
    one (different pictures, so a frame shown in the wrong place can be named)."""
    frames = [
        textured(BRIGHT, i, (320, 240), seed=2) if 25 <= i < 50 else textured(DARK, i, (320, 240))
        for i in range(75)
    ]
    return write_clip(tmp_path_factory.mktemp("tamper") / "known.mp4", frames)


@pytest.fixture(scope="module")
def labels(known_clip: Path, classifier: OnnxClassifier) -> Labels:
    """Frames 25..49 of `known_clip` are out of body; no margin, no extraction memory."""
    # Exact segments (no margin, no extraction memory): the subject here is verify.
    params = TemporalParams(margin_s=0.0, memory=False)
    found = scan_video(known_clip, classifier, params=params, sample_every=1)
    return Labels(
        found.video, found.index, found.time_s, found.p_out, found.segments,
        found.model, found.params, {"output": {"action": "blur"}},
    )  # fmt: skip


@pytest.fixture(scope="module")
def frames(known_clip: Path, labels: Labels) -> tuple[list[Image], list[Image]]:
    """The original's pictures and a correct blurred output's."""
    return originals_and_blurred(known_clip, labels.oob_mask())


def _encode(path: Path, pictures: list[tuple[Image, float]]) -> Path:
    tb = Fraction(1, 12800)
    h, w = pictures[0][0].shape[:2]
    with VideoWriter(path, width=w, height=h, time_base=tb, fps=Fraction(25)) as writer:
        for image, slot in pictures:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts = round(slot * 512)  # 25 fps
            writer.write(frame)
    return path


def _slots(pictures: list[Image]) -> list[tuple[Image, float]]:
    return [(p, float(i)) for i, p in enumerate(pictures)]


def _in_hidden(mask: npt.NDArray[np.bool_], edit: Callable[[int, list[Image]], Image]) -> Tamper:
    def tamper(orig: list[Image], good: list[Image], hide: npt.NDArray[np.bool_]):  # type: ignore[no-untyped-def]
        return _slots([edit(i, orig) if hide[i] else good[i] for i in range(len(good))])

    return tamper


def _shift(image: Image, dx: int) -> Image:
    return np.roll(image, dx, axis=1)


TAMPERS: dict[str, tuple[Tamper, str]] = {
    "neighbour": (
        _in_hidden(np.ones(0, bool), lambda i, o: o[i + 4]),
        "out of body but not anonymized: shows original frame",
    ),
    "mirror": (
        _in_hidden(np.ones(0, bool), lambda i, o: o[i][:, ::-1]),
        "(mirrored",
    ),
    "shift-16px": (
        _in_hidden(np.ones(0, bool), lambda i, o: _shift(o[i], 16)),
        "moved",
    ),
    "foreign-picture": (
        _in_hidden(np.ones(0, bool), lambda i, o: o[(i + 40) % 75]),
        "out of body but not anonymized",
    ),
    "dropped-frame": (
        lambda o, g, h: [s for s in _slots(g) if s[1] != 10],
        "frame 10: shown at",
    ),
    "duplicated-frame": (
        lambda o, g, h: [*_slots(g)[:11], (g[10], 11.0), *[(p, t + 1) for p, t in _slots(g)[11:]]],
        "the output has 1 frame(s) more than expected",
    ),
    "retimed": (
        lambda o, g, h: [(p, t * 1.1) for p, t in _slots(g)],
        "shown at",
    ),
}


@pytest.mark.parametrize("name", TAMPERS)
def test_verify_catches_a_tampered_output(
    name: str,
    known_clip: Path,
    labels: Labels,
    frames: tuple[list[Image], list[Image]],
    tmp_path: Path,
) -> None:
    tamper, needle = TAMPERS[name]
    originals, good = frames
    out = _encode(tmp_path / f"{name}.mp4", tamper(originals, good, labels.oob_mask()))
    report = verify(known_clip, out, labels)
    assert not report.ok
    assert any(needle in p for p in report.problems), report.problems


def test_a_range_put_back_into_a_cut_output_is_a_leak(
    known_clip: Path, labels: Labels, frames: tuple[list[Image], list[Image]], tmp_path: Path
) -> None:
    cut = Labels(
        labels.video, labels.index, labels.time_s, labels.p_out, labels.segments,
        labels.model, labels.params, {"output": {"action": "cut"}},
    )  # fmt: skip
    originals, _ = frames
    mask = labels.oob_mask()
    kept = [p for i, p in enumerate(originals) if not mask[i]]
    # The cut output, with frames 30..34 of the original put back after frame 24.
    pictures = kept[:25] + originals[30:35] + kept[25:]
    out = _encode(tmp_path / "reinserted.mp4", _slots(pictures))
    report = verify(known_clip, out, cut)
    leaks = [p for p in report.problems if "a leak: shows out-of-body frame" in p]
    assert leaks and leaks[0].startswith("frame 50: a leak: shows out-of-body frame"), (
        report.problems
    )
    assert not any("in body but altered" in p for p in report.problems[:5])


@pytest.fixture(scope="module")
def correct(
    known_clip: Path, classifier: OnnxClassifier, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("correct")
    result = run_pipeline(known_clip, out, PipelineConfig(mode="fast", margin_s=0.0), classifier)
    assert result.video_path is not None
    return result.video_path


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("planted-tags", "[identifying] container tag: title=Jane Doe"),
        ("sei-and-other-nal-units", "NAL unit(s) of type 12 (filler data)"),
        ("extra-video-stream", "the output has 2 video streams"),
    ],
)
def test_verify_catches_what_is_not_the_pictures(
    name: str, needle: str, known_clip: Path, correct: Path, tmp_path: Path
) -> None:
    labels = Labels.load(correct.parent / "known.labels.json")
    bad = tmp_path / f"{name}.mp4"
    if name == "planted-tags":
        add_stream_copy(correct, bad, correct, kind="none", tags={"title": "Jane Doe"})
    elif name == "sei-and-other-nal-units":
        plant_nals(correct, bad, (6, 12, 30))
    else:
        add_stream_copy(correct, bad, known_clip)
    labels.extra["output"].pop("video_sha256")  # judge the content, not the pinned file
    report = verify(known_clip, bad, labels)
    assert not report.ok
    lines = [*report.problems, *map(str, report.findings)]
    assert any(needle in line for line in lines), lines


@pytest.mark.parametrize("action", ["blur", "pixelate", "black", "cut"])
@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_verify_passes_every_correct_output(
    mode: str, action: str, known_clip: Path, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    config = PipelineConfig(mode=mode, action=action, margin_s=0.2)  # type: ignore[arg-type]
    result = run_pipeline(known_clip, tmp_path, config, classifier)
    assert result.mode == mode and result.video_path is not None
    report = verify(known_clip, result.video_path, result.labels_paths[0])
    assert report.ok, report.problems
    assert report.oob_frames > 0
