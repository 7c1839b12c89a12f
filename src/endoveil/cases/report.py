"""The batch summary: ``cases-report.json`` and a readable ``cases-report.txt``, pseudonyms only.

Both go to the output root, which is shared, so neither names a patient: cases are listed by
number (their position in this run) and pseudonym; errors were redacted by the worker.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from endoveil.atomic import write_text_atomic
from endoveil.cases.state import CaseRecord
from endoveil.cases.worker import CaseOutcome

__all__ = ["REPORT_JSON", "REPORT_TEXT", "BatchReport", "CaseEntry", "render_table", "write_report"]

REPORT_JSON = "cases-report.json"
REPORT_TEXT = "cases-report.txt"
SCHEMA = "endoveil/cases-report@1"

EntryStatus = Literal["done", "failed", "skipped"]


@dataclass
class CaseEntry:
    """One case's line in the report."""

    index: int
    pseudonym: str
    status: EntryStatus
    detail: str = ""
    merge: str = ""
    duration_s: float = 0.0
    elapsed_s: float = 0.0
    output_file: str = ""
    verified: bool | None = None

    @classmethod
    def skipped(cls, index: int, record: CaseRecord, why: str) -> CaseEntry:
        detail = f"{why}: {record.error}" if record.error else why
        return cls(index, record.pseudonym, "skipped", detail, output_file=record.output_file)

    @classmethod
    def from_outcome(cls, outcome: CaseOutcome) -> CaseEntry:
        detail = (
            outcome.error if not outcome.ok else "; ".join([outcome.merge_message, *outcome.notes])
        )
        return cls(
            index=outcome.index,
            pseudonym=outcome.pseudonym,
            status="done" if outcome.ok else "failed",
            detail=detail,
            merge=outcome.merge,
            duration_s=round(outcome.duration_s, 3),
            elapsed_s=round(outcome.elapsed_s, 3),
            output_file=outcome.output_file,
            verified=outcome.verified,
        )

    @property
    def speed_x(self) -> float:
        return self.duration_s / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class BatchReport:
    """The whole batch."""

    started_at: str
    cases: int
    entries: list[CaseEntry] = field(default_factory=list)
    elapsed_s: float = 0.0
    recovered: int = 0
    interrupted: bool = False

    def count(self, status: EntryStatus) -> int:
        return sum(e.status == status for e in self.entries)

    @property
    def failed(self) -> list[CaseEntry]:
        return [e for e in self.entries if e.status == "failed"]

    @property
    def video_hours_done(self) -> float:
        return sum(e.duration_s for e in self.entries if e.status == "done") / 3600

    @property
    def hours_per_hour(self) -> float:
        """Hours of video processed per hour of wall time (cases run in this run only)."""
        return self.video_hours_done * 3600 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "schema": SCHEMA,
            "started_at": self.started_at,
            "elapsed_s": round(self.elapsed_s, 3),
            "interrupted": self.interrupted,
            "cases": self.cases,
            "done": self.count("done"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "not_run": self.cases - len(self.entries),
            "recovered_unfinished": self.recovered,
            "video_hours_done": round(self.video_hours_done, 6),
            "video_hours_per_hour": round(self.hours_per_hour, 3),
            # By pseudonym and without the run order: the order cases are found in follows
            # their folder names, and would tie pseudonyms back to an alphabetical name list.
            "entries": [
                {k: v for k, v in asdict(e).items() if k != "index"}
                for e in sorted(self.entries, key=lambda e: e.pseudonym)
            ],
        }


def render_table(report: BatchReport) -> str:
    """The report as a fixed-width text table."""
    lines = [
        f"{'pseudonym':36}  {'status':7}  {'merge':9}  {'video s':>8}  {'× rt':>6}  detail",
    ]
    for e in sorted(report.entries, key=lambda e: e.pseudonym):
        speed = f"{e.speed_x:6.1f}" if e.status == "done" else f"{'':6}"
        lines.append(
            f"{e.pseudonym:36}  {e.status:7}  {e.merge:9}  {e.duration_s:8.1f}  {speed}  {e.detail}"
        )
    lines.append(
        f"{report.cases} case(s): {report.count('done')} done, {report.count('failed')} failed, "
        f"{report.count('skipped')} skipped, {report.cases - len(report.entries)} not run"
        f"{' (interrupted)' if report.interrupted else ''}; "
        f"{report.video_hours_done:.3f} h of video in {report.elapsed_s:.1f} s "
        f"= {report.hours_per_hour:.1f} h of video per hour"
    )
    return "\n".join(lines) + "\n"


def write_report(report: BatchReport, output_root: Path) -> tuple[Path, Path]:
    """Write the JSON and text reports into ``output_root`` (atomically)."""
    json_path, text_path = output_root / REPORT_JSON, output_root / REPORT_TEXT
    write_text_atomic(json_path, json.dumps(report.to_dict(), indent=1) + "\n")
    write_text_atomic(text_path, render_table(report))
    return json_path, text_path
