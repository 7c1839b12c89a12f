"""One case, start to finish, wherever it runs (this process, a worker process, a Dask worker).

check segments → merge (scratch file named by the pseudonym) → `run_pipeline` into the output
root → optionally `verify` → checksums. The outcome carries no original name: errors are
redacted before they leave, because they end up in the output root's report.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from endoveil.anonymize.offline import EXACT_PRESET, PipelineConfig, run_pipeline
from endoveil.anonymize.verify import verify
from endoveil.cases.discover import Case
from endoveil.cases.merge import check_segments, merge_segments, plan_merge
from endoveil.detect.classifier import OnnxClassifier
from endoveil.media.reader import decoder_cores

__all__ = ["STAGES", "CaseJob", "CaseOutcome", "StageProgress", "process_case", "redact", "sha256"]

STAGES = ("check", "merge", "detect", "write", "verify", "hash")
StageProgress = Callable[[str, int, int], None]
"""Called with (stage, done, total) as a case advances."""

HASH_CHUNK = 1 << 20
MIN_REDACTED_STEM = 4


@dataclass(frozen=True)
class CaseJob:
    """Everything a worker needs for one case (picklable).

    Attributes:
        index: the case's number in this batch, from 1.
        case: the case (its segments are read on the worker: shared storage on a cluster).
        pseudonym: the name its outputs get.
        output_root: where outputs go.
        work_dir: the case's scratch folder (deleted afterwards).
        pipeline: the offline pipeline's settings.
        model: ONNX model; None for the embedded one.
        verify: re-decode the output and prove it before calling the case done.
        cores: cores this case may use, for ONNX Runtime's threads and the decoders'
            (the machine's cores shared between parallel cases).
    """

    index: int
    case: Case
    pseudonym: str
    output_root: Path
    work_dir: Path
    pipeline: PipelineConfig
    model: Path | None = None
    verify: bool = False
    cores: int | None = None


@dataclass
class CaseOutcome:
    """What happened to one case; pseudonymous (safe to write into the output root)."""

    index: int
    pseudonym: str
    ok: bool
    error: str = ""
    merge: str = ""
    merge_message: str = ""
    segments: int = 0
    frames: int = 0
    duration_s: float = 0.0
    elapsed_s: float = 0.0
    output_file: str = ""
    labels_file: str = ""
    output_sha256: str = ""
    labels_sha256: str = ""
    source_sha256: list[str] = field(default_factory=list)
    model: dict[str, str] = field(default_factory=dict)
    mode: str = ""
    oob_seconds: float = 0.0
    verified: bool | None = None
    notes: list[str] = field(default_factory=list)


def sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def redact(text: str, case: Case) -> str:
    """``text`` with every original path and name of ``case`` replaced by a neutral label.

    Example:
        >>> case = Case("Doe, Jane", Path("/in/Doe, Jane"), (Path("/in/Doe, Jane/VID1.MP4"),))
        >>> redact("/in/Doe, Jane/VID1.MP4: not a video", case)
        '<segment 1>: not a video'
    """
    labels: dict[str, str] = {}
    for n, segment in enumerate(case.segments, start=1):
        forms = [str(segment), os.path.abspath(segment), os.path.realpath(segment), segment.name]
        # A stem is only worth hiding when it can carry a name ("2" or "VID" cannot).
        if len(segment.stem) >= MIN_REDACTED_STEM:
            forms.append(segment.stem)
        for form in forms:
            labels.setdefault(form, f"<segment {n}>")
    folder = case.folder
    for form in (str(folder), os.path.abspath(folder), os.path.realpath(folder)):
        labels.setdefault(form, "<case>")
    for form in (folder.name, case.case_id):
        labels.setdefault(form, "<case>")
    originals = sorted((o for o in labels if o), key=len, reverse=True)
    if not originals:
        return text
    # One pass, longest first: a path is replaced whole, and no label is rewritten again.
    pattern = re.compile("|".join(re.escape(o) for o in originals))
    return pattern.sub(lambda m: labels[m.group(0)], text)


def process_case(job: CaseJob, progress: StageProgress | None = None) -> CaseOutcome:
    """Merge, de-identify and checksum one case; failures come back in the outcome.

    KeyboardInterrupt is not caught: an interrupted case is left as "running" in the state
    and cleaned and redone by the next run.
    """
    started = time.perf_counter()
    outcome = CaseOutcome(job.index, job.pseudonym, ok=False, segments=len(job.case.segments))
    report = progress or (lambda _s, _d, _t: None)
    try:
        with decoder_cores(job.cores):
            _run(job, outcome, report)
        outcome.ok = True
    except Exception as exc:  # a batch reports every failure and goes on with the next case
        kind = type(exc).__name__
        outcome.error = f"{kind}: {redact(str(exc), job.case)}"
    finally:
        shutil.rmtree(job.work_dir, ignore_errors=True)
        outcome.elapsed_s = time.perf_counter() - started
    return outcome


def _run(job: CaseJob, outcome: CaseOutcome, report: StageProgress) -> None:
    case, pseudonym = job.case, job.pseudonym
    report("check", 0, len(case.segments))
    infos = check_segments(case.segments)
    report("check", len(case.segments), len(case.segments))
    plan = plan_merge(infos)
    outcome.merge, outcome.merge_message = plan.method, plan.message

    job.work_dir.mkdir(parents=True, exist_ok=True)
    # The merged file's stem becomes the outputs' names: it must be the pseudonym.
    suffix = infos[0].path.suffix.lower() if plan.method == "single" else ".mp4"
    merged_path = job.work_dir / f"{pseudonym}{suffix}"
    settings = job.pipeline
    merged = merge_segments(
        plan,
        merged_path,
        keep_audio=settings.keep_audio,
        preset=settings.preset or EXACT_PRESET,
        crf=settings.crf,
        progress=lambda d, t: report("merge", d, t),
    )
    outcome.frames = merged.frame_count

    classifier = None
    if settings.labels_in is None:
        classifier = OnnxClassifier(job.model, threads=job.cores)
        info = classifier.info
        outcome.model = {"name": info.name, "version": info.version, "sha256": info.sha256}
    stage = ["detect"]
    result = run_pipeline(
        merged.path,
        job.output_root,
        settings,
        classifier,
        progress=lambda d, t: report(stage[0], d, t),
        stage=lambda name: stage.__setitem__(0, name),
    )
    outcome.duration_s = result.labels.video.duration_s
    outcome.oob_seconds = result.labels.oob_seconds
    outcome.mode = result.mode or ""
    outcome.notes = [redact(n, case) for n in result.notes]
    outcome.labels_file = result.labels_paths[0].name
    if result.video_path is not None:
        outcome.output_file = result.video_path.name

    if job.verify and result.video_path is not None:
        checked = verify(
            merged.path,
            result.video_path,
            result.labels,
            progress=lambda d, t: report("verify", d, t),
        )
        checked.raise_if_failed(Path(outcome.output_file))
        outcome.verified = True

    files = [*case.segments, *result.labels_paths[:1]]
    if result.video_path is not None:
        files.append(result.video_path)
    hashes = []
    for n, path in enumerate(files, start=1):
        report("hash", n - 1, len(files))
        hashes.append(sha256(path))
    report("hash", len(files), len(files))
    outcome.source_sha256 = hashes[: len(case.segments)]
    outcome.labels_sha256 = hashes[len(case.segments)]
    if result.video_path is not None:
        outcome.output_sha256 = hashes[-1]
