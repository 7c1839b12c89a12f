"""Measure an ONNX model on labelled data: frame-level ranking and operating point, per source,
and on labelled videos the frames leaked and lost after temporal post-processing.

Runs on ONNX Runtime only (no torch), exactly as the anonymization pipeline does: videos are
scored and post-processed by `endoveil.detect.scan.scan_video`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from endoveil.atomic import write_text_atomic
from endoveil.detect.classifier import OnnxClassifier, resize_for_model
from endoveil.detect.formats import find_annotation, read_frame_mask
from endoveil.detect.labels import segments_from_mask
from endoveil.errors import LabelsFormatError, MediaError
from endoveil.train.data import discover
from endoveil.train.metrics import operating_point, pr_auc, roc_auc, roc_curve

__all__ = [
    "EvalResult",
    "Scored",
    "VideoResult",
    "evaluate",
    "excursions",
    "summarize",
    "write_results",
]

Progress = Callable[[str, int, int], None]
"""Called with (what, done, total)."""

BATCH = 32
_VIDEO_KEYS = ("video", "source", "frames", "oob_frames", "leaked", "lost")


def excursions(
    truth: npt.NDArray[np.bool_], hidden: npt.NDArray[np.bool_], times: npt.NDArray[np.float64]
) -> list[dict[str, Any]]:
    """Each out-of-body excursion of a video (a run of truly OOB frames) and what leaked of it.

    Why: a user asks "was the time outside hidden?", per excursion; a few leaked frames
    spread over ten excursions are ten privacy failures, not one.
    """
    duration = float(times[-1]) if len(times) else 0.0  # only the segments' frames are used
    out = []
    for segment in segments_from_mask(np.asarray(truth, bool), times, duration):
        start, end = segment.start_frame, segment.end_frame
        leaked = int((~hidden[start:end]).sum())
        out.append(
            {
                "start_frame": int(start),
                "end_frame": int(end),
                "start_s": round(segment.start_s, 3),
                "frames": int(end - start),
                "leaked": leaked,
                "hidden": leaked == 0,
            }
        )
    return out


@dataclass
class Scored:
    """Frame-level scores: one entry per image or video frame."""

    key: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    truth: list[bool] = field(default_factory=list)
    p_out: list[float] = field(default_factory=list)


@dataclass
class VideoResult:
    """One labelled video after scanning and post-processing."""

    video: str
    source: str
    frames: int
    oob_frames: int
    leaked: int
    lost: int
    time_s: list[float]
    p_out: list[float]
    truth: list[bool]
    predicted: list[bool]
    excursions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def excursions_hidden(self) -> int:
        return sum(1 for e in self.excursions if e["hidden"])


@dataclass
class EvalResult:
    """Everything `evaluate` measured; ``summary`` is the JSON-ready digest."""

    summary: dict[str, Any]
    scored: Scored
    videos: list[VideoResult]


def evaluate(
    model: Path | None,
    data: Iterable[Path],
    *,
    threshold: float | None = None,
    threads: int = 2,
    progress: Progress | None = None,
) -> EvalResult:
    """Score every labelled image and video under ``data`` with ``model``.

    A dataset root with a ``val/`` split is evaluated on ``val/`` only, so that training data
    never inflates the figures.

    Args:
        model: an ONNX model; None for the shipped default.
        data: DATA paths (image-folder roots, video folders, videos, dataset roots).
        threshold: operating threshold; None uses the model's own.
        threads: ONNX Runtime intra-op threads.
        progress: called as images and videos are scored.

    Raises:
        EndoveilError: the model or the data cannot be read.
    """
    from endoveil.detect.scan import scan_video
    from endoveil.detect.temporal import TemporalParams
    from endoveil.media.probe import probe

    clf = OnnxClassifier(model, threads=threads)
    chosen = clf.threshold if threshold is None else float(threshold)
    paths = [Path(p) / "val" if (Path(p) / "val").is_dir() else Path(p) for p in data]
    found = discover(paths, frames_per_second=1.0, split="val")
    images = [s for s in found.val if s.frame_index is None]
    videos = sorted(set(found.videos_val))

    scored = Scored()
    for start in range(0, len(images), BATCH):
        chunk = images[start : start + BATCH]
        batch = np.stack([resize_for_model(_read_rgb(s.path), clf.input_size) for s in chunk])
        p = clf.score(batch)
        for s, value in zip(chunk, p.tolist(), strict=True):
            scored.key.append(str(s.path))
            scored.source.append(s.source)
            scored.truth.append(s.label == 1)
            scored.p_out.append(float(value))
        if progress:
            progress("images", min(start + BATCH, len(images)), len(images))

    params = TemporalParams(threshold=chosen)
    results = []
    for n, video in enumerate(videos, start=1):
        info = probe(video)
        labels = scan_video(video, clf, params=params, sample_every=1, info=info)
        annotation = find_annotation(video)
        if annotation is None:
            raise LabelsFormatError("no annotation beside the video", path=video)
        frame_times = info.frame_times
        truth = read_frame_mask(annotation, frame_times)
        predicted = labels.oob_mask()
        source = video.stem.split("__")[0] if "__" in video.stem else video.stem
        for i, p in zip(labels.index.tolist(), labels.p_out.tolist(), strict=True):
            scored.key.append(f"{video}#{i}")
            scored.source.append(source)
            scored.truth.append(bool(truth[i]))
            scored.p_out.append(float(p))
        results.append(
            VideoResult(
                video=str(video),
                source=source,
                frames=len(truth),
                oob_frames=int(truth.sum()),
                leaked=int((truth & ~predicted).sum()),
                lost=int((~truth & predicted).sum()),
                time_s=labels.time_s.tolist(),
                p_out=labels.p_out.tolist(),
                truth=truth[labels.index].tolist(),
                predicted=predicted[labels.index].tolist(),
                excursions=excursions(truth, predicted, frame_times),
            )
        )
        if progress:
            progress("videos", n, len(videos))
    summary = summarize(scored, results, chosen)
    summary["model"] = {
        "path": str(clf.path),
        "name": clf.info.name,
        "version": clf.info.version,
        "sha256": clf.info.sha256,
        "input_size": clf.input_size,
        "threshold": clf.threshold,
    }
    summary["params"] = params.as_dict()
    return EvalResult(summary, scored, results)


def _read_rgb(path: Path) -> npt.NDArray[np.uint8]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError("cannot read image", path=path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _frame_metrics(truth: Sequence[bool], p: Sequence[float], threshold: float) -> dict[str, Any]:
    y = np.asarray(truth, bool)
    s = np.asarray(p, np.float64)
    point = operating_point(y, s, threshold)
    return {
        "frames": len(y),
        "oob": int(y.sum()),
        "in_body": int((~y).sum()),
        "roc_auc": roc_auc(y, s),
        "pr_auc": pr_auc(y, s),
        **point.to_dict(),
    }


def summarize(scored: Scored, videos: Sequence[VideoResult], threshold: float) -> dict[str, Any]:
    """Overall and per-source frame metrics, per-video leaks and losses, and the ROC curve."""
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, source in enumerate(scored.source):
        by_source[source].append(i)
    sources = {
        name: _frame_metrics(
            [scored.truth[i] for i in idx], [scored.p_out[i] for i in idx], threshold
        )
        for name, idx in sorted(by_source.items())
    }
    fpr, tpr = roc_curve(np.asarray(scored.truth, bool), np.asarray(scored.p_out))
    y = np.asarray(scored.truth, bool)
    p = np.asarray(scored.p_out)
    wrong = np.flatnonzero((p >= threshold) != y)
    return {
        "threshold": threshold,
        "frames": _frame_metrics(scored.truth, scored.p_out, threshold),
        "sources": sources,
        "videos": [
            {
                **{k: getattr(v, k) for k in _VIDEO_KEYS},
                "excursions": len(v.excursions),
                "excursions_hidden": v.excursions_hidden,
                "excursion_details": v.excursions,
            }
            for v in videos
        ],
        "video_totals": {
            "videos": len(videos),
            "frames": sum(v.frames for v in videos),
            "oob_frames": sum(v.oob_frames for v in videos),
            "leaked": sum(v.leaked for v in videos),
            "lost": sum(v.lost for v in videos),
            "excursions": sum(len(v.excursions) for v in videos),
            "excursions_hidden": sum(v.excursions_hidden for v in videos),
        },
        "misclassified": [
            {"key": scored.key[i], "truth_oob": bool(y[i]), "p_out": round(float(p[i]), 5)}
            for i in wrong[np.argsort(-np.abs(p[wrong] - threshold))]
        ],
        "roc": {"fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist()},
    }


def write_results(result: EvalResult, folder: Path) -> tuple[Path, Path]:
    """Write ``metrics.json`` and ``report.html`` into ``folder``; returns both paths."""
    from endoveil.train.report import render_html

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "metrics.json"
    html_path = folder / "report.html"
    write_text_atomic(json_path, json.dumps(_jsonable(result.summary), indent=1) + "\n")
    write_text_atomic(html_path, render_html(result))
    return json_path, html_path


def _jsonable(value: Any) -> Any:
    # NaN is not JSON: a metric that is undefined (one class only) is written as null.
    if isinstance(value, float):
        return None if np.isnan(value) else value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
