"""endoveil: make surgical video safe to share."""

from endoveil.errors import (
    EndoveilError,
    LabelsFormatError,
    LeakError,
    MediaError,
    ModelError,
    OutputError,
)

__version__ = "0.1.0"

__all__ = [
    "EndoveilError",
    "LabelsFormatError",
    "LeakError",
    "MediaError",
    "ModelError",
    "OutputError",
    "__version__",
]
