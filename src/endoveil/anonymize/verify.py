"""Prove an anonymized video safe: re-decode it and compare it with the original, frame by frame.

For every frame of the original, in order:

- out of body in the labels (or undecodable in the original): the output frame must be
  anonymized — it must not carry the original's picture detail — or be absent (``cut``);
- in body: the output frame must be present, at the same time (or the time the cut leaves),
  and intact (close to the original).

Comparisons run on small grey thumbnails, so they judge what a viewer could recognise, not
codec noise. The output's metadata is checked with `inspect_file` as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from endoveil.detect.labels import Labels
from endoveil.detect.scan import Progress
from endoveil.errors import LeakError
from endoveil.media.inspect import Finding, inspect_file
from endoveil.media.probe import VideoInfo, open_input, probe
from endoveil.media.reader import Frame, FrameReader, upright

__all__ = ["VerifyReport", "frame_similarity", "verify"]

THUMB_WIDTH = 96
# An output frame whose fine detail correlates with the original's at least this much shows
# the original; anonymizers leave none (blur) or unrelated block edges (pixelate).
LEAK_CORRELATION = 0.5
# Below this the original frame has no detail worth hiding (a flat or black picture).
MIN_DETAIL_STD = 2.0
# In-body frames must come through this close to the original (PSNR of thumbnails, dB).
INTACT_PSNR_DB = 28.0
MAX_PROBLEMS_LISTED = 20
# Kept sound must be silent inside hidden segments, but for the AAC frames that straddle an edge.
AUDIO_EDGE_S = 0.05
SILENCE = 1e-3


@dataclass
class VerifyReport:
    """The outcome of `verify`; ``ok`` only if nothing leaked, nothing was lost."""

    frames_checked: int = 0
    oob_frames: int = 0
    cut: bool = False
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        identifying = [f for f in self.findings if f.severity == "identifying"]
        return self.problem_count == 0 and not identifying

    def add(self, problem: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_LISTED:
            self.problems.append(problem)

    def raise_if_failed(self, path: Path) -> None:
        if not self.ok:
            first = self.problems[0] if self.problems else str(self.findings[0])
            raise LeakError(f"{self.problem_count} problem(s); first: {first}", path=path)


def _thumb(frame: Frame, info: VideoInfo) -> npt.NDArray[np.float32] | None:
    if frame.video_frame is None:
        return None
    up = upright(frame.video_frame)
    height = max(8, round(THUMB_WIDTH * up.height / up.width))
    small = up.reformat(width=THUMB_WIDTH, height=height, format="gray", interpolation="AREA")
    return small.to_ndarray().astype(np.float32)


def _detail(img: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    h, w = img.shape
    coarse = cv2.resize(img, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    return img - cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)


def frame_similarity(
    original: npt.NDArray[np.float32], output: npt.NDArray[np.float32]
) -> tuple[float, float, float]:
    """(detail correlation, PSNR in dB, original's detail std) of two grey thumbnails."""
    if original.shape != output.shape:
        output = cv2.resize(output, original.shape[::-1], interpolation=cv2.INTER_AREA)
    d_orig, d_out = _detail(original), _detail(output)
    n_orig, n_out = float(np.linalg.norm(d_orig)), float(np.linalg.norm(d_out))
    corr = float(np.vdot(d_orig, d_out) / (n_orig * n_out)) if n_orig and n_out else 0.0
    mse = float(np.mean((original - output) ** 2))
    psnr = 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)
    return corr, psnr, float(d_orig.std())


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
    report.oob_frames = int(oob.sum())
    report.cut = _is_cut(labels, src_info.frame_count, out_info.frame_count)
    durations = src_info.frame_durations() * float(src_info.time_base)
    tolerance = 0.5 * float(np.min(durations)) if len(durations) else 0.001

    with (
        FrameReader(src_info.path, src_info) as src_reader,
        FrameReader(out_info.path, out_info) as out_reader,
    ):
        outputs: Iterator[Frame] = iter(out_reader)
        removed_s = 0.0
        for frame in src_reader:
            hidden = bool(oob[frame.index]) or not frame.decoded
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
            _compare(frame, out, hidden, src_info, out_info, report)
            report.frames_checked += 1
            if progress:
                progress(frame.index + 1, src_info.frame_count)
        extra = sum(1 for _ in outputs)
        if extra:
            report.add(f"the output has {extra} frame(s) more than expected")
    if out_info.has_audio and not report.cut:
        _check_silence(out_info.path, labels, report)
    return report


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


def _compare(
    frame: Frame,
    out: Frame,
    hidden: bool,
    src_info: VideoInfo,
    out_info: VideoInfo,
    report: VerifyReport,
) -> None:
    a, b = _thumb(frame, src_info), _thumb(out, out_info)
    if b is None:
        report.add(f"frame {frame.index}: the output frame cannot be decoded")
        return
    if a is None:
        return  # undecodable in the original; anything but the picture is fine
    corr, psnr, detail = frame_similarity(a, b)
    if hidden and detail >= MIN_DETAIL_STD and corr >= LEAK_CORRELATION:
        report.add(f"frame {frame.index}: out of body but not anonymized (corr {corr:.2f})")
    elif not hidden and psnr < INTACT_PSNR_DB:
        report.add(f"frame {frame.index}: in body but altered (PSNR {psnr:.1f} dB)")
