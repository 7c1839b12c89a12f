"""What the command modules share: exit codes, the one-line error, the pipeline's options.

The pipeline options are declared once as annotated types, so ``anonymize`` and ``cases``
offer the same flags with the same help and checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from endoveil.anonymize.offline import MODES, PipelineConfig
from endoveil.anonymize.render import ACTIONS

__all__ = [
    "EXIT_ERROR",
    "EXIT_FOUND",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "ActionOption",
    "CrfOption",
    "KeepAudioOption",
    "MarginOption",
    "ModeOption",
    "ModelOption",
    "PresetOption",
    "QuietOption",
    "SampleEveryOption",
    "SmoothingOption",
    "ThresholdOption",
    "err",
    "fail",
    "pipeline_config",
    "print_error",
]

EXIT_ERROR, EXIT_USAGE, EXIT_FOUND, EXIT_INTERRUPTED = 1, 2, 3, 130

err = Console(stderr=True)

ActionOption = Annotated[
    str, typer.Option(help=f"How OOB frames are hidden: {', '.join(ACTIONS)}.")
]
ModeOption = Annotated[
    str, typer.Option(help="exact: re-encode every frame; fast: stream-copy in-body GOPs.")
]
ThresholdOption = Annotated[
    float | None, typer.Option(help="p(out of body) threshold [default: the model's].")
]
MarginOption = Annotated[
    float, typer.Option(help="Seconds hidden before and after each OOB segment.")
]
SmoothingOption = Annotated[
    float,
    typer.Option(help="In-body gaps shorter than this (s) between OOB segments are hidden."),
]
SampleEveryOption = Annotated[
    int | None,
    typer.Option(help="Score every N-th frame [default: about 6 frames per second].", min=1),
]
KeepAudioOption = Annotated[
    bool, typer.Option(help="Keep the sound, muted during OOB segments (default: dropped).")
]
PresetOption = Annotated[
    str | None,
    typer.Option(
        help="libx264 preset for re-encoded frames [default: superfast; ultrafast in fast mode]."
    ),
]
CrfOption = Annotated[int, typer.Option(help="libx264 quality (lower is better).", min=0, max=51)]
ModelOption = Annotated[Path | None, typer.Option(help="ONNX model [default: the embedded model].")]
QuietOption = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars.")]


def print_error(message: str) -> None:
    """One red ``error:`` line on stderr (file names are not read as markup)."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print one error line and exit with ``code``."""
    print_error(message)
    raise typer.Exit(code)


def pipeline_config(
    *,
    action: str,
    mode: str,
    threshold: float | None,
    margin: float,
    smoothing: float,
    **settings: object,
) -> PipelineConfig:
    """Check the shared options (usage errors exit 2) and build the pipeline's settings."""
    if action not in ACTIONS:
        fail(f"--action must be one of {', '.join(ACTIONS)}", EXIT_USAGE)
    if mode not in MODES:
        fail(f"--mode must be one of {', '.join(MODES)}", EXIT_USAGE)
    if threshold is not None and not 0 < threshold <= 1:
        fail("--threshold must be in (0, 1]", EXIT_USAGE)
    if margin < 0 or smoothing < 0:
        fail("--margin and --smoothing must be >= 0", EXIT_USAGE)
    try:
        return PipelineConfig(
            action=action,  # type: ignore[arg-type]
            mode=mode,  # type: ignore[arg-type]
            threshold=threshold,
            margin_s=margin,
            smoothing_s=smoothing,
            **settings,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
