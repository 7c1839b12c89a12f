"""Live API: start and stop a live session, its MJPEG preview and status, recording."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from endoveil.errors import EndoveilError, MediaError
from endoveil.gui.live import LiveRequest
from endoveil.gui.state import GuiState, gui, require_media, require_token
from endoveil.live.sources import STREAM_SCHEMES
from endoveil.media.inputs import open_input

__all__ = ["router"]

router = APIRouter(prefix="/api/live")
State = Annotated[GuiState, Depends(gui)]
BOUNDARY = "endoveilframe"
PREVIEW = "/api/live/preview.mjpg"
CAMERA = re.compile(r"\d+|/dev/video\d+")


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    action: Literal["blur", "pixelate", "black"] = "blur"
    threshold: float | None = Field(default=None, gt=0, le=1)
    loop: bool = False


class RecordBody(BaseModel):
    path: str


def _checked_source(state: GuiState, spec: str) -> str:
    """A camera, a stream URL, or a video file inside the roots (``lavfi:`` can read any file)."""
    spec = spec.strip()
    if CAMERA.fullmatch(spec):
        return spec
    scheme = re.match(r"^([a-z0-9+.-]+):", spec)
    if scheme and scheme.group(1) in STREAM_SCHEMES:
        return spec
    if scheme and len(scheme.group(1)) > 1:
        raise HTTPException(400, f"{scheme.group(1)}: sources are cameras, stream URLs or files")
    path = state.roots.resolve(spec)
    if not path.is_file():
        raise HTTPException(404, f"{spec}: no such video file")
    try:  # the same door every input goes through: no playlist pulls in another file
        open_input(path).close()
    except MediaError as exc:
        raise HTTPException(422, exc.message) from exc
    return str(path)


@router.get("/sources", dependencies=[Depends(require_token)])
def sources() -> dict[str, Any]:
    """Cameras this machine has (V4L2 devices), and which stream URLs are understood."""
    cameras = sorted(str(p) for p in Path("/dev").glob("video*"))
    return {"cameras": cameras, "schemes": list(STREAM_SCHEMES)}


@router.post("/start", dependencies=[Depends(require_token)])
def start(body: StartBody, state: State) -> dict[str, Any]:
    """Open the source and start anonymizing it."""
    source = _checked_source(state, body.source)
    request = LiveRequest(source, body.action, body.threshold, body.loop)
    try:
        state.live.start(request)
    except RuntimeError as exc:
        raise HTTPException(409, str(exc)) from exc
    except (EndoveilError, ValueError) as exc:
        raise HTTPException(400, str(exc)) from exc
    return _status(state)


@router.post("/stop", dependencies=[Depends(require_token)])
def stop(state: State) -> dict[str, Any]:
    """Stop the session (a recording is finished first)."""
    state.live.stop()
    return state.live.status()


@router.get("/status", dependencies=[Depends(require_token)])
def status(state: State) -> dict[str, Any]:
    """State (clear / anonymized / fail-closed / paused), fps, latency, recording, and a
    short-lived signed URL of the preview (an ``<img>`` cannot send the session header)."""
    return _status(state)


def _status(state: GuiState) -> dict[str, Any]:
    return {**state.live.status(), "preview_url": state.signer.sign(PREVIEW)}


@router.post("/record/start", dependencies=[Depends(require_token)])
def record_start(body: RecordBody, state: State) -> dict[str, Any]:
    """Record the anonymized output to an MP4 inside the roots."""
    path = state.roots.resolve(body.path)
    if path.suffix.lower() != ".mp4":
        raise HTTPException(422, "recordings are MP4: the name must end in .mp4")
    try:
        state.live.start_recording(path)
    except (RuntimeError, FileExistsError) as exc:
        raise HTTPException(409, str(exc)) from exc
    except OSError as exc:
        raise HTTPException(400, str(exc)) from exc
    return _status(state)


@router.post("/record/stop", dependencies=[Depends(require_token)])
def record_stop(state: State) -> dict[str, Any]:
    """Finish the recording; returns its file and frame count."""
    try:
        return state.live.stop_recording()
    except RuntimeError as exc:
        raise HTTPException(409, str(exc)) from exc


@router.get("/preview.mjpg", dependencies=[Depends(require_media)])
async def preview(state: State) -> StreamingResponse:
    """The anonymized picture as MJPEG, while the session runs."""
    sink = state.live.preview
    if sink is None or not state.live.status()["running"]:
        raise HTTPException(409, "no live session is running")

    async def frames() -> AsyncIterator[bytes]:
        seen = 0
        while True:
            jpeg, seen = await asyncio.to_thread(sink.next_jpeg, seen, 1.0)
            if jpeg is None:
                if not state.live.status()["running"]:
                    return
                continue
            yield (
                (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n"
                ).encode()
                + jpeg
                + b"\r\n"
            )

    return StreamingResponse(
        frames(),
        media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-store"},
    )
