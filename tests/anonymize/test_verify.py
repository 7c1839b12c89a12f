"""`verify` catches every way an output can fail the original, and passes correct outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from clips import textured
from endoveil.anonymize.offline import PipelineConfig, run_pipeline
from endoveil.anonymize.render import Blur
from endoveil.anonymize.verify import verify
from endoveil.cli import app
from endoveil.detect.classifier import OnnxClassifier
from endoveil.detect.labels import Labels, VideoSummary, mark_reviewed, segments_from_mask
from endoveil.detect.scan import scan_video
from endoveil.detect.temporal import TemporalParams
from endoveil.errors import LeakError
from endoveil.media.probe import probe
from endoveil.media.reader import FrameReader, upright
from endoveil.media.writer import VideoWriter
from tamper import add_stream_copy

Edit = Callable[[int, av.VideoFrame], av.VideoFrame | None]


@pytest.fixture(scope="module")
def classifier(brightness_model_path: Path) -> OnnxClassifier:
    return OnnxClassifier(brightness_model_path, threads=1)


@pytest.fixture(scope="module")
def labels(known_clip: Path, classifier: OnnxClassifier) -> Labels:
    """Frames 25..49 of `known_clip` are out of body; margins of 0.2 s."""
    return scan_video(known_clip, classifier, params=TemporalParams(margin_s=0.2), sample_every=1)


def _rewrite(
    src: Path,
    out: Path,
    oob: Labels,
    edit: Edit,
    late: Callable[[int], int] = lambda _i: 0,
    repeat_last: bool = False,
) -> Path:
    """Re-encode ``src`` hiding the OOB frames of ``oob``, then apply ``edit`` to each frame,
    show it ``late(index)`` time-base units late, and maybe show the last frame twice."""
    info = probe(src)
    mask = oob.oob_mask()
    blur = Blur()
    with (
        FrameReader(src, info) as reader,
        VideoWriter(
            out, width=info.width, height=info.height, time_base=info.time_base, fps=info.fps
        ) as writer,
    ):
        for frame in reader:
            assert frame.video_frame is not None
            image = upright(frame.video_frame)
            if mask[frame.index]:
                image = blur.render(image)
            edited = edit(frame.index, image)
            if edited is not None:
                edited.pts = frame.pts - info.start_pts + late(frame.index)
                writer.write(edited)
        if repeat_last and edited is not None:
            edited.pts += int(info.frame_durations()[-1])
            writer.write(edited)
    return out


def _replace(index: int) -> Edit:
    other = av.VideoFrame.from_ndarray(textured(60, 0, (320, 240), seed=9), format="rgb24")

    def edit(i: int, frame: av.VideoFrame) -> av.VideoFrame | None:
        return other.reformat(format="yuv420p") if i == index else frame

    return edit


def _drop(index: int) -> Edit:
    return lambda i, frame: None if i == index else frame


def _keep(i: int, frame: av.VideoFrame) -> av.VideoFrame:
    return frame


def test_a_correct_output_passes(known_clip: Path, labels: Labels, tmp_path: Path) -> None:
    out = _rewrite(known_clip, tmp_path / "ok.mp4", labels, _keep)
    report = verify(known_clip, out, labels)
    assert report.ok, report.problems
    assert report.frames_checked == 75
    assert report.oob_frames == labels.oob_frame_count > 0
    report.raise_if_failed(out)


def _two_frames_late_from(index: int) -> Callable[[int], int]:
    return lambda i: 1024 if i >= index else 0  # 1/12800 time base, 25 fps


@pytest.mark.parametrize(
    ("edit", "late", "problem"),
    [
        (_drop(10), lambda _i: 0, "frame 10: shown at 0.440 s, expected 0.400 s"),
        (_replace(5), lambda _i: 0, "frame 5: in body but altered"),
        (_keep, _two_frames_late_from(60), "frame 60: shown at 2.480 s, expected 2.400 s"),
    ],
    ids=["missing-frame", "altered-in-body-frame", "wrong-timestamps"],
)
def test_a_broken_output_fails(
    edit: Edit,
    late: Callable[[int], int],
    problem: str,
    known_clip: Path,
    labels: Labels,
    tmp_path: Path,
) -> None:
    out = _rewrite(known_clip, tmp_path / "broken.mp4", labels, edit, late)
    report = verify(known_clip, out, labels)
    assert not report.ok
    assert any(p.startswith(problem) for p in report.problems), report.problems
    with pytest.raises(LeakError, match=r"problem\(s\)"):
        report.raise_if_failed(out)


def test_an_out_of_body_frame_left_intact_is_a_leak(
    known_clip: Path, labels: Labels, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    # Anonymize with reviewed labels that (wrongly) mark nothing, then verify with the truth.
    nothing = tmp_path / "nothing.labels.json"
    mark_reviewed(labels.with_segments(()), "2026-01-01T00:00:00Z").save(nothing)
    out = tmp_path / "out"
    out.mkdir()
    result = run_pipeline(known_clip, out, PipelineConfig(labels_in=nothing), None)
    assert result.video_path is not None
    own = verify(known_clip, result.video_path, nothing)
    assert own.ok, "intact against its own (reviewed) labels"
    assert own.reviewed_overrides == 25  # frames 25..49 scored out of body, left by a person

    report = verify(known_clip, result.video_path, labels)
    assert not report.ok
    leaks = [p for p in report.problems if "out of body but not anonymized" in p]
    assert leaks and leaks[0].startswith("frame 20:"), report.problems  # 25 minus the margin
    assert report.problem_count == labels.oob_frame_count


def test_an_extra_frame_fails(known_clip: Path, labels: Labels, tmp_path: Path) -> None:
    nothing = mark_reviewed(labels.with_segments(()), "2026-01-01T00:00:00Z")
    out = _rewrite(known_clip, tmp_path / "long.mp4", nothing, _keep, repeat_last=True)
    report = verify(known_clip, out, nothing)
    assert report.problems == ["the output has 1 frame(s) more than expected"]


def test_labels_for_another_video_fail(known_clip: Path) -> None:
    other = Labels.empty(VideoSummary(0.4, 25.0, 10, 320, 240))
    report = verify(known_clip, known_clip, other)
    assert report.problems == ["labels cover 10 frames, the original has 75"]
    assert not report.ok


def test_cli_verify_exit_codes(
    known_clip: Path, labels: Labels, classifier: OnnxClassifier, tmp_path: Path
) -> None:
    runner = CliRunner()
    truth = tmp_path / "truth.labels.json"
    labels.save(truth)
    good = _rewrite(known_clip, tmp_path / "good.mp4", labels, _keep)
    leaky = _rewrite(known_clip, tmp_path / "leaky.mp4", labels.with_segments(()), _keep)

    ok = runner.invoke(app, ["verify", str(known_clip), str(good), str(truth), "-q"])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.stdout

    leak = runner.invoke(app, ["verify", str(known_clip), str(leaky), str(truth), "-q"])
    assert leak.exit_code == 3
    assert "out of body but not anonymized" in leak.stdout
    errors = [line for line in leak.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "verification failed" in errors[0]

    missing = runner.invoke(app, ["verify", str(known_clip), str(tmp_path / "no.mp4"), str(truth)])
    assert missing.exit_code == 1
    assert "no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_segments_must_follow_the_scores(known_clip: Path, labels: Labels, tmp_path: Path) -> None:
    """Labels whose segments were emptied, without a recorded review, cannot vouch for an
    untouched video: the scores they carry say 25 frames are out of body."""
    emptied = labels.with_segments(())
    out = _rewrite(known_clip, tmp_path / "plain.mp4", emptied, _keep)
    report = verify(known_clip, out, emptied)
    assert not report.ok and report.reviewed_overrides == 0
    assert report.problems == [
        "25 frame(s) scored out of body (p_out ≥ 0.5) are in no segment and the labels "
        "record no human review; first: frame 25 (p_out 1.00)"
    ]
    reviewed = verify(known_clip, out, mark_reviewed(emptied, "2026-01-01T00:00:00Z"))
    assert reviewed.ok and reviewed.reviewed_overrides == 25


def test_more_hidden_than_the_scores_ask_passes(
    known_clip: Path, labels: Labels, tmp_path: Path
) -> None:
    """Post-processing may hide more than the threshold (margins, memory): a superset."""
    wider = labels.with_segments(segments_from_mask(
        np.arange(75) >= 10, probe(known_clip).frame_times, 3.0
    ))  # fmt: skip
    out = _rewrite(known_clip, tmp_path / "wide.mp4", wider, _keep)
    report = verify(known_clip, out, wider)
    assert report.ok, report.problems


def test_a_metadata_only_failure_says_what_failed(
    known_clip: Path, labels: Labels, tmp_path: Path
) -> None:
    """Not "(0 problem(s))": the error line counts the identifying metadata (the planted
    title and the muxer's encoder tag)."""
    good = _rewrite(known_clip, tmp_path / "good.mp4", labels, _keep)
    tagged = add_stream_copy(good, tmp_path / "tagged.mp4", good, kind="none", tags={"title": "x"})
    truth = tmp_path / "truth.labels.json"
    labels.save(truth)
    result = CliRunner().invoke(app, ["verify", str(known_clip), str(tagged), str(truth), "-q"])
    assert result.exit_code == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tagged}: verification failed (2 identifying metadata finding(s))"]


def test_matching_keeps_a_bounded_number_of_originals() -> None:
    """A two-hour video mostly out of body must not keep every hidden frame in memory."""
    from endoveil.anonymize.verify import MAX_KEPT, MAX_KEPT_PER_SEGMENT, _originals_kept

    count = 216_000  # 2 h at 30 fps
    mask = np.zeros(count, bool)
    mask[1000:200_000] = True
    for start in range(200_500, 215_000, 500):
        mask[start : start + 200] = True
    video = VideoSummary(7200.0, 30.0, count, 64, 48)
    times = np.arange(count) / 30.0
    labels = Labels.empty(video).with_segments(segments_from_mask(mask, times, 7200.0))
    kept = _originals_kept(labels, count)
    assert 0 < kept.sum() <= MAX_KEPT and not (kept & ~mask).any()
    assert kept[1000:200_000].sum() <= MAX_KEPT_PER_SEGMENT
