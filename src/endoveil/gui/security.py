"""Who may talk to the GUI server, and which files it may touch.

- **Session token**: a random `secrets.token_urlsafe` made at start-up and printed with the
  URL. Every API call must carry it: in the ``X-Endoveil-Token`` header, in the HttpOnly
  SameSite=Strict cookie the page gets when opened with ``?token=``, or (media URLs only,
  which ``<video>`` and ``<img>`` fetch without headers) as ``?token=``. Tokens are compared
  in constant time. No token: 401; a wrong one: 403.
- **Password** (``--host`` beyond localhost): whoever knows it gets the session cookie from
  ``POST /api/login``; the printed token URL keeps working for the operator.
- **Roots**: every path a request names is resolved (``..`` and symlinks followed) and must
  lie inside one of the configured roots, or the request is refused with 403.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "COOKIE",
    "HEADER",
    "PathRefused",
    "Roots",
    "check_secret",
    "new_token",
]

HEADER = "X-Endoveil-Token"
COOKIE = "endoveil_token"
TOKEN_BYTES = 32


class PathRefused(Exception):
    """A path lies outside the allowed roots (or cannot be resolved)."""


def new_token() -> str:
    """A fresh session token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def check_secret(given: str | None, expected: str) -> bool:
    """True if ``given`` equals ``expected``; the comparison takes the same time either way."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Roots:
    """The folders the GUI may list, read and write; nothing outside them.

    Args:
        roots: the allowed folders (resolved once, symlinks included).

    Example:
        >>> roots = Roots([Path("/srv/videos")])
        >>> roots.resolve("/etc/passwd")
        Traceback (most recent call last):
        ...
        endoveil.gui.security.PathRefused: /etc/passwd: outside the allowed folders
    """

    def __init__(self, roots: Sequence[Path]) -> None:
        if not roots:
            raise ValueError("at least one root folder is needed")
        self.roots = tuple(Path(os.path.abspath(r)).resolve() for r in roots)

    def resolve(self, path: str | Path) -> Path:
        """``path`` resolved and checked: inside a root, or `PathRefused`.

        A relative path counts from the first root. ``Path.resolve`` follows every symlink, so
        a link inside a root that points outside it is refused like ``..`` is.
        """
        text = str(path)
        if not text or "\x00" in text:
            raise PathRefused(f"{text!r}: not a path")
        candidate = Path(text)
        if not candidate.is_absolute():
            candidate = self.roots[0] / candidate
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise PathRefused(f"{text}: cannot be resolved") from exc
        if not any(resolved.is_relative_to(root) for root in self.roots):
            raise PathRefused(f"{text}: outside the allowed folders")
        return resolved
