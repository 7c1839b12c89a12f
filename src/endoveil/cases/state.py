"""What a batch has done so far, kept in ``OUTPUT_ROOT/.endoveil-state/`` for resuming.

Nothing there may name a patient, since the output root is what gets shared. A case's record
is therefore filed under a keyed hash of its identifier (`keyed_id`), and holds only its
pseudonym, status, times, output names and checksums, and a redacted error. The key is
derived from the user's secret (``--pseudonym hmac``) or, for UUID pseudonyms, is a random
key kept beside the mapping log, outside the output root; without it nobody can test a
guessed patient name against the file names.

Layout::

    .endoveil-state/
      lock              held (flock) by the run using this output root
      run.json          the key check and the settings every case was made with
      <id>.json         one record per case: running, done, failed or interrupted
      work/<pseudonym>/ the case's merged scratch video while it runs (cluster runs only;
                        otherwise beside the private mapping log)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from endoveil.atomic import write_text_atomic
from endoveil.cases.pseudonym import is_pseudonym, keyed_id
from endoveil.errors import OutputError

__all__ = ["STATE_DIR", "CaseRecord", "StateStore", "load_or_create_key", "now_utc"]

STATE_DIR = ".endoveil-state"
RUN_SCHEMA = "endoveil/cases-run@1"
RECORD_SCHEMA = "endoveil/case-state@1"
KEY_BYTES = 32

Status = Literal["running", "done", "failed", "interrupted"]


def now_utc() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass
class CaseRecord:
    """One case's progress; pseudonymous only."""

    pseudonym: str
    status: Status
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    output_file: str = ""
    output_sha256: str = ""
    labels_file: str = ""
    duration_s: float = 0.0

    def to_json(self) -> str:
        return json.dumps({"schema": RECORD_SCHEMA, **asdict(self)}, indent=1) + "\n"


def load_or_create_key(path: Path) -> bytes:
    """The random state key at ``path`` (owner-only), created on first use.

    Raises:
        OutputError: the key cannot be read or created.
    """
    path = Path(path)
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise OutputError(f"cannot read the state key: {exc}", path=path) from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_key(path)  # another run created it meanwhile
    except OSError as exc:
        raise OutputError(f"cannot create the state key: {exc.strerror}", path=path) from exc
    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return key


class StateStore:
    """The state folder of one output root, keyed by ``key``; a context manager holding its lock.

    Args:
        output_root: the batch's output folder.
        key: the state key (see the module docstring).
        work: the scratch folder for merged cases; default: inside the state folder.

    Raises:
        OutputError: another run holds the lock, or the folder cannot be written.
    """

    def __init__(self, output_root: Path, key: bytes, *, work: Path | None = None) -> None:
        self.output_root = Path(output_root)
        self.dir = self.output_root / STATE_DIR
        # Merged (not yet anonymized) cases: a private folder outside the output root where
        # one is given, so the shared folder never holds raw surgery; else the state folder
        # (a cluster's workers must reach it on shared storage).
        self.work = Path(work) if work is not None else self.dir / "work"
        self._key = key
        self._lock_fd: int | None = None

    def __enter__(self) -> StateStore:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.work.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot write state: {exc.strerror}", path=self.dir) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise OutputError(
                "another endoveil run is using this output folder", path=self.output_root
            ) from exc
        self._lock_fd = fd
        return self

    def __exit__(self, *_: object) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    # the run ---------------------------------------------------------------------------------
    def check_run(self, settings: dict[str, Any]) -> None:
        """Record the key check and settings, or refuse a run that does not match them.

        Raises:
            OutputError: the folder was started with another key or other settings.
        """
        check = keyed_id(self._key, "check", "endoveil")
        path = self.dir / "run.json"
        if path.exists():
            try:
                run = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise OutputError(f"unreadable run record: {exc}", path=path) from exc
            if run.get("key_check") != check:
                raise OutputError(
                    "this output folder was started with another secret or mapping log "
                    "(state key); resume with the same, or use another output folder",
                    path=self.output_root,
                )
            old = run.get("settings", {})
            changed = sorted(k for k in {*old, *settings} if old.get(k) != settings.get(k))
            if changed:
                raise OutputError(
                    f"this output folder was made with other settings ({', '.join(changed)}); "
                    "use the same settings to resume, or another output folder",
                    path=self.output_root,
                )
            return
        doc = {"schema": RUN_SCHEMA, "key_check": check, "settings": settings}
        write_text_atomic(path, json.dumps(doc, indent=1) + "\n")

    # cases -----------------------------------------------------------------------------------
    def case_key(self, case_id: str) -> str:
        """The file name stem of a case's record: a keyed hash, never the name itself."""
        return keyed_id(self._key, "state", case_id)

    def read(self, case_id: str) -> CaseRecord | None:
        path = self.dir / f"{self.case_key(case_id)}.json"
        return self._read_path(path)

    def _read_path(self, path: Path) -> CaseRecord | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise OutputError(f"unreadable case record: {exc}", path=path) from exc
        data.pop("schema", None)
        return CaseRecord(**data)

    def write(self, case_id: str, record: CaseRecord) -> None:
        write_text_atomic(self.dir / f"{self.case_key(case_id)}.json", record.to_json())

    def records(self) -> Iterator[tuple[Path, CaseRecord]]:
        for path in sorted(self.dir.glob("*.json")):
            # Hidden names are records being written (see `write_text_atomic`).
            if path.name != "run.json" and not path.name.startswith("."):
                record = self._read_path(path)
                if record is not None:
                    yield path, record

    def outputs_exist(self, record: CaseRecord) -> bool:
        files = [f for f in (record.output_file, record.labels_file) if f]
        return bool(files) and all((self.output_root / f).is_file() for f in files)

    def work_dir(self, pseudonym: str) -> Path:
        return self.work / pseudonym

    # clean-up --------------------------------------------------------------------------------
    def remove_outputs(self, pseudonym: str) -> None:
        """Delete everything a case may have left: outputs, temporary files, scratch."""
        if not is_pseudonym(pseudonym):
            raise ValueError(f"not a pseudonym: {pseudonym!r}")  # never glob a stray name
        for pattern in (f"{pseudonym}.*", f"{pseudonym}_*", f".{pseudonym}.*", f".{pseudonym}_*"):
            for path in self.output_root.glob(pattern):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        shutil.rmtree(self.work_dir(pseudonym), ignore_errors=True)

    def recover(self) -> int:
        """Undo what killed runs left: half-done cases' files and stray temporary files.

        Returns:
            how many half-done cases were cleaned (they are redone when next met).
        """
        cleaned = 0
        for path, record in self.records():
            if record.status == "running":
                self.remove_outputs(record.pseudonym)
                record.status = "interrupted"
                write_text_atomic(path, record.to_json())
                cleaned += 1
        for stray in self.dir.glob(".*.part*"):
            stray.unlink(missing_ok=True)
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True, exist_ok=True)
        return cleaned
