"""What each kind of job does; every step is a call into the offline pipeline or the cases
package.

- ``detect``: a review's labels (a video: labels only; a case: merge, then detect).
- ``export``: the anonymized video from the reviewed labels, proven with `verify`; for a case
  also the checksums and the mapping-log row.
- ``batch``: a folder of cases unattended (`run_batch`, every output verified).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from endoveil.anonymize.offline import output_paths
from endoveil.anonymize.verify import VerifyReport
from endoveil.api import anonymize_video, load_model, verify
from endoveil.atomic import write_text_atomic
from endoveil.cases import BatchSettings, Case, CaseEntry, discover_cases, run_batch
from endoveil.cases.pseudonym import load_secret
from endoveil.cases.report import REPORT_JSON
from endoveil.detect.labels import Labels, Segment
from endoveil.detect.temporal import TemporalParams, postprocess
from endoveil.gui.case_review import export_case, prepare_case
from endoveil.gui.jobs import Handler, JobFailed, Tracker
from endoveil.gui.security import PathRefused, Roots
from endoveil.gui.settings import GuiSettings, WorkSettings
from endoveil.gui.store import Job, Review, Store
from endoveil.media.probe import VideoInfo

__all__ = ["Tasks", "report_dict"]


def report_dict(report: VerifyReport) -> dict[str, Any]:
    """A `VerifyReport` as JSON-ready data."""
    return {
        "ok": report.ok,
        "frames_checked": report.frames_checked,
        "oob_frames": report.oob_frames,
        "cut": report.cut,
        "problem_count": report.problem_count,
        "problems": report.problems,
        "findings": [str(f) for f in report.findings],
    }


class Tasks:
    """The job handlers, bound to one server's store and settings."""

    def __init__(self, store: Store, settings: GuiSettings) -> None:
        self.store, self.settings = store, settings
        self.reports = settings.data_dir / "reports"

    def handlers(self) -> dict[str, Handler]:
        return {"detect": self.detect, "export": self.export, "batch": self.batch}

    # detect ----------------------------------------------------------------------------------
    def detect(self, job: Job, tracker: Tracker) -> dict[str, Any]:
        review = self._review(job)
        work = WorkSettings.model_validate(review.settings)
        work_dir = Path(review.work_dir)
        classifier = load_model(self.settings.model)
        config = work.pipeline(labels_only=True, force=True)
        with self._review_status(review, "detecting", "ready"):
            result: dict[str, Any] = {}
            if review.kind == "video":
                done = anonymize_video(
                    review.source,
                    work_dir,
                    **config.as_options(),
                    model=classifier,
                    progress=tracker.stage("detect"),
                )
                labels_path, media = done.labels_paths[0], Path(review.source)
            else:
                prepared = prepare_case(
                    _case(review), review.pseudonym, work_dir, config, classifier, tracker.update
                )
                labels_path, media = prepared.labels, prepared.merged
                result = {"merge": prepared.merge, "merge_message": prepared.merge_message}
            os.replace(labels_path, review.detected_labels)
            review.reviewed_labels.unlink(missing_ok=True)  # fresh detection, fresh review
            if review.result.get("warning"):  # set when the work was chosen: it stays
                result["warning"] = review.result["warning"]
            self.store.update_review(review.id, media=str(media), result=result)
        labels = Labels.load(review.detected_labels)
        if work.unattended:
            self.store.update_review(review.id, status="exporting")
            self.store.add_job("export", f"export {review.title}", {}, review.id)
        return {"segments": len(labels.segments), "oob_s": round(labels.oob_seconds, 2)}

    # export ----------------------------------------------------------------------------------
    def export(self, job: Job, tracker: Tracker) -> dict[str, Any]:
        review = self._review(job)
        # A reviewed export replaces an earlier one only when asked on the review page
        # ("replace" below), never through the work page's batch setting.
        work = WorkSettings.model_validate({**review.settings, "force": False})
        reviewed = review.reviewed_labels.is_file()
        labels = review.reviewed_labels if reviewed else review.detected_labels
        output = Path(work.output)
        output.mkdir(parents=True, exist_ok=True)
        if job.params.get("replace"):
            # Asked for on the review page: the earlier export of this case goes first.
            for path in export_targets(review):
                path.unlink(missing_ok=True)
        with self._review_status(review, "exporting", "exported"):
            if review.kind == "video":
                result = self._export_video(job, review, work, labels, output, tracker)
            else:
                result = self._export_case(job, review, work, labels, output, tracker)
            result["reviewed"] = reviewed
            self.store.update_review(review.id, result={**review.result, "export": result})
        return result

    def _export_video(
        self,
        job: Job,
        review: Review,
        work: WorkSettings,
        labels: Path,
        output: Path,
        tracker: Tracker,
    ) -> dict[str, Any]:
        source = Path(review.source)
        config = work.pipeline(labels_in=labels)
        stage = ["write"]
        done = anonymize_video(
            source,
            output,
            **config.as_options(),
            progress=lambda d, t: tracker.update(stage[0], d, t),
            stage=lambda name: stage.__setitem__(0, name),
        )
        result: dict[str, Any] = {
            "labels": str(done.labels_paths[0]),
            "video": str(done.video_path) if done.video_path else None,
            "notes": done.notes,
        }
        if done.video_path is None:
            return result
        try:
            report = verify(source, done.video_path, done.labels, progress=tracker.stage("verify"))
        except BaseException:
            # Cancelled or failed while proving it: an unproven output must not stay.
            for path in output_paths(source, output, config):
                path.unlink(missing_ok=True)
            raise
        result["verified"] = report.ok
        result["report"] = self._write_report(job, report_dict(report))
        if not report.ok:
            for path in output_paths(source, output, config):
                path.unlink(missing_ok=True)
            raise JobFailed(_verify_failure(report), {**result, "video": None})
        return result

    def _export_case(
        self,
        job: Job,
        review: Review,
        work: WorkSettings,
        labels: Path,
        output: Path,
        tracker: Tracker,
    ) -> dict[str, Any]:
        exported = export_case(
            _case(review),
            Path(review.media),
            labels,
            output,
            Path(work.mapping_log),
            work.pipeline(),
            pseudonym_kind=work.pseudonym,
            merge=str(review.result.get("merge", "")),
            progress=tracker.update,
        )
        result: dict[str, Any] = {
            "pseudonym": review.pseudonym,
            "labels": str(exported.labels),
            "video": str(exported.video) if exported.video else None,
            "mapping_log": work.mapping_log if exported.row else None,
            "notes": exported.notes,
        }
        if exported.report is not None:
            result["verified"] = exported.report.ok
            result["report"] = self._write_report(job, report_dict(exported.report))
            if not exported.report.ok:
                raise JobFailed(_verify_failure(exported.report), result)
        return result

    # batch -----------------------------------------------------------------------------------
    def batch(self, job: Job, tracker: Tracker) -> dict[str, Any]:
        work = WorkSettings.model_validate(job.params["settings"])
        if "cases" in job.params:  # chosen on the work page (cases, videos, archives)
            cases = [
                Case(c["case_id"], Path(c["folder"]), tuple(Path(s) for s in c["segments"]))
                for c in job.params["cases"]
            ]
        else:  # queued by an earlier version: one archive folder
            cases = discover_cases(Path(job.params["folder"])).cases
        if not cases:
            raise JobFailed("no case folders with videos found")
        roots = Roots(self.settings.roots)
        for case in cases:
            for segment in case.segments:
                try:  # links may have changed since the job was queued
                    roots.resolve(segment)
                except PathRefused as exc:
                    raise JobFailed(
                        f"{case.case_id}: a segment lies outside the allowed folders"
                    ) from exc
        secret = None
        if work.pseudonym == "hmac":
            secret = load_secret(Path(work.secret_file) if work.secret_file else None)
        output = Path(work.output)
        settings = BatchSettings(
            output_root=output,
            log=Path(work.mapping_log),
            pipeline=work.pipeline(),
            model=self.settings.model,
            pseudonym=work.pseudonym,
            secret=secret,
            verify=True,
        )
        observer = _BatchObserver(tracker)
        report = run_batch(cases, settings, observer=observer)
        result = {
            "cases": [
                {
                    "case": e.index,
                    "pseudonym": e.pseudonym,
                    "status": e.status,
                    "detail": e.detail,
                    "verified": e.verified,
                    "video": e.output_file,
                }
                for e in report.entries
            ],
            "report": str(output / REPORT_JSON),
            "output": str(output),
        }
        failed = report.failed
        if failed:
            raise JobFailed(f"{len(failed)} of {len(cases)} case(s) failed", result)
        return result

    # helpers ---------------------------------------------------------------------------------
    def _review(self, job: Job) -> Review:
        review = self.store.review(job.review_id) if job.review_id is not None else None
        if review is None:
            raise JobFailed("the review of this job was deleted")
        return review

    @contextmanager
    def _review_status(self, review: Review, running: str, done: str) -> Iterator[None]:
        self.store.update_review(review.id, status=running)
        try:
            yield
        except BaseException:
            # Cancelled or failed: back to where the user can act on it again.
            previous = "ready" if review.detected_labels.is_file() else "failed"
            self.store.update_review(review.id, status=previous)
            raise
        self.store.update_review(review.id, status=done)

    def _write_report(self, job: Job, report: dict[str, Any]) -> str:
        self.reports.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.reports / f"job-{job.id}.json"
        write_text_atomic(path, json.dumps(report, indent=1) + "\n")
        return str(path)


class _BatchObserver:
    """Feeds `run_batch` progress into the job's tracker."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.cases = 0

    def batch_started(self, cases: int, to_run: int) -> None:
        self.cases = cases

    def case_progress(self, index: int, stage: str, done: int, total: int) -> None:
        self.tracker.update(f"case {index}/{self.cases}: {stage}", done, total)

    def case_finished(self, entry: CaseEntry, case: Case) -> None:
        """Nothing to do: `run_batch`'s report carries every entry."""


def export_targets(review: Review) -> list[Path]:
    """The files an export of ``review`` writes in its output folder (named after the
    reviewed video: the pseudonym, or the input's name when asked)."""
    if not review.media:
        return []
    work = WorkSettings.model_validate(review.settings)
    return output_paths(Path(review.media), Path(work.output), work.pipeline())


def model_boundaries(detected: Labels, info: VideoInfo) -> tuple[Segment, ...]:
    """The segments as the model found them, before the safety margin pads them."""
    fields = {f.name for f in dataclasses.fields(TemporalParams)}
    given = {k: v for k, v in detected.params.items() if k in fields}
    try:
        params = dataclasses.replace(TemporalParams(**given), margin_s=0.0)
        return tuple(
            postprocess(detected.index, detected.p_out, info.frame_times, info.duration_s, params)
        )
    except (TypeError, ValueError):
        return detected.segments  # parameters of another version: show the padded ones


def _case(review: Review) -> Case:
    folder = Path(review.source)
    return Case(review.title, folder, tuple(Path(p) for p in review.segments))


def _verify_failure(report: VerifyReport) -> str:
    first = (
        report.problems[0]
        if report.problems
        else (str(report.findings[0]) if report.findings else "unknown")
    )
    return f"verification failed ({report.summary()}; first: {first}); the output was deleted"
