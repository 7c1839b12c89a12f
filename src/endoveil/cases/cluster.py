"""Run a batch's cases on a Dask distributed cluster: each case one task.

The client (the ``endoveil cases`` process) keeps everything that names a patient: discovery,
the state, the mapping log. Workers get a `CaseJob`, read the segments and write the outputs
on storage they share with the client (same paths everywhere), and send progress back through
a `distributed.Queue`; results and failures come back as tasks complete (`as_completed`).

Dask is an optional dependency: ``pip install 'endoveil[cluster]'``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from endoveil.cases.batch import OnDone, OnProgress, Runner, Throttle
from endoveil.cases.worker import CaseJob, CaseOutcome, process_case, redact

__all__ = ["INSTALL_HINT", "import_distributed", "run_on_cluster"]

INSTALL_HINT = "--cluster needs Dask distributed: pip install 'endoveil[cluster]'"
POLL_S = 0.1


def import_distributed() -> ModuleType:
    """The ``distributed`` module, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return distributed


def run_on_cluster(address: Any) -> Runner:
    """A runner submitting every case to the Dask scheduler at ``address``.

    Args:
        address: ``tcp://host:8786``, or anything `distributed.Client` accepts (a
            ``LocalCluster`` in tests).
    """

    def run(jobs: Sequence[CaseJob], on_progress: OnProgress, on_done: OnDone) -> None:
        if not jobs:
            return
        distributed = import_distributed()
        with distributed.Client(address) as client:
            events = distributed.Queue(f"endoveil-progress-{uuid.uuid4().hex}", client=client)
            futures = {
                client.submit(
                    _cluster_task,
                    job,
                    events.name,
                    key=f"endoveil-case-{job.pseudonym}",
                    pure=False,
                ): job
                for job in jobs
            }
            finished = distributed.as_completed(list(futures))
            try:
                while not finished.is_empty():
                    for index, stage, done, total in events.get(batch=True):
                        on_progress(index, stage, done, total)
                    ready = finished.next_batch(block=False) if finished.has_ready() else []
                    for future in ready:
                        job = futures[future]
                        on_done(job, _outcome_of(future, job))
                    if not ready:
                        time.sleep(POLL_S)
            except BaseException:
                client.cancel(list(futures))
                raise

    return run


def _cluster_task(job: CaseJob, queue_name: str) -> CaseOutcome:
    """Runs on a worker: one case, progress sent to the client's queue."""
    from distributed import Queue

    events = Queue(queue_name)
    return process_case(job, Throttle(job.index, lambda event: events.put(list(event))))


def _outcome_of(future: Any, job: CaseJob) -> CaseOutcome:
    try:
        return future.result()  # type: ignore[no-any-return]
    except Exception as exc:  # process_case catches case errors: this is a lost worker
        error = f"{type(exc).__name__}: {redact(str(exc), job.case)}"
        return CaseOutcome(job.index, job.pseudonym, ok=False, error=error)
