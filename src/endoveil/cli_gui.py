"""``endoveil gui``: serve the review GUI on this machine and open it in the browser.

FastAPI and uvicorn are imported only when the command runs (extra ``gui``), so the rest of
the CLI works without them.
"""

from __future__ import annotations

import html
import ipaddress
import os
import socket
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["register"]

EXIT_ERROR, EXIT_USAGE = 1, 2
LOCALHOST = "127.0.0.1"
LAUNCH_PAGE = "open.html"
INSTALL_HINT = "the GUI needs its extra: pip install 'endoveil[gui]'"
err = Console(stderr=True)
out = Console()


def register(app: typer.Typer) -> None:
    """Add the ``gui`` command to ``app``."""
    app.command(name="gui")(gui)


def _fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _machine_names(host: str) -> list[str]:
    """The names and addresses a remote browser may use for this server: the bound address,
    and for a wildcard address this machine's names and its addresses."""
    names = [host, socket.gethostname(), socket.getfqdn()]
    if host in ("0.0.0.0", "::"):
        try:
            infos = socket.getaddrinfo(socket.gethostname(), None)
        except OSError:
            infos = []
        names += [str(info[4][0]) for info in infos]
    return names


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound here so that port 0 gives a free port without a race."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def gui(
    root: Annotated[
        list[Path] | None,
        typer.Option(help="A folder the GUI may use (repeatable) [default: the current one]."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port (0: a free one).", min=0, max=65535)] = 0,
    host: Annotated[
        str, typer.Option(help="Address to serve on; beyond localhost needs --password-file.")
    ] = LOCALHOST,
    password_file: Annotated[
        Path | None, typer.Option(help="File holding the password for remote browsers.")
    ] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = (
        False
    ),
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Database, reviews and reports [default: ~/.local/share/endoveil/gui]."),
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="ONNX model [default: the embedded model].")
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Another name browsers reach the server by, e.g. behind a proxy."),
    ] = None,
) -> None:
    """Serve the review GUI on this machine: check what was detected, correct it, export."""
    try:
        import uvicorn

        from endoveil.gui import GuiSettings, create_app
        from endoveil.gui.settings import LOCAL_HOSTS, default_data_dir
    except ImportError as exc:
        raise _fail(f"{INSTALL_HINT} ({exc.name} is missing)") from exc

    roots = [r.expanduser() for r in (root or [Path.cwd()])]
    for folder in roots:
        if not folder.is_dir():
            raise _fail(f"--root {folder}: not a folder", EXIT_USAGE)
    password = None
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise _fail(f"{password_file}: cannot read the password: {exc.strerror}") from exc
        if len(password) < 8:
            raise _fail("the password must be at least 8 characters", EXIT_USAGE)
    remote = not _is_loopback(host)
    if remote and password is None:
        raise _fail(f"--host {host} serves beyond this machine: give --password-file", EXIT_USAGE)
    if model is not None and not model.is_file():
        raise _fail(f"--model {model}: no such file", EXIT_USAGE)

    # Requests must name this server as the browser reached it (DNS rebinding).
    hosts = [*LOCAL_HOSTS, *(allow_host or []), *(_machine_names(host) if remote else [])]
    settings = GuiSettings(
        roots=tuple(roots),
        data_dir=(data_dir or default_data_dir()).expanduser(),
        password=password,
        model=model,
        hosts=tuple(h.strip("[]").lower() for h in hosts),
    )
    try:
        app = create_app(settings)
        sock = _listen(host, port)
    except OSError as exc:
        raise _fail(f"cannot start: {exc.strerror or exc}") from exc
    port = int(sock.getsockname()[1])
    # A wildcard address is not one a browser can open: show this machine's name instead.
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    base = f"http://{LOCALHOST if not remote else shown}:{port}/"
    # One-time launch tokens in the fragment, which browsers send to no server: one for the
    # printed link, one for the browser opened here.
    launches = app.state.gui.launches
    url = f"{base}#launch={launches.issue()}"
    if remote:
        err.print(
            f"[bold yellow]warning:[/] serving on {host}: anyone on the network who has the "
            "password can see these videos, and the traffic is not encrypted. Use only on a "
            "trusted network or behind an HTTPS proxy.",
            highlight=False,
        )
    page = settings.data_dir / LAUNCH_PAGE
    try:
        if not no_browser:
            _launch_page(page, f"{base}#launch={launches.issue()}")
        out.print(f"endoveil GUI: {url}", highlight=False, soft_wrap=True)
        out.print(f"folders: {', '.join(str(r) for r in settings.roots)}", highlight=False)
        out.print("Ctrl-C stops the server (running jobs can be resumed later).", highlight=False)
        if not no_browser:
            webbrowser.open(page.as_uri())
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        server.run(sockets=[sock])
    finally:
        page.unlink(missing_ok=True)  # it held a way in: not left behind


def _launch_page(page: Path, url: str) -> Path:
    """An owner-only page that forwards the browser to ``url``: opening the URL itself would
    put the launch token on the browser's command line, which every local user can read.
    It is deleted when the server stops."""
    page.unlink(missing_ok=True)
    fd = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(
            f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" '
            f'content="0;url={html.escape(url)}"><title>endoveil</title>'
        )
    os.chmod(page, 0o600)
    return page
