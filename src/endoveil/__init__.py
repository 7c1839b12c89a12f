"""endoveil: make surgical video safe to share.

The public API is a few verbs and the objects they pass along (see docs/api.md):

    >>> import endoveil
    >>> labels = endoveil.detect_oob("case.mp4")  # doctest: +SKIP
    >>> result = endoveil.anonymize_video("case.mp4", "out", labels=labels)  # doctest: +SKIP
    >>> endoveil.verify("case.mp4", result.video_path, result.labels).ok  # doctest: +SKIP
    True

``import endoveil`` stays light: FFmpeg, ONNX Runtime and OpenCV load on first use.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from endoveil.errors import (
    EndoveilError,
    LabelsFormatError,
    LeakError,
    MediaError,
    ModelError,
    OutputError,
    OutputExistsError,
)

if _TYPE_CHECKING:
    from endoveil.anonymize.offline import FileResult as AnonymizeResult
    from endoveil.anonymize.verify import VerifyReport
    from endoveil.api import (
        LiveFrame,
        LiveFrames,
        ProgressCallback,
        anonymize_video,
        detect_oob,
        inspect,
        live_frames,
        load_model,
        run_cases,
        verify,
        video_summary,
    )
    from endoveil.cases.report import BatchReport
    from endoveil.detect.labels import Labels, ModelInfo, Segment, VideoSummary
    from endoveil.media.inspect import Finding

__version__ = "0.1.0"

# public name -> (module, attribute): imported on first access, so that importing endoveil
# does not load FFmpeg, ONNX Runtime or OpenCV.
_LAZY: dict[str, tuple[str, str]] = {
    **{
        name: ("endoveil.api", name)
        for name in (
            "LiveFrame",
            "LiveFrames",
            "ProgressCallback",
            "anonymize_video",
            "detect_oob",
            "inspect",
            "live_frames",
            "load_model",
            "run_cases",
            "verify",
            "video_summary",
        )
    },
    "AnonymizeResult": ("endoveil.anonymize.offline", "FileResult"),
    "BatchReport": ("endoveil.cases.report", "BatchReport"),
    "Finding": ("endoveil.media.inspect", "Finding"),
    "Labels": ("endoveil.detect.labels", "Labels"),
    "ModelInfo": ("endoveil.detect.labels", "ModelInfo"),
    "Segment": ("endoveil.detect.labels", "Segment"),
    "VerifyReport": ("endoveil.anonymize.verify", "VerifyReport"),
    "VideoSummary": ("endoveil.detect.labels", "VideoSummary"),
}

__all__ = [
    "AnonymizeResult",
    "BatchReport",
    "EndoveilError",
    "Finding",
    "Labels",
    "LabelsFormatError",
    "LeakError",
    "LiveFrame",
    "LiveFrames",
    "MediaError",
    "ModelError",
    "ModelInfo",
    "OutputError",
    "OutputExistsError",
    "ProgressCallback",
    "Segment",
    "VerifyReport",
    "VideoSummary",
    "__version__",
    "anonymize_video",
    "detect_oob",
    "inspect",
    "live_frames",
    "load_model",
    "run_cases",
    "verify",
    "video_summary",
]


def __getattr__(name: str) -> _Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'endoveil' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(_import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
