"""Pseudonyms that cannot be guessed back to a patient, and the secret that keys them.

Two kinds (Endoshare's 7 hex characters collide after a few thousand cases):

- ``uuid``: a random UUID4 (122 random bits) per case; the mapping log is the only link.
- ``hmac``: HMAC-SHA256 of the case identifier keyed by a secret, cut to 128 bits (32 hex
  characters). The same secret gives the same pseudonym on every run, so a re-run or a later
  delivery of the same case keeps its name; without the secret nobody can test a guessed name.

The secret comes from a file (``--secret-file``) or the ``ENDOVEIL_SECRET`` environment
variable, never from the command line, where ``ps`` and shell history would show it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import uuid
from pathlib import Path
from typing import Literal

__all__ = [
    "MIN_SECRET_BYTES",
    "PSEUDONYM_KINDS",
    "SECRET_ENV",
    "PseudonymKind",
    "derive_key",
    "hmac_pseudonym",
    "is_pseudonym",
    "keyed_id",
    "load_secret",
    "uuid_pseudonym",
]

PseudonymKind = Literal["uuid", "hmac"]
PSEUDONYM_KINDS: tuple[PseudonymKind, ...] = ("uuid", "hmac")
SECRET_ENV = "ENDOVEIL_SECRET"
MIN_SECRET_BYTES = 16
HMAC_HEX_CHARS = 32  # 128 bits: collisions are out of reach for any archive

_PSEUDONYM = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"  # UUID4
    r"|[0-9a-f]{32}"  # HMAC
)


def uuid_pseudonym() -> str:
    """A fresh random pseudonym, e.g. ``'3f2b…-4…'`` (UUID4, 36 characters)."""
    return str(uuid.uuid4())


def hmac_pseudonym(secret: bytes, case_id: str) -> str:
    """The pseudonym of ``case_id`` under ``secret``: 32 lowercase hex characters.

    Example:
        >>> hmac_pseudonym(b"0123456789abcdef", "Case 1") == hmac_pseudonym(
        ...     b"0123456789abcdef", "Case 1")
        True
    """
    return keyed_id(secret, "pseudonym", case_id)


def keyed_id(key: bytes, purpose: str, text: str) -> str:
    """HMAC-SHA256 of ``text`` for one ``purpose`` (domain-separated), as 32 hex characters."""
    message = f"endoveil/{purpose}@1\0{text}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:HMAC_HEX_CHARS]


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A sub-key of ``secret`` for one purpose, so one secret never keys two jobs."""
    return hmac.new(secret, f"endoveil/key/{purpose}@1".encode(), hashlib.sha256).digest()


def is_pseudonym(text: str) -> bool:
    """True for a string shaped like one of our pseudonyms."""
    return _PSEUDONYM.fullmatch(text) is not None


def load_secret(secret_file: Path | None) -> bytes:
    """The HMAC secret: the file's bytes (trailing newline dropped), else ``$ENDOVEIL_SECRET``.

    Raises:
        ValueError: no secret given, the file cannot be read, or the secret is too short.
    """
    if secret_file is not None:
        try:
            secret = Path(secret_file).read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ValueError(f"{secret_file}: cannot read the secret: {exc.strerror}") from exc
        source = str(secret_file)
    else:
        secret = os.environ.get(SECRET_ENV, "").encode()
        source = f"${SECRET_ENV}"
        if not secret:
            raise ValueError(f"--pseudonym hmac needs --secret-file or ${SECRET_ENV}")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"{source}: the secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret
