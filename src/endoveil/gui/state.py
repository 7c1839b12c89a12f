"""What every request handler of one GUI server shares, and the checks they all apply."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request

from endoveil.gui.jobs import JobRunner
from endoveil.gui.live import LiveManager
from endoveil.gui.security import COOKIE, HEADER, Roots, check_secret
from endoveil.gui.settings import GuiSettings
from endoveil.gui.store import Review, Store
from endoveil.gui.tasks import Tasks
from endoveil.gui.thumbs import ProbeCache

__all__ = ["GuiState", "gui", "require_token", "require_token_or_query"]


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


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
REQUEST_HEADER = "X-Endoveil-Request"


def require_token(request: Request) -> None:
    """Every API call: the token from the header, else from the session cookie.

    A cookie reaches this server from pages of any port of 127.0.0.1 (cookies are not kept
    apart by port), so a state-changing call that relies on the cookie must also carry
    `REQUEST_HEADER` — which no other page can add without a CORS preflight this server
    never grants — and, when the browser says where it comes from, come from this server.
    """
    header_token = request.headers.get(HEADER)
    cookie_token = request.cookies.get(COOKIE)
    if header_token is None and cookie_token and request.method not in SAFE_METHODS:
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if request.headers.get(REQUEST_HEADER) != "1" or (
            origin is not None and origin.split("://", 1)[-1] != host
        ):
            raise HTTPException(403, "request refused: it does not come from the endoveil page")
    _check(header_token or cookie_token, request)


def require_token_or_query(request: Request) -> None:
    """Media URLs (fetched by ``<video>``/``<img>``, which send no header) may carry ?token=."""
    given = (
        request.headers.get(HEADER)
        or request.cookies.get(COOKIE)
        or request.query_params.get("token")
    )
    _check(given, request)
