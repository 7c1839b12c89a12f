"""The same batch on a Dask cluster (LocalCluster, 2 worker processes): results, progress,
failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from endoveil.anonymize.offline import PipelineConfig
from endoveil.anonymize.verify import verify
from endoveil.cases.batch import BatchSettings, run_batch, shared_work
from endoveil.cases.cluster import run_on_cluster
from endoveil.cases.discover import Case, discover_cases
from endoveil.cases.merge import check_segments, merge_segments, plan_merge
from endoveil.cases.report import CaseEntry
from endoveil.cases.state import STATE_DIR

distributed = pytest.importorskip("distributed")


class Recorder:
    """Collects what a front end would show."""

    def __init__(self) -> None:
        self.stages: dict[int, set[str]] = {}
        self.finished: list[CaseEntry] = []

    def batch_started(self, cases: int, to_run: int) -> None:
        self.to_run = to_run

    def case_progress(self, index: int, stage: str, done: int, total: int) -> None:
        self.stages.setdefault(index, set()).add(stage)

    def case_finished(self, entry: CaseEntry, case: Case) -> None:
        self.finished.append(entry)


def test_batch_on_a_local_cluster(
    archive: Path, brightness_model_path: Path, tmp_path: Path
) -> None:
    settings = BatchSettings(
        output_root=tmp_path / "out",
        log=tmp_path / "log.csv",
        pipeline=PipelineConfig(mode="fast", margin_s=0.2),
        model=brightness_model_path,
        shared_work=True,
    )
    recorder = Recorder()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        assert len(cluster.workers) == 2
        report = run_batch(
            discover_cases(archive).cases,
            settings,
            observer=recorder,
            runner=run_on_cluster(cluster.scheduler_address),
        )

    # Cluster scratch (merged, not yet anonymized cases) stays out of the output root.
    folders = [p.relative_to(settings.output_root) for p in settings.output_root.rglob("*")]
    assert [str(p) for p in folders if (settings.output_root / p).is_dir()] == [STATE_DIR]
    assert not shared_work(settings.output_root, b"k").is_relative_to(settings.output_root)

    entries = {e.index: e for e in report.entries}
    assert [entries[i].status for i in (1, 2, 3)] == ["failed", "done", "done"]
    assert "<segment 2>" in entries[1].detail, "the failure comes back, redacted"
    assert sorted(e.index for e in recorder.finished) == [1, 2, 3]
    assert {"merge", "detect", "write"} <= recorder.stages[2], "progress came back"

    case = discover_cases(archive).cases[1]
    merged = merge_segments(plan_merge(check_segments(case.segments)), tmp_path / "m.mp4")
    out = settings.output_root
    pseudonym = entries[2].pseudonym
    checked = verify(
        merged.path, out / f"{pseudonym}.anonymized.mp4", out / f"{pseudonym}.labels.json"
    )
    assert checked.ok, checked.problems
