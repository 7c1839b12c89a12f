"""Review API: what was detected, the player's media and thumbnails, corrections, export.

Corrections are saved as a labels JSON (``endoveil/labels@1``) in the review's work folder,
with ``extra.reviewed = true``; the export uses that file and nothing else.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from endoveil.detect.formats import read_frame_mask
from endoveil.detect.labels import Labels, Segment, mask_from_segments, segments_from_mask
from endoveil.errors import EndoveilError
from endoveil.gui.state import GuiState, RowId, gui, require_media, require_token
from endoveil.gui.store import Review, now_utc
from endoveil.gui.tasks import export_targets, model_boundaries
from endoveil.gui.thumbs import browser_playable, frame_jpeg

__all__ = ["router"]

router = APIRouter(prefix="/api/reviews")
State = Annotated[GuiState, Depends(gui)]
CURVE_POINTS = 2000
THUMB_WIDTHS = (96, 160, 320, 640)
UPLOAD_SUFFIXES = {".json", ".csv"}
EDITABLE = ("ready", "exported", "failed")


def _summary(review: Review) -> dict[str, Any]:
    return {
        "id": review.id,
        "kind": review.kind,
        "title": review.title,
        "status": review.status,
        "pseudonym": review.pseudonym,
        "reviewed": review.reviewed_labels.is_file(),
        "export": review.result.get("export"),
        "warning": review.result.get("warning", ""),
        "updated_at": review.updated_at,
    }


def _segments(labels: Labels | tuple[Segment, ...]) -> list[dict[str, Any]]:
    segments = labels.segments if isinstance(labels, Labels) else labels
    return [
        {
            "start_frame": s.start_frame,
            "end_frame": s.end_frame,
            "start_s": s.start_s,
            "end_s": s.end_s,
        }
        for s in segments
    ]


def _current_labels(review: Review) -> Labels:
    if not review.detected_labels.is_file():
        raise HTTPException(409, "detection has not finished for this review")
    path = review.reviewed_labels if review.reviewed_labels.is_file() else review.detected_labels
    return Labels.load(path)


@router.get("", dependencies=[Depends(require_token)])
def list_reviews(state: State) -> list[dict[str, Any]]:
    """Every review, oldest first."""
    return [_summary(r) for r in state.store.reviews()]


@router.get("/{review_id}", dependencies=[Depends(require_token)])
def get_review(review_id: RowId, state: State) -> dict[str, Any]:
    """A review with its video facts, probability curve and current segments."""
    review = state.review_or_404(review_id)
    detail = {**_summary(review), "settings": review.settings, "result": review.result}
    if not review.detected_labels.is_file() or not review.media:
        return detail
    labels = _current_labels(review)
    detected = Labels.load(review.detected_labels)
    info = state.probes.get(Path(review.media))
    playable, why = browser_playable(info)
    step = max(1, len(detected) // CURVE_POINTS)
    detail.update(
        video={**labels.video.__dict__, "codec": info.codec},
        frame_times=np.round(info.frame_times, 4).tolist(),
        curve={
            "time_s": np.round(detected.time_s[::step], 3).tolist(),
            "p_out": np.round(detected.p_out[::step], 3).tolist(),
        },
        threshold=detected.params.get("threshold"),
        segments=_segments(labels),
        detected_segments=_segments(detected),
        playable=playable,
        not_playable_because=why,
        video_url=state.signer.sign(f"/api/reviews/{review.id}/video"),
        model_segments=_segments(model_boundaries(detected, info)),
        earlier_export=[str(p) for p in export_targets(review) if p.exists()],
        mapping_log=review.settings.get("mapping_log", ""),
    )
    return detail


@router.get("/{review_id}/video", dependencies=[Depends(require_media)])
def review_video(review_id: RowId, state: State) -> FileResponse:
    """The reviewed video for the player (HTTP Range requests are honoured)."""
    review = state.review_or_404(review_id)
    if not review.media:
        raise HTTPException(409, "the video is not ready yet")
    return FileResponse(review.media, media_type="video/mp4", headers={"Cache-Control": "no-store"})


@router.get("/{review_id}/video-url", dependencies=[Depends(require_token)])
def review_video_url(review_id: RowId, state: State) -> dict[str, str]:
    """A fresh signed URL for the player (the one in the review expires after minutes)."""
    state.review_or_404(review_id)
    return {"url": state.signer.sign(f"/api/reviews/{review_id}/video")}


@router.get("/{review_id}/thumb", dependencies=[Depends(require_media)])
def review_thumb(review_id: RowId, frame: int, state: State, width: int = 160) -> Response:
    """Frame ``frame`` as a JPEG, decoded on the server (for edges, and unplayable codecs)."""
    review = state.review_or_404(review_id)
    if not review.media:
        raise HTTPException(409, "the video is not ready yet")
    if width not in THUMB_WIDTHS:
        raise HTTPException(422, f"width must be one of {THUMB_WIDTHS}")
    info = state.probes.get(Path(review.media))
    try:
        jpeg = frame_jpeg(info, frame, width)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return Response(
        jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )


class SegmentIn(BaseModel):
    start_frame: int
    end_frame: int


class SegmentsBody(BaseModel):
    segments: list[SegmentIn]


@router.put("/{review_id}/segments", dependencies=[Depends(require_token)])
def save_segments(review_id: RowId, body: SegmentsBody, state: State) -> dict[str, Any]:
    """Save the corrected segments (overlapping ones are joined) as the reviewed labels."""
    review = state.review_or_404(review_id)
    if review.status not in EDITABLE:
        raise HTTPException(409, f"the review is {review.status}; wait until it is ready")
    detected = Labels.load(review.detected_labels)
    count = detected.video.frame_count
    for seg in body.segments:
        if not 0 <= seg.start_frame < seg.end_frame <= count:
            raise HTTPException(
                422, f"segment [{seg.start_frame}, {seg.end_frame}) is not inside 0..{count}"
            )
    info = state.probes.get(Path(review.media))
    mask = np.zeros(count, dtype=bool)
    for seg in body.segments:
        mask[seg.start_frame : seg.end_frame] = True
    segments = segments_from_mask(mask, info.frame_times, info.duration_s)
    reviewed = replace(
        detected,
        segments=segments,
        extra={
            **detected.extra,
            "reviewed": True,
            "reviewed_at": now_utc(),
            "detected_segments": len(detected.segments),
        },
    )
    reviewed.save(review.reviewed_labels)
    if review.status == "failed":
        state.store.update_review(review.id, status="ready")
    return {"segments": _segments(reviewed), "reviewed": True}


@router.post("/{review_id}/import", dependencies=[Depends(require_token)])
async def import_labels(review_id: RowId, file: UploadFile, state: State) -> dict[str, Any]:
    """Read labels from a file (endoveil JSON, ROBAN, OoBNet CSV, interval CSV) as segments.

    They are not saved: the page shows them for review, and saving stores them.
    """
    limit = state.settings.max_upload_bytes  # the whole body is limited by the app as well
    review = state.review_or_404(review_id)
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise HTTPException(422, "upload a .json (endoveil, ROBAN) or .csv (OoBNet, intervals)")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"labels files are limited to {limit // (1024 * 1024)} MB")
    detected = _current_labels(review)
    info = state.probes.get(Path(review.media))
    with tempfile.TemporaryDirectory(prefix="endoveil-import-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            mask = read_frame_mask(path, info.frame_times)
        except EndoveilError as exc:
            raise HTTPException(422, f"{file.filename}: {exc.message}") from exc
    segments = segments_from_mask(mask, info.frame_times, info.duration_s)
    before = mask_from_segments(detected.segments, detected.video.frame_count)
    return {
        "segments": [
            {
                "start_frame": s.start_frame,
                "end_frame": s.end_frame,
                "start_s": s.start_s,
                "end_s": s.end_s,
            }
            for s in segments
        ],
        "frames_changed": int(np.count_nonzero(before != mask)),
    }


class ExportBody(BaseModel):
    replace: bool = False
    """Replace the earlier export of this case (its files are deleted first)."""


@router.post("/{review_id}/export", dependencies=[Depends(require_token)])
def export_review(review_id: RowId, state: State, body: ExportBody | None = None) -> dict[str, Any]:
    """The user's go: export with the reviewed labels (as detected, if nothing was changed)."""
    replace_earlier = body is not None and body.replace
    review = state.review_or_404(review_id)
    if review.status not in EDITABLE:
        raise HTTPException(409, f"the review is {review.status}; it cannot be exported now")
    if not review.reviewed_labels.is_file():
        # Pressing export accepts what was detected: that is the review's outcome.
        detected = Labels.load(review.detected_labels)
        extra = {
            **detected.extra,
            "reviewed": True,
            "reviewed_at": now_utc(),
            "detected_segments": len(detected.segments),
        }
        replace(detected, extra=extra).save(review.reviewed_labels)
    state.store.update_review(review.id, status="exporting")
    title = f"{'re-export' if replace_earlier else 'export'} {review.title}"
    job = state.store.add_job("export", title, {"replace": replace_earlier}, review.id)
    state.runner.wake()
    return {"job": job.id}


@router.delete("/{review_id}", dependencies=[Depends(require_token)])
def delete_review(review_id: RowId, state: State) -> dict[str, Any]:
    """Forget a review and delete its work folder (merged video, labels); outputs stay."""
    review = state.review_or_404(review_id)
    if review.status in ("detecting", "exporting"):
        raise HTTPException(409, "cancel its job first")
    shutil.rmtree(review.work_dir, ignore_errors=True)
    state.store.delete_review(review.id)
    return {"deleted": review.id}
