"""The exceptions endoveil raises.

    EndoveilError            base of every runtime error; front ends print it as one line
     ├── MediaError          a video cannot be opened, decoded, encoded or written
     │    └── OutputError    an output cannot be written (permissions, disk full, exists)
     │         └── OutputExistsError   an output exists and is not to be replaced
     ├── ModelError          a model cannot be loaded or run, or has the wrong interface
     ├── LabelsFormatError   a labels / annotation file is malformed
     └── LeakError           `verify` found an out-of-body frame that is not anonymized

Coding errors (bad arguments) raise ``ValueError`` or ``TypeError`` instead.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "EndoveilError",
    "LabelsFormatError",
    "LeakError",
    "MediaError",
    "ModelError",
    "OutputError",
    "OutputExistsError",
]


class EndoveilError(Exception):
    """Base class of endoveil's runtime errors.

    Args:
        message: what went wrong, in one line a user can act on.
        path: the file concerned, when there is one.
        frame_index: the frame concerned, when known.
    """

    def __init__(
        self, message: str, *, path: Path | str | None = None, frame_index: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None
        # As given: a URL must not lose its "//" to Path's normalisation when shown.
        self._where = str(path) if path is not None else None
        self.frame_index = frame_index

    def __str__(self) -> str:
        where = f"{self._where}: " if self._where is not None else ""
        frame = f" (frame {self.frame_index})" if self.frame_index is not None else ""
        return f"{where}{self.message}{frame}"


class MediaError(EndoveilError):
    """A video cannot be opened, decoded, encoded or written."""


class OutputError(MediaError):
    """An output cannot be written: not writable, disk full, or exists without ``--force``."""


class OutputExistsError(OutputError):
    """An output exists and replacing it was not asked for (``--force``, ``force=True``)."""


class ModelError(EndoveilError):
    """A model cannot be loaded or run, or does not have the documented interface."""


class LabelsFormatError(EndoveilError):
    """A labels or annotation file is malformed."""


class LeakError(EndoveilError):
    """An anonymized output shows an out-of-body frame, or lost or altered an in-body frame."""
