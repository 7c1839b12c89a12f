"""Queue API: jobs with their real progress, cancel, resume, and the verify report."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from endoveil.detect.labels import Labels
from endoveil.errors import EndoveilError
from endoveil.gui.security import PathRefused
from endoveil.gui.state import GuiState, RowId, gui, require_token
from endoveil.gui.store import Job, Store

__all__ = ["router", "settle_reviews"]

router = APIRouter(prefix="/api/jobs")
State = Annotated[GuiState, Depends(gui)]
RUNNING_REVIEW = {"detect": "detecting", "export": "exporting"}


def settle_reviews(store: Store) -> None:
    """Reviews whose job will not run (cancelled, interrupted) go back to a state to act on."""
    waiting = {j.review_id for j in store.jobs() if j.status in ("queued", "running")}
    for review in store.reviews():
        if review.status in ("detecting", "exporting") and review.id not in waiting:
            ready = review.detected_labels.is_file()
            store.update_review(review.id, status="ready" if ready else "failed")


def _job_or_404(state: GuiState, job_id: int) -> Job:
    job = state.store.job(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.get("", dependencies=[Depends(require_token)])
def list_jobs(state: State) -> list[dict[str, Any]]:
    """Every job, newest first, with its progress (stage, frames done, fps, ETA)."""
    return [asdict(job) for job in state.store.jobs()]


@router.delete("/finished", dependencies=[Depends(require_token)])
def clear_finished(state: State) -> dict[str, Any]:
    """Clear the queue of finished and failed jobs (reviews, outputs and reports stay)."""
    return {"cleared": state.store.delete_finished()}


@router.get("/{job_id}", dependencies=[Depends(require_token)])
def get_job(job_id: RowId, state: State) -> dict[str, Any]:
    return asdict(_job_or_404(state, job_id))


@router.post("/{job_id}/cancel", dependencies=[Depends(require_token)])
def cancel_job(job_id: RowId, state: State) -> dict[str, Any]:
    """Cancel a queued job, or stop a running one at its next progress step."""
    _job_or_404(state, job_id)
    if not state.runner.cancel(job_id):
        raise HTTPException(409, "the job is neither queued nor running")
    settle_reviews(state.store)
    return {"cancelled": job_id}


@router.post("/{job_id}/resume", dependencies=[Depends(require_token)])
def resume_job(job_id: RowId, state: State) -> dict[str, Any]:
    """Run a failed, cancelled or interrupted job again (from the start; outputs are atomic)."""
    job = _job_or_404(state, job_id)
    if job.review_id is not None and state.store.review(job.review_id) is None:
        raise HTTPException(409, "the review of this job was deleted")
    if not state.store.requeue(job_id):
        raise HTTPException(409, f"a {job.status} job cannot be resumed")
    if job.review_id is not None and job.kind in RUNNING_REVIEW:
        state.store.update_review(job.review_id, status=RUNNING_REVIEW[job.kind])
    state.runner.wake()
    return {"resumed": job_id}


@router.get("/{job_id}/report", dependencies=[Depends(require_token)])
def job_report(job_id: RowId, state: State) -> FileResponse:
    """The job's report: `verify`'s findings (export) or the batch report (batch)."""
    job = _job_or_404(state, job_id)
    report = job.result.get("report")
    if not report:
        raise HTTPException(404, "this job has no report")
    path = Path(report)
    inside_data = path.resolve().is_relative_to(state.settings.data_dir.resolve())
    if not inside_data:
        path = state.roots.resolve(path)  # a batch report lies in the output folder
    if not path.is_file():
        raise HTTPException(404, "the report file is gone")
    return FileResponse(path, media_type="application/json")


@router.get("/{job_id}/summary", dependencies=[Depends(require_token)])
def job_summary(job_id: RowId, state: State) -> dict[str, Any]:
    """What the report page shows: what was hidden, the verification, what was re-encoded,
    where the output and the mapping log are."""
    job = _job_or_404(state, job_id)
    result = job.result
    summary: dict[str, Any] = {
        "job": asdict(job),
        "verify": None,
        "hidden": [],
        "output": {},
        "mapping_log": result.get("mapping_log")
        or job.params.get("settings", {}).get("mapping_log"),
    }
    report = result.get("report")
    if report and job.kind == "export":
        path = Path(report)
        if path.resolve().is_relative_to(state.settings.data_dir.resolve()) and path.is_file():
            summary["verify"] = json.loads(path.read_text(encoding="utf-8"))
    labels_file = result.get("labels")
    if labels_file and job.kind == "export":
        try:
            labels = Labels.load(state.roots.resolve(labels_file))
        except (PathRefused, EndoveilError, OSError, ValueError):
            labels = None
        if labels is not None:
            summary["hidden"] = [
                {
                    "start_s": round(seg.start_s, 3),
                    "end_s": round(seg.end_s, 3),
                    "frames": seg.end_frame - seg.start_frame,
                }
                for seg in labels.segments
            ]
            summary["output"] = {
                **labels.extra.get("output", {}),
                "frames_total": labels.video.frame_count,
                "duration_s": labels.video.duration_s,
                "reviewed": bool(labels.extra.get("reviewed")),
            }
    if job.review_id is not None and (review := state.store.review(job.review_id)):
        summary["review"] = {"id": review.id, "title": review.title, "pseudonym": review.pseudonym}
    return summary
