"""Outputs appear complete or not at all: written under a temporary name, then renamed."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from endoveil.errors import OutputError

__all__ = ["atomic_path", "check_writable_target", "scratch_path", "write_text_atomic"]


def check_writable_target(path: Path, *, force: bool) -> None:
    """Refuse early an output that exists (without ``force``) or whose folder is not writable."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputError("exists; use --force to overwrite", path=path)
    folder = path.parent
    if not folder.is_dir():
        raise OutputError("output folder does not exist", path=folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError("output folder is not writable", path=folder)


@contextmanager
def scratch_path(beside: Path, suffix: str) -> Iterator[Path]:
    """Yield a temporary path in ``beside``'s folder; it is deleted whatever happens."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{beside.stem}.", suffix=suffix, dir=beside.parent)
    except OSError as exc:
        raise OutputError(f"cannot write here: {exc.strerror}", path=beside) from exc
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    On any exception (including Ctrl-C) the temporary file is deleted, so a half-written
    output never sits under the final name. A full disk or a refused write becomes an
    `OutputError`.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent
        )
    except OSError as exc:
        raise OutputError(f"cannot write here: {exc.strerror}", path=path) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _sync(tmp)
        os.replace(tmp, path)
        _sync(path.parent, folder=True)
    except OSError as exc:
        reason = "disk full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        raise OutputError(f"cannot write: {reason}", path=path) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _sync(path: Path, *, folder: bool = False) -> None:
    """Flush a file (or a folder's entries) to disk, so a rename never exposes an empty file
    after a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        if not folder:
            raise
        # Some file systems cannot sync a folder; the file itself was synced.
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (synced before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
