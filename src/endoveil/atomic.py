"""Outputs appear complete or not at all, and never replace a file by accident.

Every output is written under a temporary name beside its final one, then put in place:

- **never replacing**: without ``overwrite`` the final step is a hard link (or
  ``renameat2(RENAME_NOREPLACE)`` where links are not supported), which fails if the name
  exists — so two runs racing for one name cannot both succeed, whatever they checked first;
- **as a group**: `atomic_paths` places several files (a video and its labels) together; if
  one cannot be placed, those already placed are removed again, so a pair is never left
  mismatched;
- **provably stale temporary files are removed**: a temporary file is locked (``flock``) by
  the process writing it for as long as it exists; the lock dies with the process, so the next
  run removes exactly the temporary files no living process holds (`remove_stale_parts`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from endoveil.errors import OutputError, OutputExistsError

__all__ = [
    "PART_MARKER",
    "atomic_path",
    "atomic_paths",
    "check_writable_target",
    "file_sha256",
    "place",
    "place_group",
    "remove_stale_parts",
    "scratch_path",
    "write_text_atomic",
]

FORCE_HINT = "to replace it use --force (force=True from Python)"

PART_MARKER = ".endoveil.part"
"""Every temporary file's name holds this (``.<stem>.<random>.endoveil.part<suffix>``), so
clean-up never touches a user's file that merely looks like a part."""

_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def check_writable_target(path: Path, *, force: bool) -> None:
    """Refuse early an output that exists (without ``force``) or whose folder is not writable.

    This is only an early, friendly check: the final `place` refuses an existing name again,
    atomically.
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"exists; {FORCE_HINT}", path=path)
    folder = path.parent
    if not folder.is_dir():
        raise OutputError("output folder does not exist", path=folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError("output folder is not writable", path=folder)


class _Part:
    """A temporary file beside ``beside``, locked by this process for as long as it exists."""

    def __init__(self, beside: Path, suffix: str, folder: Path | None = None) -> None:
        folder = beside.parent if folder is None else folder
        try:
            fd, name = tempfile.mkstemp(
                prefix=f".{beside.stem}.", suffix=f"{PART_MARKER}{suffix}", dir=folder
            )
        except OSError as exc:
            raise OutputError(f"cannot write here: {exc.strerror}", path=beside) from exc
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.fd, self.path = fd, Path(name)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        if self.fd >= 0:
            os.close(self.fd)  # releases the lock, after the file is gone
            self.fd = -1


@contextmanager
def scratch_path(beside: Path, suffix: str) -> Iterator[Path]:
    """Yield a temporary path in ``beside``'s folder; it is deleted whatever happens."""
    part = _Part(Path(beside), suffix)
    try:
        yield part.path
    finally:
        part.remove()


def place(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Give the complete file ``tmp`` the name ``path`` (``tmp`` is gone afterwards).

    Raises:
        OutputError: ``path`` exists and ``overwrite`` is off (nothing is replaced), or the
            file system refused.
    """
    _sync(tmp)
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            _rename_noreplace(tmp, path)
    except FileExistsError as exc:
        raise OutputExistsError(
            f"exists (written meanwhile by another run?); nothing was replaced; {FORCE_HINT}",
            path=path,
        ) from exc
    except OSError as exc:
        reason = "disk full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        raise OutputError(f"cannot write: {reason}", path=path) from exc
    _sync(path.parent, folder=True)


def _rename_noreplace(tmp: Path, path: Path) -> None:
    """Rename that fails with `FileExistsError` rather than replace ``path``."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        _renameat2_noreplace(tmp, path)  # a file system without hard links
        return
    tmp.unlink()


def _renameat2_noreplace(tmp: Path, path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOTSUP, "this file system cannot rename without replacing")
    done = renameat2(_AT_FDCWD, os.fsencode(tmp), _AT_FDCWD, os.fsencode(path), _RENAME_NOREPLACE)
    if done != 0:
        code = ctypes.get_errno()
        raise (FileExistsError if code == errno.EEXIST else OSError)(code, os.strerror(code))


@contextmanager
def atomic_paths(paths: Sequence[Path], *, overwrite: bool = False) -> Iterator[list[Path]]:
    """Yield one temporary path per ``paths``; place them all only if the block succeeds.

    They are placed in order; if one cannot be placed (it exists, the disk is full), the
    ones already placed are removed again, so a group (a video and its labels) is either all
    new or not there. With ``overwrite`` the old group is removed first, last member first
    (labels before the video they describe), so an old member never sits beside a new one.
    On any exception (including Ctrl-C and SIGTERM, see `endoveil.signals`) every temporary
    file is deleted.
    """
    paths = [Path(p) for p in paths]
    parts: list[_Part] = []
    try:
        for path in paths:
            parts.append(_Part(path, path.suffix))
        try:
            yield [p.path for p in parts]
        except (OSError, OutputError) as exc:
            finals = {p.path: path for p, path in zip(parts, paths, strict=True)}
            raise _named_final(exc, finals) from exc
        place_group([p.path for p in parts], paths, overwrite=overwrite)
    finally:
        for part in parts:
            part.remove()


def place_group(tmps: Sequence[Path], paths: Sequence[Path], *, overwrite: bool) -> None:
    """`place` every ``tmps[i]`` as ``paths[i]``, all or none.

    If one cannot be placed, those already placed go back to their temporary names (so the
    caller may still place the group elsewhere, or delete it), and the error is raised. With
    ``overwrite`` the old group is removed first, last member first.
    """
    if overwrite:
        for path in reversed(paths):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    placed: list[tuple[Path, Path]] = []
    try:
        for tmp, path in zip(tmps, paths, strict=True):
            place(tmp, path, overwrite=overwrite)
            placed.append((tmp, path))
    except BaseException:
        for tmp, path in reversed(placed):
            os.rename(path, tmp)
        raise


def _named_final(exc: OSError | OutputError, finals: dict[Path, Path]) -> OutputError:
    """The error a write into a temporary file raised, naming the output the user asked for."""
    if isinstance(exc, OutputError):
        where = finals.get(exc.path) if exc.path is not None else None
        return type(exc)(exc.message, path=where) if where else exc
    reason = "disk full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
    named = finals.get(Path(exc.filename)) if exc.filename else None
    return OutputError(f"cannot write: {reason}", path=named or next(iter(finals.values())))


@contextmanager
def atomic_path(path: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; put it in place only if the block succeeds.

    ``overwrite`` (the default for state and report files that are meant to be rewritten)
    replaces an existing ``path``; without it an existing ``path`` is never replaced and the
    block's work is refused with an `OutputError`. A half-written file never sits under the
    final name; a full disk or a refused write becomes an `OutputError`.
    """
    with atomic_paths([path], overwrite=overwrite) as (tmp,):
        yield tmp


def remove_stale_parts(folder: Path) -> int:
    """Delete the temporary files in ``folder`` that no living process holds; their count.

    A writer holds a lock on its temporary file until it is placed or removed; a file whose
    lock can be taken was left by a run that died (killed, power loss).
    """
    removed = 0
    for path in Path(folder).glob(f".*{PART_MARKER}*"):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a living run is writing it
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


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


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex); labels record their video's, to pin the pair."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text_atomic(path: Path, text: str, *, overwrite: bool = True) -> None:
    """Write ``text`` to ``path`` atomically (synced before it is put in place)."""
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
