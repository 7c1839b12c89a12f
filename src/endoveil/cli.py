"""The ``endoveil`` command line: one sub-command per job, each a thin shell over the library.

Exit codes: 0 success; 1 an input or output failed (one line per error on stderr);
2 wrong usage; 3 ``verify`` found a leak or a lost frame, or ``inspect`` found identifying
metadata; 130 interrupted (Ctrl-C or SIGTERM; no partial output is left).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from endoveil import __version__, api
from endoveil.anonymize.offline import FileResult, colliding_outputs
from endoveil.cli_common import (
    EXIT_ERROR,
    EXIT_FOUND,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ActionOption,
    CrfOption,
    KeepAudioOption,
    MarginOption,
    ModelOption,
    ModeOption,
    PresetOption,
    QuietOption,
    SampleEveryOption,
    SmoothingOption,
    ThresholdOption,
    err,
    fail,
    pipeline_config,
    print_error,
)
from endoveil.demo import make_demo_video
from endoveil.detect.classifier import OnnxClassifier
from endoveil.detect.formats import LABEL_FORMATS
from endoveil.errors import EndoveilError, ModelError
from endoveil.progress import frame_progress
from endoveil.signals import interrupt_on_sigterm

app = typer.Typer(
    name="endoveil",
    help="Make surgical video safe to share: find out-of-body frames, hide them, strip metadata.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()


def _version(value: bool) -> None:
    if value:
        out.print(f"endoveil {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Make surgical video safe to share."""


@app.command()
def anonymize(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="Videos to anonymize.", show_default=False)
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")] = Path("out"),
    action: ActionOption = "blur",
    mode: ModeOption = "exact",
    threshold: ThresholdOption = None,
    margin: MarginOption = 1.0,
    smoothing: SmoothingOption = 1.0,
    sample_every: SampleEveryOption = None,
    labels_only: Annotated[bool, typer.Option(help="Write labels only, no video.")] = False,
    labels_format: Annotated[
        str, typer.Option(help=f"Also write labels as: {', '.join(LABEL_FORMATS)}.")
    ] = "endoveil",
    labels: Annotated[
        Path | None,
        typer.Option(help="Use these (reviewed) labels instead of running the model."),
    ] = None,
    keep_audio: KeepAudioOption = False,
    preset: PresetOption = None,
    crf: CrfOption = 18,
    model: ModelOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing outputs.")] = False,
    demo: Annotated[
        bool, typer.Option(help="Run on a generated demo video (used when no input is given).")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Detect out-of-body frames; write labels JSON and the anonymized video per input."""
    if labels_format not in LABEL_FORMATS:
        fail(f"--labels-format must be one of {', '.join(LABEL_FORMATS)}", EXIT_USAGE)
    if labels is not None and inputs and len(inputs) > 1:
        fail("--labels applies to a single input", EXIT_USAGE)
    config = pipeline_config(
        action=action,
        mode=mode,
        threshold=threshold,
        margin=margin,
        smoothing=smoothing,
        sample_every=sample_every,
        labels_only=labels_only,
        labels_format=labels_format,
        labels_in=labels,
        keep_audio=keep_audio,
        preset=preset,
        crf=crf,
        force=force,
    )
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{output}: cannot create output folder: {exc.strerror}")
    try:
        if demo or not inputs:
            out.print("Running on a generated demo video (drawn, not filmed).")
            inputs = [*(inputs or []), make_demo_video(output)]
        # Loads while the first input is probed; a model that cannot load stops the run there.
        classifier = None if labels is not None else api.load_model(model, background=True)
    except EndoveilError as exc:
        fail(str(exc))
    failures = 0
    clashes = colliding_outputs(inputs, output, config)
    for path in inputs:
        if path in clashes:
            failures += 1
            print_error(f"{path}: same output names as {clashes[path]} in this run; not written")
            continue
        try:
            with frame_progress(err, enabled=not quiet) as bars:
                result = api.anonymize_video(
                    path,
                    output,
                    **config.as_options(),
                    model=classifier,
                    progress=bars.update,
                    stage=lambda name, p=path: bars.start(f"{name:6} {p.name}"),
                )
                bars.finish()
            _print_summary(result)
        except EndoveilError as exc:
            unloadable = isinstance(classifier, OnnxClassifier) and classifier.failed()
            if isinstance(exc, ModelError) and unloadable:
                fail(str(exc))  # it did not load: the same for every input
            failures += 1
            print_error(str(exc))
        except KeyboardInterrupt:
            fail("interrupted; no partial output was kept", EXIT_INTERRUPTED)
    if failures:
        raise typer.Exit(EXIT_ERROR)


def _print_summary(result: FileResult) -> None:
    labels = result.labels
    table = Table(title=result.input.name, show_header=False, title_justify="left")
    table.add_row("OOB segments", str(len(labels.segments)))
    for seg in labels.segments[:10]:
        table.add_row("", f"{seg.start_s:8.2f} s – {seg.end_s:8.2f} s  ({seg.frame_count} frames)")
    if len(labels.segments) > 10:
        table.add_row("", f"… and {len(labels.segments) - 10} more")
    table.add_row(
        "seconds anonymized", f"{labels.oob_seconds:.2f} of {labels.video.duration_s:.2f}"
    )
    if result.render is not None:
        table.add_row("mode / action", f"{result.mode} / {labels.extra['output']['action']}")
        table.add_row("in-body frames re-encoded", str(result.render.inbody_frames_reencoded))
        table.add_row("in-body seconds lost", f"{result.inbody_seconds_lost:.2f}")
    table.add_row("speed", f"{result.speed_x:.1f}× realtime ({result.elapsed_s:.1f} s)")
    for path in [*result.labels_paths, *([result.video_path] if result.video_path else [])]:
        table.add_row("wrote", str(path))
    for note in result.notes:
        table.add_row("note", note)
    out.print(table)


@app.command()
def verify(
    original: Annotated[Path, typer.Argument(help="The original video.")],
    anonymized: Annotated[Path, typer.Argument(help="The anonymized video.")],
    labels: Annotated[Path, typer.Argument(help="The labels JSON used to anonymize it.")],
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar.")] = False,
) -> None:
    """Re-decode an anonymized video: every OOB frame hidden, every in-body frame intact?"""
    try:
        with frame_progress(err, enabled=not quiet) as bars:
            bars.start(f"verify {anonymized.name}")
            report = api.verify(original, anonymized, labels, progress=bars.update)
            bars.finish()
    except EndoveilError as exc:
        fail(str(exc))
    for finding in report.findings:
        out.print(f"  {finding}", highlight=False)
    for problem in report.problems:
        out.print(f"  [red]✗[/] {problem}", highlight=False)
    if report.problem_count > len(report.problems):
        out.print(f"  … and {report.problem_count - len(report.problems)} more")
    kind = "cut" if report.cut else "in place"
    if report.reviewed_overrides:
        out.print(
            f"  reviewed overrides: {report.reviewed_overrides} frame(s) scored out of body "
            "were left visible by a person's review"
        )
    if report.ok:
        out.print(
            f"[green]OK[/] {anonymized}: {report.frames_checked} frames checked, "
            f"{report.oob_frames} out-of-body frames hidden ({kind})"
        )
        return
    fail(f"{anonymized}: verification failed ({report.summary()})", EXIT_FOUND)


@app.command()
def inspect(
    files: Annotated[list[Path], typer.Argument(help="Media files to inspect.")],
) -> None:
    """List whatever in a file could identify someone or something (tags, SEI, streams...).

    Every file is reported; identifying metadata anywhere exits 3 even if another file could
    not be read (1 only when nothing identifying was found but a file failed)."""
    found = failed = 0
    for path in files:
        try:
            findings = api.inspect(path)
        except EndoveilError as exc:
            print_error(str(exc))
            failed += 1
            continue
        identifying = [f for f in findings if f.severity == "identifying"]
        found += bool(identifying)
        status = "[red]identifying metadata[/]" if identifying else "[green]clean[/]"
        out.print(f"{path}: {status}", highlight=False)
        for finding in findings:
            out.print(f"  {finding}", highlight=False)
    if len(files) > 1:
        clean = len(files) - found - failed
        out.print(f"{len(files)} files: {found} identifying, {failed} unreadable, {clean} clean")
    if found:
        raise typer.Exit(EXIT_FOUND)
    if failed:
        raise typer.Exit(EXIT_ERROR)


def _register_extras() -> None:
    """Commands that live in their own modules."""
    from endoveil import cli_cases, cli_gui, cli_live, cli_train

    for module in (cli_live, cli_cases, cli_train, cli_gui):
        module.register(app)


_register_extras()


def main() -> None:
    """Console entry point."""
    interrupt_on_sigterm()
    try:
        app()
    except KeyboardInterrupt:
        print_error("interrupted")
        sys.exit(EXIT_INTERRUPTED)
