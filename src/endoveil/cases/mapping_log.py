"""The mapping log: the one place where a pseudonym meets the patient's folder and files.

A CSV file, one row per finished case, appended under an exclusive lock (several runs may
share a log), in a single ``write`` followed by ``fsync``: a row is there whole or not at
all. The file is owner-only (0600) and must lie outside the output root, which is what gets
shared.

Columns (`COLUMNS`):

==================  ===========================================================================
case_folder         the case folder (absolute path; for grouped cases: the input root)
case                the case: the folder's name (or the ``--group-by`` key)
original_files      JSON list of the segment files, relative to the case folder, in merge order
pseudonym           the output's name
created_at          when the row was written (UTC, ISO 8601)
source_sha256       JSON list of the segments' SHA-256, in the order of ``original_files``
output_file         the anonymized video, relative to the output root
output_sha256       its SHA-256
labels_sha256       SHA-256 of its labels JSON
model               model name, version and SHA-256 (JSON)
parameters          pseudonym kind, merge method and every pipeline setting (JSON)
==================  ===========================================================================
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from endoveil.errors import OutputError
from endoveil.media.inputs import VIDEO_SUFFIXES

__all__ = [
    "COLUMNS",
    "MappingRow",
    "append_row",
    "check_is_mapping_log",
    "check_log_location",
    "check_outside_output",
    "default_log_path",
    "read_rows",
]

COLUMNS = (
    "case_folder",
    "case",
    "original_files",
    "pseudonym",
    "created_at",
    "source_sha256",
    "output_file",
    "output_sha256",
    "labels_sha256",
    "model",
    "parameters",
)
OWNER_ONLY = 0o600


@dataclass(frozen=True)
class MappingRow:
    """One finished case."""

    case_folder: str
    case: str
    original_files: list[str]
    pseudonym: str
    created_at: str
    source_sha256: list[str]
    output_file: str
    output_sha256: str
    labels_sha256: str
    model: dict[str, Any]
    parameters: dict[str, Any]

    def cells(self) -> list[str]:
        values = [getattr(self, c) for c in COLUMNS]
        return [v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]


def default_log_path() -> Path:
    """``$XDG_DATA_HOME/endoveil/mapping-log.csv`` (``~/.local/share/...`` by default)."""
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "endoveil" / "mapping-log.csv"


def check_log_location(log: Path, output_root: Path) -> None:
    """Refuse a log inside the output root (the output root is what gets shared), and a log
    that is not one: it may only be a new file or an existing endoveil mapping log.

    Raises:
        OutputError: ``log`` lies in ``output_root`` (or is it), or is another kind of file.
    """
    check_outside_output(log, output_root, "the mapping log (it names the patients)")
    check_is_mapping_log(log)


def check_is_mapping_log(log: Path) -> None:
    """Refuse to treat as the mapping log anything but a new file, an empty file or an
    endoveil mapping log (its header checked): appending a row to a video, or to any other
    file, would damage it and spread patient names into it.

    Raises:
        OutputError: ``log`` exists and is not a mapping log (or is a video file's name).
    """
    log = Path(log)
    if Path(log).suffix.lower() in VIDEO_SUFFIXES:
        raise OutputError("the mapping log cannot be a video file (.csv expected)", path=log)
    if not log.exists():
        return
    if not log.is_file():
        raise OutputError("the mapping log must be a file", path=log)
    try:
        with open(log, "rb") as f:
            _check_header(f.readline(), log)
    except OSError as exc:
        raise OutputError(f"cannot read the mapping log: {exc.strerror}", path=log) from exc


HEADER_LINE = (",".join(COLUMNS) + "\n").encode("utf-8")


def _check_header(first_line: bytes, log: Path) -> None:
    if first_line and first_line != HEADER_LINE:
        raise OutputError(
            "is not an endoveil mapping log (its first line is not the mapping-log header): "
            "choose a new file or an existing mapping log",
            path=log,
        )


def check_outside_output(path: Path, output_root: Path, what: str) -> None:
    """Refuse ``path`` inside the output root (the mapping log, the pseudonym secret: whoever
    gets the shared outputs must not get them too).

    Raises:
        OutputError: ``path`` lies in ``output_root`` (or is it).
    """
    path_abs = Path(os.path.abspath(path)).resolve()
    root = Path(os.path.abspath(output_root)).resolve()
    if path_abs == root or root in path_abs.parents:
        raise OutputError(f"{what} must lie outside the output folder", path=path)


def append_row(log: Path, row: MappingRow) -> None:
    """Append ``row`` (and the header, to a new file) atomically, owner-only, fsynced.

    Raises:
        OutputError: the log cannot be created or written (the log is left as it was).
    """
    log = Path(log)
    try:
        log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(log, os.O_RDWR | os.O_APPEND | os.O_CREAT, OWNER_ONLY)
    except OSError as exc:
        raise OutputError(f"cannot open the mapping log: {exc.strerror}", path=log) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OutputError("the mapping log must be a regular file", path=log)
        size = os.fstat(fd).st_size
        # Checked under the lock, before anything changes: never append to another file.
        _check_header(os.pread(fd, len(HEADER_LINE), 0) if size else b"", log)
        # A log created by hand or copied may be readable by others: it names patients.
        if stat.S_IMODE(os.fstat(fd).st_mode) != OWNER_ONLY:
            os.fchmod(fd, OWNER_ONLY)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if size == 0:
            writer.writerow(COLUMNS)
        writer.writerow(row.cells())
        data = buffer.getvalue().encode("utf-8")
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        except OSError as exc:
            # A torn row would corrupt the CSV for every reader: cut the file back.
            os.ftruncate(fd, size)
            reason = "disk full" if exc.errno == errno.ENOSPC else exc.strerror
            raise OutputError(f"cannot write the mapping log: {reason}", path=log) from exc
    finally:
        os.close(fd)  # closing releases the lock


def read_rows(log: Path) -> Iterator[dict[str, str]]:
    """The rows of a mapping log as dicts of the `COLUMNS` (nothing if it does not exist)."""
    try:
        with open(log, encoding="utf-8", newline="") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return
    yield from rows
