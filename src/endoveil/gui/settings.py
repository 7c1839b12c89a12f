"""The server's settings (`GuiSettings`) and one piece of work's settings (`WorkSettings`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from endoveil.anonymize.offline import PipelineConfig
from endoveil.gui.security import new_token

__all__ = ["LOCAL_HOSTS", "MAX_UPLOAD_BYTES", "GuiSettings", "WorkSettings", "default_data_dir"]

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/endoveil/gui`` (usually ``~/.local/share/endoveil/gui``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "endoveil" / "gui"


@dataclass(frozen=True)
class GuiSettings:
    """How the GUI server runs.

    Attributes:
        roots: the only folders it may list, read and write.
        data_dir: its SQLite database, reviews, merged case videos and reports (owner-only:
            it holds patient folder names and merged videos).
        token: the session token every API call must carry.
        password: required to log in from another machine (``--host``); None on localhost.
        model: ONNX model; None for the embedded one.
        max_upload_bytes: larger label uploads are refused (413).
        start_worker: run queued jobs (off in tests that only look at the queue).
        hosts: the names a request's Host header may carry (the bound address and, for a
            wildcard address, this machine's name); others are refused (DNS rebinding).
    """

    roots: tuple[Path, ...]
    data_dir: Path
    token: str = field(default_factory=new_token, repr=False)
    password: str | None = field(default=None, repr=False)
    model: Path | None = None
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    start_worker: bool = True
    hosts: tuple[str, ...] = LOCAL_HOSTS


class WorkSettings(BaseModel):
    """What the user chose on the work page; defaults are the CLI's."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["exact", "fast"] = "exact"
    action: Literal["blur", "pixelate", "black", "cut"] = "blur"
    threshold: float | None = Field(default=None, gt=0, le=1)
    margin_s: float = Field(default=1.0, ge=0, le=60)
    output: str = ""
    """Output folder; empty: ``endoveil-output`` in the first root."""
    pseudonym: Literal["uuid", "hmac"] = "uuid"
    secret_file: str = ""
    """The HMAC secret's file (``hmac`` only); else ``$ENDOVEIL_SECRET``."""
    mapping_log: str = ""
    """The mapping log; empty: ``endoveil-mapping-log.csv`` in the first root."""
    keep_names: bool = False
    """Name outputs after the input (they may carry patient names); off: pseudonyms."""
    keep_audio: bool = False
    force: bool = False
    unattended: bool = False
    """Export without review (batch); otherwise nothing leaves before the user says so."""

    def pipeline(self, **overrides: object) -> PipelineConfig:
        """The offline pipeline's settings for this work."""
        config = PipelineConfig(
            action=self.action,
            mode=self.mode,
            threshold=self.threshold,
            margin_s=self.margin_s,
            keep_audio=self.keep_audio,
            force=self.force,
        )
        return replace(config, **overrides)  # type: ignore[arg-type]
