"""Who may talk to the GUI server, and which files it may touch.

- **Session token**: a random `secrets.token_urlsafe` made at start-up. The page holds it (in
  its origin's storage, which no other port or site can read) and sends it in the
  ``X-Endoveil-Token`` header with every API call. There is no cookie: cookies of 127.0.0.1
  reach every port of 127.0.0.1, so another local server would receive one. Tokens are
  compared in constant time. No token: 401; a wrong one: 403.
- **Launch tokens**: the link ``endoveil gui`` prints carries a one-time token in its
  fragment (``#launch=…``, which browsers never send to any server). The page exchanges it
  for the session token and removes it from the address bar and history.
- **Signed media URLs**: ``<video>`` and ``<img>`` cannot send headers, so the player and the
  live preview get a URL signed for that one resource (HMAC-SHA256 under a per-start key)
  that expires after minutes (`MediaSigner`). A stolen URL opens that resource, briefly.
- **Password** (``--host`` beyond localhost): ``POST /api/login`` exchanges it for the
  session token; attempts are serialized server-wide (`LoginThrottle`).
- **Host header**: only the names the server was bound to are answered (DNS rebinding).
- **Roots**: every path a request names is resolved (``..`` and symlinks followed) and must
  lie inside one of the configured roots, or the request is refused with 403.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "HEADER",
    "LaunchTokens",
    "LoginThrottle",
    "MediaSigner",
    "PathRefused",
    "Roots",
    "check_secret",
    "new_token",
]

HEADER = "X-Endoveil-Token"
TOKEN_BYTES = 32
MEDIA_URL_TTL_S = 300  # a signed media URL opens its one resource for five minutes
LOGIN_INTERVAL_S = 0.5  # at most two password attempts a second, whoever sends them


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


class LaunchTokens:
    """One-time tokens for the links that open the page; each is exchanged once."""

    def __init__(self) -> None:
        self._unused: list[str] = []
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = new_token()
        with self._lock:
            self._unused.append(token)
        return token

    def redeem(self, given: str) -> bool:
        """True (and the token is spent) if ``given`` is an unused launch token."""
        with self._lock:
            for token in self._unused:
                if check_secret(given, token):
                    self._unused.remove(token)
                    return True
        return False


class MediaSigner:
    """Short-lived URLs for one media resource each (the player, the live preview).

    The signature is an HMAC-SHA256 of the path and the expiry time under a key made at
    start-up, so it cannot be moved to another review or kept beyond ``ttl_s``.
    """

    def __init__(self, ttl_s: float = MEDIA_URL_TTL_S) -> None:
        self._key = secrets.token_bytes(TOKEN_BYTES)
        self.ttl_s = ttl_s

    def _signature(self, path: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, path: str) -> str:
        """``path`` with ``?exp=…&sig=…`` valid for ``ttl_s`` seconds."""
        expires = int(time.time() + self.ttl_s)
        return f"{path}?exp={expires}&sig={self._signature(path, expires)}"

    def check(self, path: str, expires: str | None, signature: str | None) -> bool:
        """True if ``signature`` was made by `sign` for ``path`` and has not expired."""
        if not expires or not signature or not expires.isdigit():
            return False
        if int(expires) < time.time():
            return False
        return check_secret(signature, self._signature(path, int(expires)))


class LoginThrottle:
    """Password attempts one at a time, `LOGIN_INTERVAL_S` apart, across all connections:
    a hundred parallel guesses take fifty seconds, not one."""

    def __init__(self, interval_s: float = LOGIN_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._lock: asyncio.Lock | None = None

    async def __aenter__(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        await self._lock.acquire()
        await asyncio.sleep(self.interval_s)

    async def __aexit__(self, *_exc: object) -> None:
        assert self._lock is not None
        self._lock.release()


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
