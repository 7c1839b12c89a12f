"""SIGTERM — what a service manager, a cluster or ``timeout`` sends — ends a run like Ctrl-C.

Python turns Ctrl-C (SIGINT) into `KeyboardInterrupt`, which unwinds every ``with`` block: the
temporary files of unfinished outputs are deleted (`endoveil.atomic`). SIGTERM's default
action kills the process on the spot and leaves them behind; raising the same exception makes
both signals take the same, clean path.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["interrupt_on_sigterm"]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise `KeyboardInterrupt` in the main thread (a no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
