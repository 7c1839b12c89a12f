"""Prove an anonymized video safe: re-decode it and compare it with the original, frame by frame.

What is checked, and how:

- **the labels themselves**: every frame the scores call out of body (``p_out`` at or above
  the labels' threshold) must lie in a segment, unless the labels record that a person
  reviewed them (`endoveil.detect.labels.is_reviewed`; such frames are counted as reviewed
  overrides); labels that name their video's SHA-256 must be given that very file;
- **a hidden frame is proven hidden by what it is**: it may carry no picture detail beyond
  what its action leaves. The frame is projected onto the action's form — a smooth picture
  of blur's 12-cell colour grid (judged on a grid three times finer), the 16 blocks of
  ``pixelate``, black — and what the projection cannot explain (the 90th percentile of the
  residual, in grey levels) must stay at codec-noise level. This holds whatever the frame
  shows: a neighbour, a mirrored, shifted or foreign picture all carry detail the action
  removes. On top, the frame is matched against the
  original frames of its whole out-of-body stretch, shifted and mirrored, so a failure names
  the frame it shows;
- **in-body frames**: present, at the same time (or the time a cut leaves), and intact (PSNR
  on thumbnails); an in-body slot that shows an out-of-body frame of the original (a range put
  back into a ``cut`` output) is reported as a leak;
- **the file**: one video stream (and at most the one kept audio track, silent inside
  segments), no identifying metadata and no NAL unit but slices and parameter sets
  (`inspect_file`).

Comparisons run on small grey thumbnails, so they judge what a viewer could recognise, not
codec noise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from endoveil.atomic import file_sha256
from endoveil.detect.labels import Labels, is_reviewed
from endoveil.detect.scan import Progress
from endoveil.errors import LeakError
from endoveil.media.inputs import open_input
from endoveil.media.inspect import Finding, inspect_file
from endoveil.media.probe import VideoInfo, probe
from endoveil.media.reader import Frame, FrameReader, upright

__all__ = ["VerifyReport", "frame_similarity", "hidden_residual", "verify"]

THUMB_WIDTH = 96
# Hidden frames are judged at this width: 16 pixels per blur cell, 12 per pixelate block.
FORM_WIDTH = 192
# Grid cells across the longer side that `Blur` and `Pixelate` keep (see render.py).
BLUR_CELLS, PIXELATE_CELLS = 12, 16
# A hidden frame may differ from its action's form by this much (90th percentile of the
# absolute residual, grey levels): correct outputs of real footage stay below about 2, real
# pictures start near 9 (bench/verify.py measures both).
MAX_FORM_RESIDUAL = 4.5
# The smooth upscale of blur's grid is judged against a grid this many times finer, which
# explains any smooth picture of that grid whatever resampler drew it.
BLUR_FORM_FACTOR = 3
# Black is black: mean and spread of the grey levels.
MAX_BLACK_MEAN, MAX_BLACK_STD = 24.0, 4.0
# An output frame whose fine detail correlates with an original's at least this much shows it.
LEAK_CORRELATION = 0.5
# Below this the original frame has no detail worth hiding (a flat or black picture).
MIN_DETAIL_STD = 2.0
# Originals of a stretch a hidden frame is matched against (nearest first, then spread).
MATCH_CANDIDATES = 24
# Hidden originals kept for matching (about 10 kB each): per out-of-body segment, and in all.
MAX_KEPT_PER_SEGMENT, MAX_KEPT = 512, 8192
# An in-body slot that fails is compared with the in-body originals this many frames around it.
NEAR_INBODY = 16
# An in-body output frame this much closer to the previous original than to its own repeats it.
REPEAT_MARGIN_DB = 3.0
# In-body frames must come through this close to the original (PSNR of thumbnails, dB).
INTACT_PSNR_DB = 28.0
MAX_PROBLEMS_LISTED = 20
# Kept sound must be silent inside hidden segments, but for the AAC frames that straddle an edge.
AUDIO_EDGE_S = 0.05
SILENCE = 1e-3
DEFAULT_THRESHOLD = 0.5


@dataclass
class VerifyReport:
    """The outcome of `verify`; ``ok`` only if nothing leaked, nothing was lost."""

    frames_checked: int = 0
    oob_frames: int = 0
    cut: bool = False
    reviewed_overrides: int = 0
    """Frames scored out of body that a person's review left visible (reviewed labels only)."""
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def identifying(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "identifying"]

    @property
    def ok(self) -> bool:
        return self.problem_count == 0 and not self.identifying

    def add(self, problem: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_LISTED:
            self.problems.append(problem)

    def summary(self) -> str:
        """What failed, counted: frame problems and identifying metadata, each named."""
        parts = []
        if self.problem_count:
            parts.append(f"{self.problem_count} problem(s)")
        if self.identifying:
            parts.append(f"{len(self.identifying)} identifying metadata finding(s)")
        return " and ".join(parts) or "no problem"

    def raise_if_failed(self, path: Path) -> None:
        if not self.ok:
            first = self.problems[0] if self.problems else str(self.identifying[0])
            raise LeakError(f"{self.summary()}; first: {first}", path=path)


def _gray(frame: Frame, width: int) -> npt.NDArray[np.float32] | None:
    if frame.video_frame is None:
        return None
    up = upright(frame.video_frame)
    height = max(8, round(width * up.height / up.width))
    small = up.reformat(width=width, height=height, format="gray", interpolation="AREA")
    return small.to_ndarray().astype(np.float32)


def _detail(img: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    h, w = img.shape
    coarse = cv2.resize(img, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    return img - cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)


def frame_similarity(
    original: npt.NDArray[np.float32], output: npt.NDArray[np.float32]
) -> tuple[float, float, float]:
    """(detail correlation, PSNR in dB, original's detail std) of two grey thumbnails."""
    output = _same_size(original, output)
    d_orig, d_out = _detail(original), _detail(output)
    n_orig, n_out = float(np.linalg.norm(d_orig)), float(np.linalg.norm(d_out))
    corr = float(np.vdot(d_orig, d_out) / (n_orig * n_out)) if n_orig and n_out else 0.0
    return corr, _psnr(original, output), float(d_orig.std())


def _psnr(original: npt.NDArray[np.float32], output: npt.NDArray[np.float32]) -> float:
    """PSNR in dB of two grey thumbnails (99 when identical)."""
    mse = float(np.mean((original - _same_size(original, output)) ** 2))
    return 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _same_size(
    original: npt.NDArray[np.float32], output: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    if original.shape == output.shape:
        return output
    return cv2.resize(output, original.shape[::-1], interpolation=cv2.INTER_AREA)


def _grid(width: int, height: int, cells: int) -> tuple[int, int]:
    """The renderers' grid: ``cells`` across the longer side (as `_GridRenderer._grid`)."""
    if width >= height:
        return cells, max(1, round(cells * height / width))
    return max(1, round(cells * width / height)), cells


def hidden_residual(gray: npt.NDArray[np.float32], action: str | None) -> float:
    """How much picture detail ``gray`` (a hidden output frame, `FORM_WIDTH` wide) carries
    beyond what ``action`` leaves: the 90th percentile of the absolute difference, in grey
    levels, from the action's form built from the frame itself (0 for a perfect form).

    ``black`` allows only a dark, flat frame; ``blur`` a 12-cell grid smoothly upscaled;
    ``pixelate`` 16 flat blocks. An unknown action (labels without an output record) allows
    whichever of the three explains the frame best. A black frame is a valid blur or pixelate
    too (frames that cannot be decoded are drawn black).
    """
    h, w = gray.shape
    if action == "black":
        return float(max(gray.mean() - MAX_BLACK_MEAN, 0.0) + max(gray.std() - MAX_BLACK_STD, 0))
    forms = []
    if action in ("blur", None):
        gw, gh = _grid(w, h, BLUR_CELLS)
        size = (gw * BLUR_FORM_FACTOR, gh * BLUR_FORM_FACTOR)
        tiny = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        forms.append(cv2.resize(tiny, (w, h), interpolation=cv2.INTER_CUBIC))
    if action in ("pixelate", None):
        tiny = cv2.resize(gray, _grid(w, h, PIXELATE_CELLS), interpolation=cv2.INTER_AREA)
        forms.append(cv2.resize(tiny, (w, h), interpolation=cv2.INTER_NEAREST))
    return min(float(np.percentile(np.abs(gray - form), 90)) for form in forms)


_TRANSFORMS: tuple[tuple[str, int | None], ...] = (
    ("", None),
    ("mirrored", 1),
    ("upside down", 0),
    ("rotated 180°", -1),
)


def _best_match(
    shown: npt.NDArray[np.float32], originals: dict[int, npt.NDArray[np.floating[Any]]]
) -> tuple[float, int, str]:
    """The original frame ``shown`` (a detail thumbnail) looks most like, moved (up to a sixth
    of the frame) or mirrored: (correlation, frame index, how)."""
    h, w = shown.shape
    dy, dx = h // 6, w // 6
    template = shown[dy : h - dy, dx : w - dx]
    if float(template.std()) < 1e-3:
        return 0.0, -1, ""
    best = (0.0, -1, "")
    for index, stored in originals.items():
        if stored.shape != shown.shape:
            continue
        original = stored.astype(np.float32)
        for how, flip in _TRANSFORMS:
            image = original if flip is None else cv2.flip(original, flip)
            scores = cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED)
            _, peak, _, at = cv2.minMaxLoc(scores)
            if peak > best[0]:
                moved = at != (dx, dy)
                label = ", ".join(x for x in (how, "moved" if moved else "") if x)
                best = (float(peak), index, label)
    return best


def _candidates(frames: list[int], around: int) -> list[int]:
    """Up to `MATCH_CANDIDATES` of ``frames``: the nearest to ``around``, then evenly spread."""
    if len(frames) <= MATCH_CANDIDATES:
        return frames
    half = MATCH_CANDIDATES // 2
    nearest = sorted(frames, key=lambda i: abs(i - around))[:half]
    spread = frames[:: max(1, len(frames) // half)]
    return sorted({*nearest, *spread})


@dataclass
class _Evidence:
    """What the frame-by-frame pass keeps for the matching done once every frame is known."""

    originals: dict[int, npt.NDArray[np.floating[Any]]] = field(default_factory=dict)
    """Detail thumbnails of the original's hidden frames (with detail worth hiding)."""
    hidden: list[tuple[int, npt.NDArray[np.float32], str]] = field(default_factory=list)
    """Hidden output frames that failed their form: (source index, detail thumbnail, why)."""
    altered: list[tuple[int, npt.NDArray[np.float32], float, float]] = field(default_factory=list)
    """In-body output frames that failed PSNR: (source index, detail thumbnail, PSNR, how
    well the best in-body original near it matches)."""
    recent: deque[tuple[int, npt.NDArray[np.float32]]] = field(
        default_factory=lambda: deque(maxlen=2 * NEAR_INBODY + 1)
    )
    """Detail thumbnails of the last in-body originals, to tell a misplaced in-body frame
    (a drop, a duplicate) from an out-of-body one put back."""
    pending: list[tuple[int, npt.NDArray[np.float32], float]] = field(default_factory=list)
    previous: tuple[int, npt.NDArray[np.float32]] | None = None
    """The last in-body original's thumbnail: an output frame may repeat it."""

    def settle(self, upto: int) -> None:
        """Match the in-body failures whose neighbourhood has been read (all if ``upto`` < 0)."""
        waiting = []
        for index, detail, psnr in self.pending:
            if upto >= 0 and index + NEAR_INBODY > upto:
                waiting.append((index, detail, psnr))
                continue
            near = {i: d for i, d in self.recent if abs(i - index) <= NEAR_INBODY}
            corr = _best_match(detail, near)[0] if index >= 0 else 0.0
            self.altered.append((index, detail, psnr, corr))
        self.pending = waiting


def verify(
    original: Path | str,
    anonymized: Path | str,
    labels: Labels | Path | str,
    *,
    timing: bool = True,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check ``anonymized`` against ``original`` and the out-of-body frames of ``labels``.

    Args:
        original: the source video.
        anonymized: the output to check.
        labels: the labels the output was made with (or their file).
        timing: also check every frame's time; off for live recordings, whose times follow
            the capture clock rather than the source's timestamps.
        progress: called with (frames done, total).
    """
    labels = labels if isinstance(labels, Labels) else Labels.load(Path(labels))
    src_info, out_info = probe(original), probe(anonymized)
    report = VerifyReport(findings=inspect_file(anonymized))
    oob = labels.oob_mask()
    if len(oob) != src_info.frame_count:
        report.add(f"labels cover {len(oob)} frames, the original has {src_info.frame_count}")
        return report
    _check_file(out_info, labels, report)
    _check_segments_against_scores(labels, oob, report)
    report.oob_frames = int(oob.sum())
    report.cut = _is_cut(labels, src_info.frame_count, out_info.frame_count)
    action = labels.extra.get("output", {}).get("action")
    durations = src_info.frame_durations() * float(src_info.time_base)
    tolerance = 0.5 * float(np.min(durations)) if len(durations) else 0.001
    evidence = _Evidence()
    kept = _originals_kept(labels, len(oob))

    with (
        FrameReader(src_info.path, src_info) as src_reader,
        FrameReader(out_info.path, out_info) as out_reader,
    ):
        outputs: Iterator[Frame] = iter(out_reader)
        removed_s = 0.0
        for frame in src_reader:
            hidden = bool(oob[frame.index]) or not frame.decoded
            if hidden and kept[frame.index]:
                _keep_original(frame, evidence)
            if report.cut and hidden:
                removed_s += float(durations[frame.index])
                continue
            out = next(outputs, None)
            if out is None:
                report.add(f"frame {frame.index}: missing from the output")
                break
            expected_t = frame.time_s - removed_s
            if timing and abs(out.time_s - expected_t) > tolerance:
                report.add(
                    f"frame {frame.index}: shown at {out.time_s:.3f} s, expected {expected_t:.3f} s"
                )
            _compare(frame, out, hidden, action, report, evidence)
            report.frames_checked += 1
            if progress:
                progress(frame.index + 1, src_info.frame_count)
        evidence.settle(-1)
        extra = 0
        for out in outputs:
            extra += 1
            _check_extra(out, evidence)
        if extra:
            report.add(f"the output has {extra} frame(s) more than expected")
    _explain(evidence, labels, report)
    if out_info.has_audio and not report.cut:
        _check_silence(out_info.path, labels, report)
    return report


def _check_file(out_info: VideoInfo, labels: Labels, report: VerifyReport) -> None:
    """One picture stream, and the very file the labels were written with."""
    if len(out_info.video_streams) > 1:
        report.add(
            f"the output has {len(out_info.video_streams)} video streams; only one is written"
        )
    pinned = labels.extra.get("output", {}).get("video_sha256")
    if pinned and pinned != file_sha256(out_info.path):
        report.add(
            "the labels were written for another video file (their video_sha256 differs): "
            "a mismatched pair"
        )


def _check_segments_against_scores(
    labels: Labels, oob: npt.NDArray[np.bool_], report: VerifyReport
) -> None:
    """Frames the scores call out of body must be in a segment, unless a person reviewed."""
    threshold = float(labels.params.get("threshold", DEFAULT_THRESHOLD))
    inside = labels.index < len(oob)
    scored = labels.index[inside][labels.p_out[inside] >= threshold]
    uncovered = scored[~oob[scored]]
    if not len(uncovered):
        return
    if is_reviewed(labels):
        report.reviewed_overrides = len(uncovered)
        return
    first = int(uncovered[0])
    p = float(labels.p_out[labels.index == first][0])
    report.add(
        f"{len(uncovered)} frame(s) scored out of body (p_out ≥ {threshold:g}) are in no "
        f"segment and the labels record no human review; first: frame {first} (p_out {p:.2f})"
    )


def _originals_kept(labels: Labels, count: int) -> npt.NDArray[np.bool_]:
    """Which hidden originals to keep for matching: all of a short stretch, an even spread of
    a long one, so memory stays bounded (`MAX_KEPT_PER_SEGMENT`, `MAX_KEPT`) on long videos.
    The proof of a hidden frame is its form; matching only names what a failing frame shows."""
    kept = np.zeros(count, bool)
    for seg in labels.segments:
        span = np.arange(seg.start_frame, seg.end_frame)
        step = max(1, -(-len(span) // MAX_KEPT_PER_SEGMENT))
        kept[span[::step]] = True
    total = int(kept.sum())
    if total > MAX_KEPT:
        chosen = np.flatnonzero(kept)
        kept[:] = False
        kept[chosen[:: -(-total // MAX_KEPT)]] = True
    return kept


def _keep_original(frame: Frame, evidence: _Evidence) -> None:
    thumb = _gray(frame, THUMB_WIDTH)
    if thumb is not None:
        detail = _detail(thumb)
        if float(detail.std()) >= MIN_DETAIL_STD:
            evidence.originals[frame.index] = detail.astype(np.float16)  # half the memory


def _compare(
    frame: Frame,
    out: Frame,
    hidden: bool,
    action: str | None,
    report: VerifyReport,
    evidence: _Evidence,
) -> None:
    if out.video_frame is None:
        report.add(f"frame {frame.index}: the output frame cannot be decoded")
        return
    if hidden:
        form = _gray(out, FORM_WIDTH)
        assert form is not None
        residual = hidden_residual(form, action)
        if residual > (0.0 if action == "black" else MAX_FORM_RESIDUAL):
            why = f"{residual:.1f} grey levels of detail that {action or 'hiding'} does not leave"
            detail = _detail(cv2.resize(form, _thumb_size(form), interpolation=cv2.INTER_AREA))
            evidence.hidden.append((frame.index, detail, why))
        return
    a, b = _gray(frame, THUMB_WIDTH), _gray(out, THUMB_WIDTH)
    if a is None or b is None:
        return  # an undecodable original frame is hidden, above
    evidence.recent.append((frame.index, _detail(a)))
    own = _psnr(a, b)
    previous, evidence.previous = evidence.previous, (frame.index, a)
    if own < INTACT_PSNR_DB:
        evidence.pending.append((frame.index, _detail(b), own))
    elif previous is not None and previous[0] == frame.index - 1:
        # Close to its original, but is it the frame before, shown again? Only a clear
        # preference counts: a still scene makes both equally likely.
        to_previous = _psnr(previous[1], b)
        if to_previous >= own + REPEAT_MARGIN_DB:
            report.add(
                f"frame {frame.index}: shows frame {frame.index - 1} again (PSNR "
                f"{to_previous:.1f} dB to it, {own:.1f} dB to its own): a repeated frame"
            )
    evidence.settle(frame.index)


def _check_extra(out: Frame, evidence: _Evidence) -> None:
    """A frame past the expected end may be an original out-of-body frame put back."""
    thumb = _gray(out, THUMB_WIDTH)
    if thumb is not None:
        evidence.altered.append((-1, _detail(thumb), 0.0, 0.0))


def _thumb_size(form: npt.NDArray[np.float32]) -> tuple[int, int]:
    h, w = form.shape
    return THUMB_WIDTH, max(8, round(THUMB_WIDTH * h / w))


def _explain(evidence: _Evidence, labels: Labels, report: VerifyReport) -> None:
    """Report the failed frames, naming the original frame each shows where one matches."""
    stretch = {}
    for seg in labels.segments:
        members = [i for i in range(seg.start_frame, seg.end_frame) if i in evidence.originals]
        for i in range(seg.start_frame, seg.end_frame):
            stretch[i] = members
    for index, detail, why in evidence.hidden:
        frames = stretch.get(index) or [index] * (index in evidence.originals)
        corr, shown, how = _best_match(
            detail, {i: evidence.originals[i] for i in _candidates(frames, index)}
        )
        if corr >= LEAK_CORRELATION:
            what = "itself" if shown == index and not how else f"original frame {shown}"
            report.add(
                f"frame {index}: out of body but not anonymized: shows {what}"
                f"{f' ({how})' if how else ''} (corr {corr:.2f}); {why}"
            )
        else:
            report.add(f"frame {index}: out of body but not anonymized: {why}")
    every = sorted(evidence.originals)
    for index, detail, psnr, inbody_corr in evidence.altered:
        corr, shown, how = _best_match(
            detail, {i: evidence.originals[i] for i in _candidates(every, max(index, 0))}
        )
        where = f"frame {index}" if index >= 0 else "an extra output frame"
        if corr >= LEAK_CORRELATION and corr > inbody_corr:
            report.add(
                f"{where}: a leak: shows out-of-body frame {shown} of the original"
                f"{f' ({how})' if how else ''} (corr {corr:.2f})"
            )
        elif index >= 0:
            report.add(f"frame {index}: in body but altered (PSNR {psnr:.1f} dB)")


def _check_silence(path: Path, labels: Labels, report: VerifyReport) -> None:
    """Sound kept beside hidden pictures must be silent there (AAC edges aside)."""
    with open_input(path) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            start = float(frame.pts * frame.time_base)
            samples = np.abs(frame.to_ndarray()).max(axis=0)
            times = start + np.arange(len(samples)) / frame.sample_rate
            for seg in labels.segments:
                inside = (times > seg.start_s + AUDIO_EDGE_S) & (times < seg.end_s - AUDIO_EDGE_S)
                if inside.any() and samples[inside].max() > SILENCE:
                    report.add(
                        f"sound is audible at {times[inside][0]:.2f} s, inside a hidden segment"
                    )
                    return


def _is_cut(labels: Labels, source_frames: int, output_frames: int) -> bool:
    """Whether out-of-body frames were removed rather than drawn over."""
    action = labels.extra.get("output", {}).get("action")
    if action is not None:
        return bool(action == "cut")
    return output_frames != source_frames and output_frames == int((~labels.oob_mask()).sum())
