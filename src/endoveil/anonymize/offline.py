"""The offline pipeline: a video in; labels, and optionally the anonymized video, out.

Front ends (CLI, GUI, batch runner) build a `PipelineConfig` and call `run_pipeline`; none of
them decodes, scores or renders anything itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from endoveil.anonymize.exact import RenderStats, write_exact
from endoveil.anonymize.fast import write_fast
from endoveil.anonymize.render import ACTIONS, Action
from endoveil.atomic import (
    atomic_paths,
    check_writable_target,
    file_sha256,
    remove_stale_parts,
    scratch_path,
)
from endoveil.detect.classifier import Classifier
from endoveil.detect.formats import LABEL_FORMATS, LabelsFormat, labels_text
from endoveil.detect.labels import Labels
from endoveil.detect.scan import Progress, scan_video
from endoveil.detect.temporal import TemporalParams
from endoveil.errors import LabelsFormatError, MediaError, OutputError
from endoveil.media.audio import add_audio
from endoveil.media.probe import VideoInfo, probe
from endoveil.media.remux import fast_mode_blocker

__all__ = [
    "EXACT_PRESET",
    "FAST_PRESET",
    "MODES",
    "FileResult",
    "Mode",
    "PipelineConfig",
    "colliding_outputs",
    "output_paths",
    "run_pipeline",
]

Mode = Literal["exact", "fast"]
MODES: tuple[Mode, ...] = ("exact", "fast")

StageCallback = Callable[[str], None]
"""Called with the name of each stage as it starts: "detect", then "write"."""

EXACT_PRESET, FAST_PRESET = "superfast", "ultrafast"

# Side of the square previews fast mode keeps of scored frames (768 bytes each).
PREVIEW_SIZE = 16

LABELS_SUFFIX: dict[LabelsFormat, str] = {
    "endoveil": ".labels.json",
    "roban": "_labels.json",
    "oobnet-csv": ".oobnet.csv",
}


@dataclass(frozen=True)
class PipelineConfig:
    """Everything a run needs besides the input, output folder and model.

    Args:
        action: how out-of-body frames are hidden.
        mode: ``exact`` re-encodes every frame; ``fast`` stream-copies in-body GOPs.
        threshold: operating threshold; None uses the model's.
        margin_s: padding around each out-of-body segment.
        smoothing_s: in-body gaps shorter than this between segments are closed.
        sample_every: score one frame in this many; None picks about 6 per second.
        labels_only: write labels, not the video.
        labels_format: an extra labels format written beside the endoveil JSON.
        labels_in: use these labels (e.g. reviewed ones) instead of running the model.
        keep_audio: keep the sound track, muted (or cut) during out-of-body segments.
        preset: libx264 preset for re-encoded frames; None picks `EXACT_PRESET` in exact
            mode and `FAST_PRESET` in fast mode (see `x264_preset`).
        crf: libx264 quality for re-encoded frames.
        force: overwrite existing outputs.
    """

    action: Action = "blur"
    mode: Mode = "exact"
    threshold: float | None = None
    margin_s: float = 1.0
    smoothing_s: float = 1.0
    sample_every: int | None = None
    labels_only: bool = False
    labels_format: LabelsFormat = "endoveil"
    labels_in: Path | None = None
    keep_audio: bool = False
    preset: str | None = None
    crf: int = 18
    force: bool = False

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.labels_format not in LABEL_FORMATS:
            raise ValueError(f"labels_format must be one of {LABEL_FORMATS}")
        if not 0 <= self.crf <= 51:
            raise ValueError("crf must be in 0..51")

    @property
    def x264_preset(self) -> str:
        """The preset asked for, else the mode's: fast mode re-encodes only the GOPs around
        out-of-body stretches, mostly hidden frames, so it favours speed."""
        if self.preset:
            return self.preset
        return FAST_PRESET if self.mode == "fast" else EXACT_PRESET

    def as_options(self) -> dict[str, Any]:
        """These settings as keyword arguments of `endoveil.anonymize_video` (``labels_in``
        becomes its ``labels``)."""
        options = asdict(self)
        options["labels"] = options.pop("labels_in")
        return options

    def temporal(self, classifier_threshold: float) -> TemporalParams:
        return TemporalParams(
            threshold=self.threshold if self.threshold is not None else classifier_threshold,
            smoothing_s=self.smoothing_s,
            margin_s=self.margin_s,
        )


@dataclass
class FileResult:
    """What `run_pipeline` did for one input."""

    input: Path
    labels: Labels
    labels_paths: list[Path]
    video_path: Path | None
    render: RenderStats | None
    mode: Mode | None
    elapsed_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def speed_x(self) -> float:
        """Seconds of video processed per second of wall time."""
        return self.labels.video.duration_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def inbody_seconds_lost(self) -> float:
        if self.render is None or self.labels.video.fps <= 0:
            return 0.0
        return self.render.inbody_frames_lost / self.labels.video.fps


def output_paths(input_path: Path, out_dir: Path, config: PipelineConfig) -> list[Path]:
    """The files a run writes for ``input_path``: labels first, then the video if any."""
    stem = input_path.stem
    paths = [out_dir / f"{stem}{LABELS_SUFFIX['endoveil']}"]
    if config.labels_format != "endoveil":
        paths.append(out_dir / f"{stem}{LABELS_SUFFIX[config.labels_format]}")
    if not config.labels_only:
        paths.append(out_dir / f"{stem}.anonymized.mp4")
    return paths


def colliding_outputs(
    inputs: Sequence[Path], out_dir: Path, config: PipelineConfig
) -> dict[Path, Path]:
    """Inputs of one run whose outputs would take the names of an earlier input's
    (``a/case.mp4`` and ``b/case.mkv`` both make ``case.labels.json``): input → that earlier
    input. A run must refuse them rather than let one overwrite the other."""
    owners: dict[str, Path] = {}
    clashes: dict[Path, Path] = {}
    for path in inputs:
        names = [p.name for p in output_paths(Path(path), out_dir, config)]
        earlier = next((owners[n] for n in names if n in owners), None)
        if earlier is not None:
            clashes[Path(path)] = earlier
            continue
        owners.update(dict.fromkeys(names, Path(path)))
    return clashes


def run_pipeline(
    input_path: Path,
    out_dir: Path,
    config: PipelineConfig,
    classifier: Classifier | None,
    *,
    labels: Labels | None = None,
    progress: Progress | None = None,
    stage: StageCallback | None = None,
) -> FileResult:
    """Detect, then (unless labels-only) write the anonymized video; outputs are atomic.

    Args:
        input_path: the video (opened read-only, never modified).
        out_dir: the folder outputs go to.
        config: the run's settings.
        classifier: the model; may be None only when labels are given.
        labels: use these labels (checked against the video) instead of running the model.
        progress: called with (frames done, total) within each stage.
        stage: called with the name of each stage as it starts ("detect", "write").

    Raises:
        MediaError: the input cannot be read, or decoding it exhausts memory (named as the
            input's fault: a damaged frame header, usually).
    """
    try:
        return _run_pipeline(Path(input_path), out_dir, config, classifier, labels, progress, stage)
    except MemoryError as exc:  # includes PyAV's av.error.MemoryError
        raise MediaError(
            "ran out of memory decoding it (a damaged or oversized frame?)", path=input_path
        ) from exc


def _run_pipeline(
    input_path: Path,
    out_dir: Path,
    config: PipelineConfig,
    classifier: Classifier | None,
    labels: Labels | None,
    progress: Progress | None,
    stage: StageCallback | None,
) -> FileResult:
    started = time.perf_counter()
    targets = output_paths(input_path, out_dir, config)
    for target in targets:
        if target.resolve() == input_path.resolve():
            raise OutputError("output would overwrite the input", path=target)
        check_writable_target(target, force=config.force)
    remove_stale_parts(out_dir)
    info = probe(input_path)

    if stage:
        stage("detect")
    # Fast mode draws wholly hidden GOPs from tiny previews of the scored frames.
    previews: dict[int, npt.NDArray[np.uint8]] | None = None
    if config.mode == "fast" and not config.labels_only:
        previews = {}
    if labels is not None:
        _check_labels_fit(labels, input_path, info, None)
    else:
        labels = _labels_for(input_path, info, config, classifier, progress, previews)

    video_path: Path | None = None
    render: RenderStats | None = None
    mode: Mode | None = None
    notes: list[str] = []
    if len(info.video_streams) > 1:
        others = ", ".join(map(str, info.video_streams[1:]))
        notes.append(
            f"the input has {len(info.video_streams)} video streams: stream "
            f"{info.video_streams[0]}, the first, was used (endoveil anonymizes one picture "
            f"stream); stream(s) {others} are not in the output"
        )
    labels_paths = targets[: 2 if config.labels_format != "endoveil" else 1]
    write_video = not config.labels_only
    if write_video and config.action == "cut" and labels.oob_mask().all():
        notes.append("every frame is out of body: nothing is left after cut, no video written")
        write_video = False
        if config.force:  # an older video must not sit beside these labels
            targets[-1].unlink(missing_ok=True)
    # The video first, then its labels: placed together or not at all (`atomic_paths`).
    group = [targets[-1], *labels_paths] if write_video else labels_paths
    with atomic_paths(group, overwrite=config.force) as tmps:
        if write_video:
            video_path = targets[-1]
            if stage:
                stage("write")
            mode, render, write_notes = _write_video(
                info, labels, tmps[0], config, progress, previews
            )
            notes += write_notes
            summary = _output_summary(mode, config, render)
            summary["video_sha256"] = file_sha256(tmps[0])
            labels = replace(labels, extra={**labels.extra, "output": summary})
        label_tmps = tmps[1:] if write_video else tmps
        formats: list[LabelsFormat] = ["endoveil", config.labels_format]
        for tmp, fmt in zip(label_tmps, formats, strict=False):
            tmp.write_text(labels_text(labels, fmt), encoding="utf-8")
    return FileResult(
        input=input_path,
        labels=labels,
        labels_paths=labels_paths,
        video_path=video_path,
        render=render,
        mode=mode,
        elapsed_s=time.perf_counter() - started,
        notes=notes,
    )


def _labels_for(
    input_path: Path,
    info: VideoInfo,
    config: PipelineConfig,
    classifier: Classifier | None,
    progress: Progress | None,
    previews: dict[int, npt.NDArray[np.uint8]] | None,
) -> Labels:
    if config.labels_in is not None:
        labels = Labels.load(config.labels_in)
        _check_labels_fit(labels, input_path, info, config.labels_in)
        return labels
    if classifier is None:
        raise ValueError("a classifier is needed unless labels_in is given")
    return scan_video(
        input_path,
        classifier,
        params=config.temporal(classifier.threshold),
        sample_every=config.sample_every,
        info=info,
        progress=progress,
        on_scored=None if previews is None else _keep_preview(previews),
    )


def _check_labels_fit(labels: Labels, input_path: Path, info: VideoInfo, path: Path | None) -> None:
    if labels.video.frame_count != info.frame_count:
        raise LabelsFormatError(
            f"labels are for {labels.video.frame_count} frames, "
            f"{input_path.name} has {info.frame_count}",
            path=path,
        )


def _keep_preview(
    previews: dict[int, npt.NDArray[np.uint8]],
) -> Callable[[int, npt.NDArray[np.uint8]], None]:
    def keep(index: int, image: npt.NDArray[np.uint8]) -> None:
        previews[index] = cv2.resize(image, (PREVIEW_SIZE, PREVIEW_SIZE), cv2.INTER_AREA)

    return keep


def _write_video(
    info: VideoInfo,
    labels: Labels,
    video_path: Path,
    config: PipelineConfig,
    progress: Progress | None,
    previews: dict[int, npt.NDArray[np.uint8]] | None,
) -> tuple[Mode, RenderStats, list[str]]:
    hide = labels.oob_mask()
    if not (config.keep_audio and info.has_audio):
        return _write_pictures(info, hide, video_path, config, progress, previews)
    with scratch_path(video_path, ".video.mp4") as pictures:
        mode, stats, notes = _write_pictures(info, hide, pictures, config, progress, previews)
        hidden = [(s.start_s, s.end_s) for s in labels.segments]
        add_audio(pictures, info, hidden, video_path, cut=config.action == "cut")
    return mode, stats, notes


def _write_pictures(
    info: VideoInfo,
    hide: npt.NDArray[np.bool_],
    path: Path,
    config: PipelineConfig,
    progress: Progress | None,
    previews: dict[int, npt.NDArray[np.uint8]] | None,
) -> tuple[Mode, RenderStats, list[str]]:
    notes: list[str] = []
    settings = {"action": config.action, "preset": config.x264_preset, "crf": config.crf}
    if config.mode == "fast":
        blocker = fast_mode_blocker(info)
        if blocker is None:
            stats = write_fast(info, hide, path, progress=progress, previews=previews, **settings)  # type: ignore[arg-type]
            if stats is not None:
                return "fast", stats, notes
            blocker = "its GOP structure interleaves frames across keyframes"
        notes.append(f"fast mode not possible ({blocker}): used exact mode")
    stats = write_exact(info, hide, path, progress=progress, **settings)  # type: ignore[arg-type]
    return "exact", stats, notes


def _output_summary(mode: Mode, config: PipelineConfig, render: RenderStats) -> dict[str, object]:
    return {
        "mode": mode,
        "action": config.action,
        "frames_written": render.frames_written,
        "frames_anonymized": render.frames_anonymized,
        "frames_cut": render.frames_cut,
        "inbody_frames_reencoded": render.inbody_frames_reencoded,
        "inbody_frames_lost": render.inbody_frames_lost,
    }
