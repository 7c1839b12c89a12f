"""The ``endoveil train`` and ``endoveil evaluate`` commands, added to the main Typer app.

Both are thin: they parse options, build a config, call `endoveil.train`, and print with rich.
``train`` needs the ``train`` extra (torch); ``evaluate`` runs on ONNX Runtime alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from endoveil.errors import EndoveilError

__all__ = ["evaluate_command", "register", "train_command"]

INSTALL_HINT = "endoveil train needs PyTorch: pip install 'endoveil[train]'"

console = Console()
err_console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``evaluate`` to ``app``."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)


def _fail(exc: EndoveilError) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def train_command(
    data: Annotated[
        list[Path],
        typer.Argument(
            help="Labelled data: dataset roots with train/ "
            "and val/, image folders with in_body/ and "
            "out_of_body/, or annotated videos."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="ONNX model to write.")],
    val: Annotated[
        list[Path] | None, typer.Option("--val", help="Validation data (repeat for several).")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 8,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    input_size: Annotated[int, typer.Option(min=32, max=512)] = 160,
    seed: int = 0,
    init: Annotated[
        Path | None,
        typer.Option("--from", help="Start from an endoveil ONNX model or a checkpoint (.pt)."),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint.")] = False,
    checkpoint_dir: Annotated[Path | None, typer.Option(help="Default: OUT.ckpt/.")] = None,
    frames_per_second: Annotated[
        float, typer.Option(min=0.01, help="Sampling density of labelled videos.")
    ] = 2.0,
    samples_per_epoch: Annotated[int | None, typer.Option(min=1)] = None,
    freeze_blocks: Annotated[int, typer.Option(min=0, max=16)] = 4,
    synthetic_per_kind: Annotated[
        int,
        typer.Option(
            min=0,
            help="Synthetic near-field pictures (drapes, gloves, skin, trocar; smoke, "
            "red-out...) added per kind, e.g. 64; 0 = none.",
        ),
    ] = 0,
    threads: Annotated[int, typer.Option(min=1)] = 2,
) -> None:
    """Fine-tune the out-of-body classifier and write an ONNX model."""
    try:
        import torch  # noqa: F401
    except ImportError:
        err_console.print(f"[red]error:[/red] {escape(INSTALL_HINT)}", highlight=False)
        raise typer.Exit(2) from None
    from endoveil.train.fit import ProgressEvent, TrainConfig, fit

    config = TrainConfig(
        data=list(data),
        output=output,
        val=list(val or []),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        input_size=input_size,
        seed=seed,
        init=init,
        resume=resume,
        checkpoint_dir=checkpoint_dir,
        frames_per_second=frames_per_second,
        samples_per_epoch=samples_per_epoch,
        freeze_blocks=freeze_blocks,
        synthetic_per_kind=synthetic_per_kind,
        threads=threads,
    )
    with _progress() as bar:
        tasks: dict[tuple[str, int], Any] = {}

        def on_event(event: ProgressEvent) -> None:
            key = (event.stage, event.epoch)
            if key not in tasks:
                label = {
                    "load": "loading",
                    "train": f"epoch {event.epoch}/{epochs}",
                    "validate": "validating",
                }.get(event.stage, event.stage)
                tasks[key] = bar.add_task(label, total=event.total, note="")
            bar.update(tasks[key], completed=event.done, total=event.total, note=event.message)

        try:
            result = fit(config, on_event)
        except EndoveilError as exc:
            raise _fail(exc) from None
    table = Table(title=f"wrote {result.model}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("threshold", f"{result.threshold:.4g}")
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


def evaluate_command(
    model: Annotated[Path, typer.Argument(help="ONNX model (the shipped one: 'default').")],
    data: Annotated[
        list[Path],
        typer.Argument(help="Labelled data (a dataset root is evaluated on its val/ split)."),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Report folder.")],
    threshold: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Default: the model's own.")
    ] = None,
    threads: Annotated[int, typer.Option(min=1)] = 2,
) -> None:
    """Measure a model: ROC/PR AUC, operating point, per source, leaks and losses on videos."""
    from endoveil.train.evaluate import evaluate, write_results

    model_path = None if str(model) == "default" else model
    with _progress() as bar:
        tasks: dict[str, Any] = {}

        def on_progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(f"scoring {what}", total=total, note="")
            bar.update(tasks[what], completed=done, total=total)

        try:
            result = evaluate(
                model_path, data, threshold=threshold, threads=threads, progress=on_progress
            )
            json_path, html_path = write_results(result, output)
        except EndoveilError as exc:
            raise _fail(exc) from None
    _print_summary(result.summary)
    console.print(f"wrote {json_path} and {html_path}", highlight=False)


def _print_summary(summary: dict[str, Any]) -> None:
    f = summary["frames"]
    table = Table(title=f"frames at threshold {summary['threshold']:.4g}")
    for column in ("set", "frames", "oob", "ROC AUC", "PR AUC", "OOB recall", "specificity"):
        table.add_column(column, justify="right")
    rows = [("all", f), *sorted(summary["sources"].items())]
    for name, m in rows:
        metrics = [m["roc_auc"], m["pr_auc"], m["sensitivity"], m["specificity"]]
        table.add_row(name, str(m["frames"]), str(m["oob"]), *(_num(v) for v in metrics))
    console.print(table)
    totals = summary["video_totals"]
    colour = "red" if totals["leaked"] else "green"
    console.print(
        f"[{colour}]videos: {totals['leaked']} OOB frames leaked of {totals['oob_frames']}, "
        f"{totals['lost']} in-body frames lost of {totals['frames'] - totals['oob_frames']}; "
        f"{totals['excursions_hidden']} of {totals['excursions']} out-of-body excursions "
        f"fully hidden[/{colour}]",
        highlight=False,
    )


def _num(value: float) -> str:
    return "–" if value != value else f"{value:.4f}"
