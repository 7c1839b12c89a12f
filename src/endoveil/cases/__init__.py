"""Cases: merge a case's segments, de-identify it, give it a pseudonym; batches and clusters.

    discover     find the cases of an archive, order their segments naturally
    merge        join segments: stream copy where parameters match, else re-encode
    pseudonym    UUID4 or keyed HMAC-SHA256 names; the secret
    mapping_log  the owner-only CSV linking pseudonyms to patients (outside the outputs)
    state        per-case progress in OUTPUT_ROOT/.endoveil-state/ (pseudonymous), resume
    worker       one case start to finish (wherever it runs)
    batch        many cases: skip done, isolate failures, log, report; worker processes
    report       the summary (JSON + text table), pseudonyms only
    cluster      the same batch on a Dask cluster (extra "cluster")

Every case goes through the offline pipeline (`endoveil.anonymize.offline.run_pipeline`).
"""

from endoveil.cases.batch import BatchSettings, run_batch
from endoveil.cases.discover import DEFAULT_PATTERNS, Case, Discovery, discover_cases, natural_key
from endoveil.cases.merge import MergePlan, MergeResult, check_segments, merge_segments, plan_merge
from endoveil.cases.report import BatchReport, CaseEntry
from endoveil.cases.worker import CaseJob, CaseOutcome, process_case

__all__ = [
    "DEFAULT_PATTERNS",
    "BatchReport",
    "BatchSettings",
    "Case",
    "CaseEntry",
    "CaseJob",
    "CaseOutcome",
    "Discovery",
    "MergePlan",
    "MergeResult",
    "check_segments",
    "discover_cases",
    "merge_segments",
    "natural_key",
    "plan_merge",
    "process_case",
    "run_batch",
]
