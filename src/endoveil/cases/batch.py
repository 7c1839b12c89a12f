"""Run many cases unattended: resume, isolate failures, log the mapping, report.

`run_batch` decides what each case needs (skip: done before; skip: failed before, unless
``retry_failed``; run), hands the runs to a runner — this process, a pool of worker processes
(``workers > 1``) or a Dask cluster (`endoveil.cases.cluster`) — and, in this process as each
case finishes, appends the mapping-log row, then marks the case done in the state. A failing
case is recorded and its files removed; the others go on. A summary is written at the end,
also after Ctrl-C, which then propagates.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import hashlib
import hmac
import multiprocessing as mp
import os
import queue as queue_module
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from endoveil import __version__
from endoveil.anonymize.offline import PipelineConfig
from endoveil.cases.discover import Case
from endoveil.cases.mapping_log import MappingRow, append_row, check_log_location
from endoveil.cases.pseudonym import (
    PseudonymKind,
    derive_key,
    hmac_pseudonym,
    uuid_pseudonym,
)
from endoveil.cases.report import BatchReport, CaseEntry, write_report
from endoveil.cases.state import CaseRecord, StateStore, load_or_create_key, now_utc
from endoveil.cases.worker import CaseJob, CaseOutcome, process_case, redact, sha256
from endoveil.detect.classifier import default_model_path
from endoveil.errors import ModelError, OutputError
from endoveil.media.reader import usable_cores

__all__ = ["BatchObserver", "BatchSettings", "run_batch", "shared_work", "state_key_path"]

ProgressEvent = tuple[int, str, int, int]
"""(case index, stage, done, total)"""
OnProgress = Callable[[int, str, int, int], None]
OnDone = Callable[[CaseJob, CaseOutcome], None]
Runner = Callable[[Sequence[CaseJob], OnProgress, OnDone], None]

PROGRESS_INTERVAL_S = 0.25


class BatchObserver(Protocol):
    """What a front end sees of a batch (all calls come from the thread running it)."""

    def batch_started(self, cases: int, to_run: int) -> None: ...

    def case_progress(self, index: int, stage: str, done: int, total: int) -> None: ...

    def case_finished(self, entry: CaseEntry, case: Case) -> None: ...


@dataclass(frozen=True)
class BatchSettings:
    """One batch's settings.

    Attributes:
        output_root: where outputs, state and the report go.
        log: the mapping log (outside ``output_root``).
        pipeline: the offline pipeline's settings.
        model: ONNX model; None for the embedded one.
        pseudonym: ``uuid`` or ``hmac``.
        secret: the HMAC secret (``hmac`` only).
        verify: prove every output with `verify` before calling its case done.
        workers: cases run in parallel (worker processes).
        retry_failed: run again the cases that failed in an earlier run.
        shared_work: merge cases beside the output root (a Dask cluster's workers must reach
            the scratch files on shared storage; see `shared_work`); otherwise beside the
            mapping log. Either way the output root never holds a raw, merged case.
    """

    output_root: Path
    log: Path
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    model: Path | None = None
    pseudonym: PseudonymKind = "uuid"
    secret: bytes | None = field(default=None, repr=False)
    verify: bool = False
    workers: int = 1
    retry_failed: bool = False
    shared_work: bool = False

    def __post_init__(self) -> None:
        if self.pseudonym == "hmac" and not self.secret:
            raise ValueError("hmac pseudonyms need a secret")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")

    def fingerprint(self, model_sha256: str) -> dict[str, Any]:
        """The settings a resumed run must share with the first (nothing patient-related)."""
        config = asdict(self.pipeline)
        for transient in ("force", "labels_in"):
            config.pop(transient, None)
        return {
            **config,
            "model_sha256": model_sha256,
            "pseudonym": self.pseudonym,
            "verify": self.verify,
        }


def state_key_path(log: Path) -> Path:
    """Where the random state key of UUID-pseudonym batches lives: beside the mapping log."""
    return Path(f"{log}.statekey")


def run_batch(
    cases: Sequence[Case],
    settings: BatchSettings,
    *,
    observer: BatchObserver | None = None,
    runner: Runner | None = None,
) -> BatchReport:
    """Run every case not done yet; write the report; return it.

    Args:
        cases: from `discover_cases`.
        settings: the batch's settings.
        observer: told about progress (e.g. the CLI's progress bars).
        runner: runs the jobs; default: in this process (``workers == 1``) or a process pool.

    Raises:
        OutputError: the log is inside the output root, another run holds the output root,
            or it was started with other settings or another key.
        KeyboardInterrupt: after the report is written; unfinished cases are redone next time.
    """
    started = time.perf_counter()
    root = Path(settings.output_root)
    check_log_location(settings.log, root)
    root.mkdir(parents=True, exist_ok=True)
    model_sha = _model_sha256(settings.model)
    if settings.pseudonym == "hmac":
        assert settings.secret is not None
        key = derive_key(settings.secret, "state")
    else:
        key = load_or_create_key(state_key_path(settings.log))
    report = BatchReport(started_at=now_utc(), cases=len(cases))
    work = (
        shared_work(root, key) if settings.shared_work else _private_work(settings.log, key, root)
    )
    with StateStore(root, key, work=work) as store:
        store.check_run(settings.fingerprint(model_sha))
        report.recovered = store.recover()
        jobs, skipped = _plan(cases, settings, store)
        by_index = {job.index: job for job in jobs}
        report.entries.extend(skipped)
        if observer:
            observer.batch_started(len(cases), len(jobs))
            for entry in skipped:
                observer.case_finished(entry, cases[entry.index - 1])

        def on_progress(index: int, stage: str, done: int, total: int) -> None:
            if observer and index in by_index:
                observer.case_progress(index, stage, done, total)

        def on_done(job: CaseJob, outcome: CaseOutcome) -> None:
            entry = _finish(job, outcome, settings, store, model_sha)
            report.entries.append(entry)
            if observer:
                observer.case_finished(entry, job.case)

        run = runner or (run_inline if settings.workers == 1 else run_in_pool(settings.workers))
        try:
            run(jobs, on_progress, on_done)
        except KeyboardInterrupt:
            report.interrupted = True
            raise
        finally:
            report.elapsed_s = time.perf_counter() - started
            write_report(report, root)
    return report


def shared_work(root: Path, key: bytes) -> Path:
    """Scratch space a cluster's workers reach: beside the output root (on the same shared
    storage), never inside it, so the shared folder holds no raw, merged case; named by a
    keyed hash of the root."""
    digest = hmac.new(key, str(root.resolve()).encode(), hashlib.sha256).hexdigest()[:24]
    return root.resolve().parent / ".endoveil-work" / digest


def _private_work(log: Path, key: bytes, root: Path) -> Path:
    """Scratch space beside the (private) mapping log, named by a keyed hash of the output
    root so that neither names nor paths show in it."""
    digest = hmac.new(key, str(root.resolve()).encode(), hashlib.sha256).hexdigest()[:24]
    return Path(log).parent / "work" / digest


def _model_sha256(model: Path | None) -> str:
    path = model or default_model_path()
    try:
        return sha256(path)
    except OSError as exc:
        raise ModelError(f"cannot read the model: {exc.strerror}", path=path) from exc


def _plan(
    cases: Sequence[Case], settings: BatchSettings, store: StateStore
) -> tuple[list[CaseJob], list[CaseEntry]]:
    jobs: list[CaseJob] = []
    skipped: list[CaseEntry] = []
    cores = max(1, usable_cores() // settings.workers)
    for index, case in enumerate(cases, start=1):
        record = store.read(case.case_id)
        if record is not None and record.status == "done" and store.outputs_exist(record):
            skipped.append(CaseEntry.skipped(index, record, "done before"))
            continue
        if record is not None and record.status == "failed" and not settings.retry_failed:
            skipped.append(CaseEntry.skipped(index, record, "failed before (--retry-failed)"))
            continue
        if settings.pseudonym == "hmac":
            assert settings.secret is not None
            pseudonym = hmac_pseudonym(settings.secret, case.case_id)
        else:
            # A case redone after an interruption keeps its name: its log row may exist.
            pseudonym = record.pseudonym if record is not None else uuid_pseudonym()
        store.remove_outputs(pseudonym)
        # Recorded before any file of the case exists, so a kill never leaves untracked files.
        store.write(case.case_id, CaseRecord(pseudonym, "running", started_at=now_utc()))
        jobs.append(
            CaseJob(
                index=index,
                case=case,
                pseudonym=pseudonym,
                output_root=store.output_root,
                work_dir=store.work_dir(pseudonym),
                pipeline=settings.pipeline,
                model=settings.model,
                verify=settings.verify,
                cores=cores,
            )
        )
    return jobs, skipped


def _finish(
    job: CaseJob,
    outcome: CaseOutcome,
    settings: BatchSettings,
    store: StateStore,
    model_sha: str,
) -> CaseEntry:
    case = job.case
    record = CaseRecord(job.pseudonym, "failed", started_at=now_utc())
    previous = store.read(case.case_id)
    if previous is not None:
        record.started_at = previous.started_at
    if outcome.ok:
        try:
            append_row(settings.log, _mapping_row(job, outcome, settings, model_sha))
        except OutputError as exc:
            outcome.ok = False
            outcome.error = f"OutputError: mapping log not written: {exc.message}"
    if not outcome.ok:
        # Whatever a failed case wrote goes: it is not verified, and it is not in the log.
        store.remove_outputs(job.pseudonym)
        record.error = outcome.error
    else:
        record.status = "done"
        record.output_file = outcome.output_file
        record.output_sha256 = outcome.output_sha256
        record.labels_file = outcome.labels_file
        record.duration_s = outcome.duration_s
    record.finished_at = now_utc()
    store.write(case.case_id, record)
    return CaseEntry.from_outcome(outcome)


def _mapping_row(
    job: CaseJob, outcome: CaseOutcome, settings: BatchSettings, model_sha: str
) -> MappingRow:
    case = job.case
    config = asdict(settings.pipeline)
    config.pop("force", None)
    config["labels_in"] = str(config["labels_in"]) if config["labels_in"] else None
    return MappingRow(
        case_folder=os.path.abspath(case.folder),
        case=case.case_id,
        original_files=[str(p.relative_to(case.folder)) for p in case.segments],
        pseudonym=job.pseudonym,
        created_at=now_utc(),
        source_sha256=outcome.source_sha256,
        output_file=outcome.output_file,
        output_sha256=outcome.output_sha256,
        labels_sha256=outcome.labels_sha256,
        model={**outcome.model, "sha256": outcome.model.get("sha256", model_sha)},
        parameters={
            **config,
            "pseudonym": settings.pseudonym,
            "merge": outcome.merge,
            "mode_used": outcome.mode,
            "verified": outcome.verified,
            "endoveil": __version__,
        },
    )


# runners ---------------------------------------------------------------------------------------
class Throttle:
    """Forwards progress at most every ``PROGRESS_INTERVAL_S`` (and at every stage change)."""

    def __init__(self, index: int, send: Callable[[ProgressEvent], None]) -> None:
        self.index = index
        self.send = send
        self._last = 0.0
        self._stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self._stage or done >= total or now - self._last >= PROGRESS_INTERVAL_S:
            self._stage, self._last = stage, now
            self.send((self.index, stage, done, total))


def run_inline(jobs: Sequence[CaseJob], on_progress: OnProgress, on_done: OnDone) -> None:
    """Run the cases one after the other in this process."""
    for job in jobs:
        outcome = process_case(job, lambda s, d, t, i=job.index: on_progress(i, s, d, t))
        on_done(job, outcome)


# The worker process's end of the progress queue. A process-wide global is the only way to
# hand a multiprocessing queue to pool workers (it must be inherited, not pickled per task).
_worker_queue: Any = None


def _init_worker(progress_queue: Any) -> None:
    global _worker_queue
    _worker_queue = progress_queue
    if sys.platform.startswith("linux"):
        # Die with the batch: an orphan finishing a case after a kill would write files the
        # next run is cleaning.
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _pool_task(job: CaseJob) -> CaseOutcome:
    throttle = Throttle(job.index, _worker_queue.put)
    return process_case(job, throttle)


def run_in_pool(workers: int) -> Runner:
    """A runner with ``workers`` worker processes (spawned: no state inherited by fork)."""

    def run(jobs: Sequence[CaseJob], on_progress: OnProgress, on_done: OnDone) -> None:
        if not jobs:
            return
        context = mp.get_context("spawn")
        events = context.Queue()
        pool = cf.ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(events,),
        )
        try:
            pending = {pool.submit(_pool_task, job): job for job in jobs}
            while pending:
                done, _ = cf.wait(pending, timeout=0.1, return_when=cf.FIRST_COMPLETED)
                _drain(events, on_progress)
                for future in done:
                    job = pending.pop(future)
                    on_done(job, _outcome_of(future, job))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            events.close()

    return run


def _drain(events: Any, on_progress: OnProgress) -> None:
    while True:
        try:
            index, stage, done, total = events.get_nowait()
        except queue_module.Empty:
            return
        on_progress(index, stage, done, total)


def _outcome_of(future: cf.Future[CaseOutcome], job: CaseJob) -> CaseOutcome:
    try:
        return future.result()
    except cf.process.BrokenProcessPool as exc:
        error = f"worker process died: {redact(str(exc), job.case)}"
    except Exception as exc:  # process_case catches case errors; this is infrastructure
        error = f"{type(exc).__name__}: {redact(str(exc), job.case)}"
    return CaseOutcome(job.index, job.pseudonym, ok=False, error=error)
