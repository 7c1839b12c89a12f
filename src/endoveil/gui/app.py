"""The GUI server: `create_app(settings)` builds the FastAPI app.

Pages and assets are served from the package (no CDN: it works offline). The API lives under
``/api`` and needs the session token (see `endoveil.gui.security`); its routes are split by
page: work (this module), reviews, jobs and live.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from endoveil import __version__
from endoveil.cases import Case, natural_key
from endoveil.cases.mapping_log import check_log_location, check_outside_output, read_rows
from endoveil.cases.pseudonym import hmac_pseudonym, load_secret, uuid_pseudonym
from endoveil.detect.classifier import default_model_path
from endoveil.errors import EndoveilError
from endoveil.gui import api_jobs, api_live, api_reviews
from endoveil.gui.choose import NotAnInput, choose_cases
from endoveil.gui.jobs import JobRunner
from endoveil.gui.live import LiveManager
from endoveil.gui.security import PathRefused, Roots, check_secret
from endoveil.gui.settings import GuiSettings, WorkSettings
from endoveil.gui.state import GuiState, gui, require_token
from endoveil.gui.store import Store
from endoveil.gui.tasks import Tasks
from endoveil.gui.thumbs import ProbeCache
from endoveil.media.inputs import VIDEO_SUFFIXES

__all__ = ["create_app"]

STATIC = resources.files("endoveil.gui") / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self'; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and headers around an uploaded file


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before anything parses them.

    The declared Content-Length is checked first. A body sent without one (chunked) is
    counted as it arrives; past the limit the app is told the client left (it stops reading)
    and whatever it answers is replaced by the 413. Without this, the multipart parser would
    spool any upload to disk before the endpoint could look at its size.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = json.dumps({"detail": f"uploads are limited to {self.limit // 2**20} MB"})
        body = detail.encode()
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await JSONResponse(json.loads(detail), 413)(scope, receive, send)
            return
        received = 0
        exceeded = False

        async def counted() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                exceeded = True
                return {"type": "http.disconnect"}
            return message

        async def answer(message: Message) -> None:
            if not exceeded:
                await send(message)
            elif message["type"] == "http.response.start":
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": 413, "headers": headers})
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, counted, answer)


def create_app(settings: GuiSettings) -> FastAPI:
    """The GUI app for ``settings`` (its database and queue start with the app's lifespan)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(settings.data_dir, 0o700)  # reviews hold patient folder names and merged videos
    store = Store(settings.data_dir / "gui.sqlite3")
    api_jobs.settle_reviews(store)  # reviews whose job was interrupted by a restart
    tasks = Tasks(store, settings)
    state = GuiState(
        settings=settings,
        roots=Roots(settings.roots),
        store=store,
        tasks=tasks,
        runner=JobRunner(store, tasks.handlers()),
        probes=ProbeCache(),
        live=LiveManager(settings.model),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.start_worker:
            state.runner.start()
        try:
            yield
        finally:
            state.live.stop()
            state.runner.stop()
            store.close()

    app = FastAPI(
        title="endoveil",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.gui = state
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + MULTIPART_OVERHEAD)

    hosts = {h.lower() for h in settings.hosts}

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        # DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends
        # "Host: evil.example"; only the names this server was bound to are answered.
        if _host_name(request.headers.get("host", "")) not in hosts:
            refused = JSONResponse({"detail": "unknown Host header: refused"}, status_code=421)
            for name, value in SECURITY_HEADERS.items():
                refused.headers[name] = value
            return refused
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(PathRefused)
    async def refused(_request: Request, exc: PathRefused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # One line, no traceback (the server log has it).
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})"}, 500)

    @app.exception_handler(EndoveilError)
    async def endoveil_error(_request: Request, exc: EndoveilError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.get("/", include_in_schema=False)(index)
    app.post("/api/login")(login)
    app.post("/api/launch")(launch)
    app.get("/api/auth")(auth)
    protected = [Depends(require_token)]
    app.get("/api/session", dependencies=protected)(session)
    app.get("/api/fs", dependencies=protected)(list_folder)
    app.post("/api/work", dependencies=protected)(add_work)
    app.include_router(api_reviews.router)
    app.include_router(api_jobs.router)
    app.include_router(api_live.router)
    return app


State = Annotated[GuiState, Depends(gui)]


def _host_name(host: str) -> str:
    """The name part of a Host header (``[::1]:8000`` -> ``::1``, ``a:80`` -> ``a``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def index() -> Response:
    """The page (it signs in with the launch token in its URL fragment, or the password)."""
    return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-store"})


async def auth(state: State) -> dict[str, bool]:
    """Without a session: may the sign-in page offer a password field?"""
    return {"password": state.settings.password is not None}


class LaunchBody(BaseModel):
    launch: str


async def launch(body: LaunchBody, state: State) -> dict[str, str]:
    """Exchange a one-time launch token (from the printed link's fragment) for the session
    token, which the page keeps and sends as a header."""
    if not state.launches.redeem(body.launch):
        raise HTTPException(
            403,
            "this link was used already (links open the GUI once): use the endoveil tab "
            "that is open, or restart endoveil gui for a new link",
        )
    return {"token": state.settings.token}


class LoginBody(BaseModel):
    password: str


async def login(body: LoginBody, state: State) -> dict[str, str]:
    """Exchange the password (``--host`` only) for the session token."""
    expected = state.settings.password
    if expected is None:
        raise HTTPException(404, "no password is set: open the link printed by endoveil gui")
    async with state.logins:  # one attempt at a time, server-wide
        if not check_secret(body.password, expected):
            raise HTTPException(403, "wrong password")
    return {"token": state.settings.token}


def _defaults(state: GuiState) -> WorkSettings:
    root = state.roots.roots[0]
    return WorkSettings(
        output=str(root / "endoveil-output"),
        mapping_log=str(root / "endoveil-mapping-log.csv"),
    )


def session(state: State) -> dict[str, Any]:
    """What the page needs to start: roots, default settings, model, version."""
    model = state.settings.model or default_model_path()
    return {
        "version": __version__,
        "roots": [str(r) for r in state.roots.roots],
        "defaults": _defaults(state).model_dump(),
        "model": model.name,
        "password": state.settings.password is not None,
    }


def list_folder(state: State, path: str | None = None) -> dict[str, Any]:
    """The sub-folders and videos of ``path`` (no path: the roots)."""
    if not path:
        entries = [{"name": str(r), "path": str(r), "kind": "folder"} for r in state.roots.roots]
        return {"path": None, "parent": None, "entries": entries}
    folder = state.roots.resolve(path)
    if not folder.is_dir():
        raise HTTPException(404, f"{path}: not a folder")
    entries = []
    try:
        children = sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
    except OSError as exc:
        raise HTTPException(403, f"{path}: cannot be listed ({exc.strerror})") from exc
    for child in children:
        if child.name.startswith("."):
            continue
        try:
            state.roots.resolve(child)  # a symlink out of the roots is not shown
        except PathRefused:
            continue
        if child.is_dir():
            entries.append({"name": child.name, "path": str(child), "kind": "folder"})
        elif child.suffix.lower() in VIDEO_SUFFIXES and child.is_file():  # not a dead link
            size = child.stat().st_size
            entries.append({"name": child.name, "path": str(child), "kind": "video", "size": size})
    parent = folder.parent
    inside = folder not in state.roots.roots and any(
        parent.is_relative_to(r) for r in state.roots.roots
    )
    return {"path": str(folder), "parent": str(parent) if inside else None, "entries": entries}


class WorkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[str] = []
    """Videos, case folders and archives of case folders, chosen together."""
    path: str = ""
    """One item (kept for scripts written against the first API)."""
    settings: dict[str, Any] = {}


def _work_settings(state: GuiState, given: dict[str, Any]) -> WorkSettings:
    """The user's settings with defaults filled in and every path checked against the roots."""
    try:
        work = WorkSettings.model_validate({**_defaults(state).model_dump(), **given})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise HTTPException(422, f"setting {where}: {first['msg']}") from exc
    output = state.roots.resolve(work.output or _defaults(state).output)
    log = state.roots.resolve(work.mapping_log or _defaults(state).mapping_log)
    secret_file = str(state.roots.resolve(work.secret_file)) if work.secret_file else ""
    try:
        check_log_location(log, output)
        if secret_file:
            check_outside_output(Path(secret_file), output, "the pseudonym secret")
    except EndoveilError as exc:
        raise HTTPException(400, str(exc)) from exc
    return work.model_copy(
        update={"output": str(output), "mapping_log": str(log), "secret_file": secret_file}
    )


def _secret(work: WorkSettings) -> bytes | None:
    if work.pseudonym != "hmac":
        return None
    try:
        return load_secret(Path(work.secret_file) if work.secret_file else None)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc


Known = dict[frozenset[str], str]


def _case_key(case: Case) -> frozenset[str]:
    """A case is the same case when it has the same segment files (however it was chosen)."""
    return frozenset(os.path.abspath(s) for s in case.segments)


def _known_cases(state: GuiState, log: Path) -> Known:
    """Segment files -> pseudonym, for every case this GUI or the mapping log has seen."""
    known: Known = {}
    try:
        for row in read_rows(log):
            files = json.loads(row["original_files"])
            key = frozenset(os.path.abspath(Path(row["case_folder"]) / f) for f in files)
            known[key] = row["pseudonym"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # an unreadable log is refused when the export appends to it
    for review in state.store.reviews():
        if review.pseudonym:
            known[frozenset(os.path.abspath(s) for s in review.segments)] = review.pseudonym
    return known


def _pseudonym(case: Case, secret: bytes | None, work: WorkSettings) -> str:
    if work.keep_names:
        return Path(case.case_id).stem  # asked for: outputs carry the input's name
    return hmac_pseudonym(secret, case.case_id) if secret else uuid_pseudonym()


def _seen_before(case: Case, earlier: str, name: str, work: WorkSettings) -> str:
    if work.keep_names or earlier == name:
        return f"{case.case_id} was chosen before: it keeps its name {name}"
    return (
        f"{case.case_id} was chosen before (as {earlier}): random (UUID) pseudonyms differ "
        f"on every run, so it now gets a second one ({name}). Choose keyed (HMAC) "
        "pseudonyms to keep one per patient."
    )


def add_work(body: WorkBody, state: State) -> dict[str, Any]:
    """Queue videos, case folders and archives of cases: detection for review, or an
    unattended batch. Outputs are never taken as inputs; a case seen before is named."""
    given = [*body.paths, *([body.path] if body.path else [])]
    if not given:
        raise HTTPException(422, "choose at least one video or folder")
    items = []
    for text in given:
        item = state.roots.resolve(text)
        if not item.exists():
            raise HTTPException(404, f"{text}: no such file or folder")
        items.append(item)
    work = _work_settings(state, body.settings)
    secret = _secret(work)
    try:
        chosen = choose_cases(items, Path(work.output))
    except NotAnInput as exc:
        raise HTTPException(422, str(exc)) from exc
    for case in chosen.cases:
        for segment in case.segments:
            try:  # a linked segment must not smuggle in a video from outside the roots
                state.roots.resolve(segment)
            except PathRefused as exc:
                raise HTTPException(
                    403, f"{case.case_id}: a segment lies outside the allowed folders"
                ) from exc
    store, settings = state.store, work.model_dump()
    known = _known_cases(state, Path(work.mapping_log))
    warnings: list[str] = list(chosen.skipped)
    reviews: list[int] = []
    jobs: list[int] = []
    if work.unattended:
        for case in chosen.cases:
            earlier = known.get(_case_key(case))
            if earlier:
                warnings.append(f"{case.case_id} was chosen before (as {earlier})")
        params = {"cases": [_case_dict(c) for c in chosen.cases], "settings": settings}
        title = f"batch of {len(chosen.cases)} case(s)"
        jobs.append(store.add_job("batch", title, params).id)
    for case in [] if work.unattended else chosen.cases:
        name = _pseudonym(case, secret, work)
        earlier = known.get(_case_key(case))
        warning = _seen_before(case, earlier, name, work) if earlier else ""
        if warning:
            warnings.append(warning)
        known[_case_key(case)] = name
        review = store.add_review(
            kind="case",
            source=str(case.folder),
            title=case.case_id,
            segments=[str(s) for s in case.segments],
            pseudonym=name,
            work_root=state.work_root,
            settings=settings,
        )
        if warning:
            store.update_review(review.id, result={"warning": warning})
        reviews.append(review.id)
        jobs.append(store.add_job("detect", f"prepare {case.case_id}", {}, review.id).id)
    state.runner.wake()
    return {"reviews": reviews, "jobs": jobs, "warnings": warnings}


def _case_dict(case: Case) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "folder": str(case.folder),
        "segments": [str(s) for s in case.segments],
    }
