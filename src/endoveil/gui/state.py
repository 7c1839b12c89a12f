"""What every request handler of one GUI server shares, and the checks they all apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import HTTPException, Request
from fastapi import Path as PathParam

from endoveil.gui.jobs import JobRunner
from endoveil.gui.live import LiveManager
from endoveil.gui.security import (
    HEADER,
    LaunchTokens,
    LoginThrottle,
    MediaSigner,
    Roots,
    check_secret,
)
from endoveil.gui.settings import GuiSettings
from endoveil.gui.store import Review, Store
from endoveil.gui.tasks import Tasks
from endoveil.gui.thumbs import ProbeCache

__all__ = ["GuiState", "RowId", "gui", "require_media", "require_token"]

RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
"""A review or job number: SQLite's integers end at 2**63 - 1 (larger: 422, not a 500)."""


@dataclass
class GuiState:
    """One server's settings, roots, database, queue and live session."""

    settings: GuiSettings
    roots: Roots
    store: Store
    tasks: Tasks
    runner: JobRunner
    probes: ProbeCache
    live: LiveManager
    signer: MediaSigner = field(default_factory=MediaSigner)
    launches: LaunchTokens = field(default_factory=LaunchTokens)
    logins: LoginThrottle = field(default_factory=LoginThrottle)

    @property
    def work_root(self) -> Path:
        return self.settings.data_dir / "reviews"

    def review_or_404(self, review_id: int) -> Review:
        review = self.store.review(review_id)
        if review is None:
            raise HTTPException(404, f"no review {review_id}")
        return review


def gui(request: Request) -> GuiState:
    """The server's shared state (a FastAPI dependency)."""
    state: GuiState = request.app.state.gui
    return state


def _check(given: str | None, request: Request) -> None:
    if not given:
        raise HTTPException(401, "missing session token: open the link printed by endoveil gui")
    if not check_secret(given, gui(request).settings.token):
        raise HTTPException(403, "wrong session token")


def require_token(request: Request) -> None:
    """Every API call: the session token in the `HEADER` (the page holds it; no cookie)."""
    _check(request.headers.get(HEADER), request)


def require_media(request: Request) -> None:
    """Media URLs (``<video>``, ``<img>``, which send no header): the session header, or a
    signature made for this very path that has not expired (`MediaSigner`)."""
    if request.headers.get(HEADER) is not None:
        _check(request.headers.get(HEADER), request)
        return
    expires, signature = request.query_params.get("exp"), request.query_params.get("sig")
    if signature is None:
        raise HTTPException(401, "missing session token: open the link printed by endoveil gui")
    if not gui(request).signer.check(request.url.path, expires, signature):
        raise HTTPException(403, "this media link is wrong or has expired: reload the page")
