"""endoveil's public Python API: a few verbs with the command line's defaults.

    detect_oob       a video -> `Labels` (scores of the sampled frames, out-of-body segments)
    anonymize_video  a video -> labels file(s) and the anonymized video (`AnonymizeResult`)
    verify           prove an anonymized video against its original (`VerifyReport`)
    inspect          what in a media file could identify someone (`Finding` list)
    video_summary    what labels need to know of a video (`VideoSummary`)
    run_cases        a folder of cases: merge, anonymize, pseudonymize, resumable (`BatchReport`)
    live_frames      a camera, stream, file or your own frames, anonymized frame by frame

Every verb raises from `endoveil.errors` (`MediaError`, `ModelError`, `LabelsFormatError`,
`OutputError`, `LeakError`) on bad input and ``ValueError`` on bad arguments; none prints or
exits. Progress is an optional callback called with (frames done, frames in total). The CLI
(anonymize, verify, inspect, cases) and the GUI's detect and export jobs call these functions.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from endoveil.detect.labels import Labels, VideoSummary

if TYPE_CHECKING:
    import av

    from endoveil.anonymize.offline import FileResult
    from endoveil.anonymize.verify import VerifyReport
    from endoveil.cases.batch import BatchObserver
    from endoveil.cases.discover import Case
    from endoveil.cases.report import BatchReport
    from endoveil.detect.classifier import Classifier, OnnxClassifier
    from endoveil.live.sinks import Delivery
    from endoveil.live.sources import Source
    from endoveil.media.inspect import Finding

__all__ = [
    "LiveFrame",
    "LiveFrames",
    "ProgressCallback",
    "StageCallback",
    "anonymize_video",
    "detect_oob",
    "inspect",
    "live_frames",
    "load_model",
    "run_cases",
    "verify",
    "video_summary",
]

ProgressCallback = Callable[[int, int], None]
"""Called with (frames done, frames in total) as work advances."""

StageCallback = Callable[[str], None]
"""Called with the name of each stage as it starts ("detect", "write")."""

_models: dict[Path | None, OnnxClassifier] = {}
_models_lock = threading.Lock()


def load_model(
    model: str | os.PathLike[str] | Classifier | None = None, *, background: bool = False
) -> Classifier:
    """The classifier for ``model``: an ONNX file, or the embedded model when None.

    ONNX files are loaded once per process and reused (loading costs more than scoring a few
    frames; a load that failed is tried again); a `Classifier` object is returned as is.

    Args:
        model: as above.
        background: return while the model still loads (see `OnnxClassifier`): its first use
            waits, and raises `ModelError` there if it cannot be loaded.

    Raises:
        ModelError: the file is missing, not ONNX, or lacks the documented interface (with
            ``background``, only a missing file is reported here).
    """
    from endoveil.detect.classifier import OnnxClassifier

    # Not a protocol isinstance check: it would read the attributes, and so wait for a model
    # still loading in the background.
    if model is not None and not isinstance(model, str | os.PathLike):
        return model
    key = Path(model).resolve() if model is not None else None
    with _models_lock:
        if key not in _models or _models[key].failed():
            _models[key] = OnnxClassifier(key, background=True)
        classifier = _models[key]
    if not background:
        classifier.wait()
    return classifier


def video_summary(video: str | Path) -> VideoSummary:
    """Duration, rate, frame count and display size of a video, as labels record them.

    Raises:
        MediaError: the file cannot be opened or has no video frames.
    """
    from endoveil.detect.scan import summarize
    from endoveil.media.probe import probe

    return summarize(probe(video))


def detect_oob(
    video: str | Path,
    *,
    model: str | Path | Classifier | None = None,
    threshold: float | None = None,
    margin_s: float = 1.0,
    smoothing_s: float = 1.0,
    sample_every: int | None = None,
    progress: ProgressCallback | None = None,
) -> Labels:
    """Find the out-of-body frames of a video; nothing is written.

    Args:
        video: the video (opened read-only).
        model: ONNX file or `Classifier`; None: the embedded model.
        threshold: p(out of body) at or above which a frame is out of body; None: the
            model's own.
        margin_s: seconds hidden before and after every out-of-body segment.
        smoothing_s: in-body gaps shorter than this between two segments are hidden too.
        sample_every: score one frame in this many; None: about 6 per second.
        progress: called with (frames done, total).

    Returns:
        `Labels`: the scored frames and the final out-of-body segments.

    Raises:
        MediaError: the video cannot be read. ModelError: the model cannot be loaded or run.
    """
    from endoveil.detect.scan import scan_video
    from endoveil.detect.temporal import TemporalParams

    _check_detection(threshold, margin_s, smoothing_s, sample_every)
    classifier = load_model(model)
    params = TemporalParams(
        threshold=threshold if threshold is not None else classifier.threshold,
        smoothing_s=smoothing_s,
        margin_s=margin_s,
    )
    return scan_video(
        Path(video), classifier, params=params, sample_every=sample_every, progress=progress
    )


def anonymize_video(
    video: str | Path,
    output_dir: str | Path = "out",
    *,
    labels: Labels | str | Path | None = None,
    action: str = "blur",
    mode: str = "exact",
    threshold: float | None = None,
    margin_s: float = 1.0,
    smoothing_s: float = 1.0,
    sample_every: int | None = None,
    labels_only: bool = False,
    labels_format: str = "endoveil",
    keep_audio: bool = False,
    preset: str | None = None,
    crf: int = 18,
    model: str | Path | Classifier | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    stage: StageCallback | None = None,
) -> FileResult:
    """Detect (or take given labels), hide out-of-body frames, strip metadata, write atomically.

    Writes ``<stem>.labels.json`` (and the ``labels_format`` file if another) and, unless
    ``labels_only``, ``<stem>.anonymized.mp4`` into ``output_dir``.

    Args:
        video: the video (opened read-only, never modified).
        output_dir: where outputs go (created if missing).
        labels: use these labels (e.g. reviewed ones; `Labels` or a file in any supported
            format) instead of running the model.
        action: ``blur``, ``pixelate``, ``black`` or ``cut``.
        mode: ``exact`` (re-encode every frame) or ``fast`` (copy in-body GOPs bit for bit).
        threshold, margin_s, smoothing_s, sample_every, model: as for `detect_oob`.
        labels_only: write the labels, not the video.
        labels_format: also write ``roban`` or ``oobnet-csv`` labels.
        keep_audio: keep the sound, silenced during out-of-body segments.
        preset: libx264 preset of re-encoded frames; None: ``superfast`` (``ultrafast`` in
            fast mode).
        crf: libx264 quality of re-encoded frames.
        force: overwrite existing outputs.
        progress: called with (frames done, total) within each stage.
        stage: called with each stage's name as it starts.

    Returns:
        `AnonymizeResult`: labels, output paths, mode used, in-body frames re-encoded or
        lost, time and speed.

    Raises:
        OutputExistsError: an output exists (without ``force``). OutputError: an output
            would overwrite the input, or cannot be written. MediaError, ModelError,
            LabelsFormatError: as named.
    """
    from endoveil.anonymize.offline import PipelineConfig, run_pipeline

    _check_detection(threshold, margin_s, smoothing_s, sample_every)
    config = PipelineConfig(
        action=action,  # type: ignore[arg-type]  # checked by PipelineConfig
        mode=mode,  # type: ignore[arg-type]
        threshold=threshold,
        margin_s=margin_s,
        smoothing_s=smoothing_s,
        sample_every=sample_every,
        labels_only=labels_only,
        labels_format=labels_format,  # type: ignore[arg-type]
        keep_audio=keep_audio,
        preset=preset,
        crf=crf,
        force=force,
    )
    out_dir = Path(output_dir)
    given = None if labels is None else _given_labels(Path(video), labels)
    classifier = None if given is not None else load_model(model)
    _make_folder(out_dir)
    return run_pipeline(
        Path(video), out_dir, config, classifier, labels=given, progress=progress, stage=stage
    )


def verify(
    original: str | Path,
    anonymized: str | Path,
    labels: Labels | str | Path,
    *,
    timing: bool = True,
    progress: ProgressCallback | None = None,
) -> VerifyReport:
    """Re-decode ``anonymized`` and prove it against ``original`` and ``labels``.

    Every out-of-body frame must be hidden (or cut), every in-body frame present, on time and
    intact, kept sound silent where hidden, and no identifying metadata left. The report's
    ``ok`` says whether all held; ``report.raise_if_failed(path)`` turns a failure into a
    `LeakError`.

    Args:
        original: the source video.
        anonymized: the output to check.
        labels: the labels it was made with (`Labels` or their endoveil JSON).
        timing: also check each frame's time (off for live recordings).
        progress: called with (frames done, total).

    Raises:
        MediaError: either video cannot be read. LabelsFormatError: bad labels file.
    """
    from endoveil.anonymize.verify import verify as verify_files

    return verify_files(original, anonymized, labels, timing=timing, progress=progress)


def inspect(path: str | Path) -> list[Finding]:
    """Whatever in a media file could identify someone or something: tags, chapters, data and
    subtitle streams, SEI user data, audio (a notice). An empty list means clean.

    Raises:
        MediaError: the file cannot be opened.
    """
    from endoveil.media.inspect import inspect_file

    return inspect_file(path)


def run_cases(
    input_root: str | Path,
    output_root: str | Path,
    *,
    log: str | Path | None = None,
    patterns: Sequence[str] | None = None,
    group_by: str | None = None,
    pseudonym: str = "uuid",
    secret: bytes | None = None,
    action: str = "blur",
    mode: str = "exact",
    threshold: float | None = None,
    margin_s: float = 1.0,
    smoothing_s: float = 1.0,
    sample_every: int | None = None,
    keep_audio: bool = False,
    preset: str | None = None,
    crf: int = 18,
    model: str | Path | None = None,
    verify: bool = False,
    workers: int = 1,
    retry_failed: bool = False,
    cluster: str | None = None,
    observer: BatchObserver | None = None,
    cases: Sequence[Case] | None = None,
) -> BatchReport:
    """Anonymize an archive, one case per sub-folder; resumes where an earlier run stopped.

    Each case's segments are joined, anonymized, and written as ``<pseudonym>.anonymized.mp4``
    and ``<pseudonym>.labels.json``; the link to the original name goes only to the mapping
    ``log``, which must lie outside ``output_root``. A failing case is recorded and skipped.

    Args:
        input_root: the archive.
        output_root: where pseudonymous outputs, the resume state and the report go.
        log: the mapping log CSV; None: ``~/.local/share/endoveil/mapping-log.csv``.
        patterns: segment file patterns; None: common video types.
        group_by: a regex grouping files lying directly in ``input_root`` into cases.
        pseudonym: ``uuid`` (random) or ``hmac`` (keyed with ``secret``, stable).
        secret: the HMAC secret (``hmac`` only).
        action, mode, threshold, margin_s, smoothing_s, sample_every, keep_audio, preset,
            crf, model: as for `anonymize_video`.
        verify: prove every output before calling its case done.
        workers: cases run in parallel processes.
        retry_failed: run again the cases that failed in an earlier run.
        cluster: a Dask scheduler address (extra ``cluster``) to run the cases on.
        observer: told of progress (``batch_started``, ``case_progress``, ``case_finished``).
        cases: the cases, if already found with ``endoveil.cases.discover_cases`` (e.g. to
            show the files it ignored first); None finds them under ``input_root``.

    Returns:
        The `BatchReport` (also written as ``cases-report.json`` / ``.txt``).

    Raises:
        OutputError: the log is inside the output root, or another run holds it.
        MediaError: ``input_root`` is not a folder or holds no case.
    """
    from endoveil.anonymize.offline import PipelineConfig
    from endoveil.cases.batch import BatchSettings, run_batch
    from endoveil.cases.discover import DEFAULT_PATTERNS, discover_cases
    from endoveil.cases.mapping_log import check_log_location, default_log_path
    from endoveil.errors import MediaError

    _check_detection(threshold, margin_s, smoothing_s, sample_every)
    config = PipelineConfig(
        action=action,  # type: ignore[arg-type]  # checked by PipelineConfig
        mode=mode,  # type: ignore[arg-type]
        threshold=threshold,
        margin_s=margin_s,
        smoothing_s=smoothing_s,
        sample_every=sample_every,
        keep_audio=keep_audio,
        preset=preset,
        crf=crf,
    )
    if pseudonym not in ("uuid", "hmac"):
        raise ValueError(f"pseudonym must be uuid or hmac, got {pseudonym!r}")
    log_path = Path(log) if log is not None else default_log_path()
    check_log_location(log_path, Path(output_root))
    if cases is None:
        try:
            found = discover_cases(
                Path(input_root), patterns=tuple(patterns or DEFAULT_PATTERNS), group_by=group_by
            )
        except NotADirectoryError as exc:
            raise MediaError(str(exc), path=input_root) from exc
        cases = found.cases
    if not cases:
        raise MediaError("no case found (one sub-folder of videos per case)", path=input_root)
    settings = BatchSettings(
        output_root=Path(output_root),
        log=log_path,
        pipeline=config,
        model=Path(model) if model is not None else None,
        pseudonym=pseudonym,  # type: ignore[arg-type]
        secret=secret,
        verify=verify,
        workers=workers,
        retry_failed=retry_failed,
        shared_work=cluster is not None,
    )
    runner = None
    if cluster is not None:
        from endoveil.cases.cluster import import_distributed, run_on_cluster

        import_distributed()
        runner = run_on_cluster(cluster)
    return run_batch(cases, settings, observer=observer, runner=runner)


@dataclass(frozen=True)
class LiveFrame:
    """One output frame of a live session, already anonymized where ``hidden``.

    Attributes:
        frame: the picture as shown (upright, yuv420p; blurred etc. where hidden).
        index: the source frame it shows, from 0.
        time_s: seconds since the session's first frame (the capture clock).
        p_out: the model's score, or None when the frame was not scored (late or the model
            failed: then it is hidden).
        hidden: whether the picture was anonymized.
        state: ``clear``, ``anonymized`` or ``fail-closed``.
    """

    frame: av.VideoFrame
    index: int
    time_s: float
    p_out: float | None
    hidden: bool
    state: str

    def to_rgb(self) -> npt.NDArray[np.uint8]:
        """The picture as an RGB array (height × width × 3)."""
        return self.frame.to_ndarray(format="rgb24")


class LiveFrames:
    """A live session, iterated frame by frame in the caller's thread; a context manager.

    Made by `live_frames`. Each frame is read from the source, scored and anonymized before
    it is yielded; the session starts anonymized and turns clear only after ``hold_s`` of
    in-body scores. With ``delay_frames`` > 0 a frame is yielded that many frames later, and
    hidden if any of those later frames is suspicious; the frames still held back when the
    source ends are yielded hidden.
    """

    def __init__(self, source: Source, classifier: Classifier, config: Any) -> None:
        from endoveil.live.loop import LiveSession

        self._source = source
        self._session = LiveSession(source, classifier, [], config)
        self._t0: float | None = None
        self._closed = False

    def __iter__(self) -> Iterator[LiveFrame]:
        from endoveil.live.sources import SourceError

        self._session.start()
        self._source.open()
        try:
            while True:
                try:
                    captured = self._source.read()
                except SourceError:
                    yield from self._convert(self._session.finish())
                    raise
                if captured is None:
                    break
                yield from self._convert(self._session.step(captured))
            yield from self._convert(self._session.finish())
        finally:
            self.close()

    def _convert(self, deliveries: list[Delivery]) -> Iterator[LiveFrame]:
        for item in deliveries:
            if self._t0 is None:
                self._t0 = item.t_capture
            yield LiveFrame(
                frame=item.frame,
                index=item.source_index,
                time_s=item.t_capture - self._t0,
                p_out=item.p_out,
                hidden=item.hidden,
                state=item.state,
            )

    @property
    def report(self) -> Any:
        """The session's `LiveReport` so far (frames scored, hidden, not scored...)."""
        return self._session.report

    def close(self) -> None:
        """Release the source; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._source.close()

    def __enter__(self) -> LiveFrames:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def live_frames(
    source: str | Path | Iterable[npt.NDArray[np.uint8] | av.VideoFrame],
    *,
    action: str = "blur",
    threshold: float | None = None,
    hold_s: float = 2.0,
    delay_frames: int = 0,
    max_lag_s: float = 0.2,
    realtime: bool = True,
    loop: bool = False,
    model: str | Path | Classifier | None = None,
) -> LiveFrames:
    """Anonymize a live source frame by frame: iterate the result to get `LiveFrame` objects.

    Args:
        source: a camera index (``"0"``) or device, a stream URL (rtsp://, srt://...),
            ``lavfi:SPEC``, a video file, or your own frames (RGB uint8 arrays of
            height × width × 3, or ``av.VideoFrame``), e.g. from your capture loop.
        action: ``blur``, ``pixelate`` or ``black``.
        threshold: as for `detect_oob`.
        hold_s: seconds of in-body scores needed before the output turns clear.
        delay_frames: frames of look-ahead: more latency, earlier hiding.
        max_lag_s: a frame older than this when the model gets to it is not scored (hidden).
        realtime: play a file source at its own rate, like a camera.
        loop: loop a file source.
        model: as for `detect_oob`.

    Raises:
        ValueError: bad settings. ModelError: the model cannot be loaded. MediaError: the
            source cannot be opened (when iterating).
    """
    from endoveil.live.loop import LiveConfig
    from endoveil.live.sources import IterableSource, open_source

    config = LiveConfig(
        action=action,  # type: ignore[arg-type]  # checked by LiveConfig
        threshold=threshold,
        hold_s=hold_s,
        delay_frames=delay_frames,
        max_lag_s=max_lag_s,
        reconnect=False,
    )
    if isinstance(source, str | Path):
        src = open_source(str(source), realtime=realtime, loop=loop)
    else:
        src = IterableSource(source)
    return LiveFrames(src, load_model(model), config)


def _given_labels(video: Path, labels: Labels | str | Path) -> Labels:
    """Labels from an object or a file of any supported format, checked against the video."""
    from endoveil.detect.scan import summarize
    from endoveil.errors import LabelsFormatError
    from endoveil.media.probe import probe

    if isinstance(labels, Labels):
        return labels  # the pipeline checks that they fit the video
    path, info = Path(labels), probe(video)
    loaded = Labels.load(path, video=summarize(info), frame_times=info.frame_times)
    if loaded.video.frame_count != info.frame_count:
        raise LabelsFormatError(
            f"labels are for {loaded.video.frame_count} frames, "
            f"{video.name} has {info.frame_count}",
            path=path,
        )
    return loaded


def _check_detection(
    threshold: float | None, margin_s: float, smoothing_s: float, sample_every: int | None
) -> None:
    if threshold is not None and not 0 < threshold <= 1:
        raise ValueError("threshold must be in (0, 1]")
    if margin_s < 0 or smoothing_s < 0:
        raise ValueError("margin_s and smoothing_s must be >= 0")
    if sample_every is not None and sample_every < 1:
        raise ValueError("sample_every must be >= 1")


def _make_folder(folder: Path) -> None:
    from endoveil.errors import OutputError

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder: {exc.strerror}", path=folder) from exc
