"""The ``endoveil cases`` command: merge, de-identify and pseudonymize every case of an archive.

Thin: it parses options, finds the cases (showing what it ignored), calls `endoveil.run_cases`
and shows progress with rich. The console (the operator's terminal) shows case folder names so
failures can be found; nothing written into the output root does.

Exit codes: 0 every case done; 1 some case failed (listed); 2 wrong usage; 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from endoveil.cases.discover import DEFAULT_PATTERNS, Case, discover_cases
from endoveil.cases.mapping_log import (
    check_log_location,
    check_outside_output,
    default_log_path,
)
from endoveil.cases.pseudonym import PSEUDONYM_KINDS, SECRET_ENV, load_secret
from endoveil.cases.report import REPORT_JSON, REPORT_TEXT, BatchReport, CaseEntry, render_table
from endoveil.cli_common import (
    EXIT_ERROR,
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
)
from endoveil.errors import EndoveilError

__all__ = ["cases_command", "default_log_path", "register"]

console = Console()


def register(app: typer.Typer) -> None:
    """Add ``cases`` to ``app``."""
    app.command("cases")(cases_command)


def cases_command(
    input_root: Annotated[
        Path, typer.Argument(help="Archive: one sub-folder of segments per case.")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Output root (shared; pseudonyms only).")
    ],
    log: Annotated[
        Path | None,
        typer.Option(
            help="Mapping log CSV, outside the output root "
            "[default: ~/.local/share/endoveil/mapping-log.csv]."
        ),
    ] = None,
    pattern: Annotated[
        list[str] | None,
        typer.Option(help="Segment file pattern, repeatable (default: common video types)."),
    ] = None,
    group_by: Annotated[
        str | None,
        typer.Option(
            help="Regex grouping files lying directly in INPUT_ROOT into cases "
            "(by its 'case' group or first group)."
        ),
    ] = None,
    pseudonym: Annotated[
        str, typer.Option(help="uuid: random UUID4; hmac: keyed, the same on every run.")
    ] = "uuid",
    secret_file: Annotated[
        Path | None,
        typer.Option(help=f"File holding the HMAC secret (else ${SECRET_ENV})."),
    ] = None,
    mode: ModeOption = "exact",
    action: ActionOption = "blur",
    threshold: ThresholdOption = None,
    margin: MarginOption = 1.0,
    smoothing: SmoothingOption = 1.0,
    sample_every: SampleEveryOption = None,
    keep_audio: KeepAudioOption = False,
    preset: PresetOption = None,
    crf: CrfOption = 18,
    model: ModelOption = None,
    verify: Annotated[
        bool, typer.Option(help="Re-decode every output and prove it before calling it done.")
    ] = False,
    workers: Annotated[int, typer.Option(help="Cases run in parallel processes.", min=1)] = 1,
    cluster: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address (tcp://host:8786): run the cases there."),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option(help="Run again the cases that failed in an earlier run.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Merge each case's segments, anonymize it, name it by a pseudonym; resumable."""
    from endoveil.api import run_cases

    if pseudonym not in PSEUDONYM_KINDS:
        fail(f"--pseudonym must be one of {', '.join(PSEUDONYM_KINDS)}", EXIT_USAGE)
    config = pipeline_config(
        action=action,
        mode=mode,
        threshold=threshold,
        margin=margin,
        smoothing=smoothing,
        sample_every=sample_every,
        keep_audio=keep_audio,
        preset=preset,
        crf=crf,
    )
    log = log or default_log_path()
    secret = None
    try:
        if pseudonym == "hmac":
            secret = load_secret(secret_file)
            if secret_file is not None:
                check_outside_output(secret_file, output, "the pseudonym secret")
        check_log_location(log, output)
        found = discover_cases(input_root, patterns=pattern or DEFAULT_PATTERNS, group_by=group_by)
    except (ValueError, NotADirectoryError, EndoveilError) as exc:
        fail(str(exc), EXIT_USAGE)
    for path, why in found.ignored:
        err.print(f"[yellow]ignored:[/] {escape(str(path))}: {why}", highlight=False)
    if not found.cases:
        fail(f"{input_root}: no case found (one sub-folder of videos per case)", EXIT_USAGE)
    if cluster is not None:
        from endoveil.cases.cluster import import_distributed

        try:
            import_distributed()
        except ImportError as exc:
            fail(str(exc), EXIT_USAGE)

    options = config.as_options()
    for unused in ("labels", "labels_only", "labels_format", "force"):
        options.pop(unused)
    bars = _Bars(enabled=not quiet)
    try:
        with bars:
            report = run_cases(
                input_root,
                output,
                log=log,
                pseudonym=pseudonym,
                secret=secret,
                model=model,
                verify=verify,
                workers=workers,
                retry_failed=retry_failed,
                cluster=cluster,
                observer=bars,
                cases=found.cases,
                **options,  # type: ignore[arg-type]
            )
    except KeyboardInterrupt:
        fail("interrupted; unfinished cases are redone on the next run", EXIT_INTERRUPTED)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    except EndoveilError as exc:
        fail(str(exc), EXIT_ERROR)
    _print_summary(report, found.cases, output)
    if report.failed or any(e.detail.startswith("failed before") for e in report.entries):
        raise typer.Exit(EXIT_ERROR)


class _Bars:
    """One bar for the batch, one per running case; a line per finished case."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            disable=not enabled,
        )
        self.overall: TaskID | None = None
        self.tasks: dict[int, TaskID] = {}
        self.total = 0

    def __enter__(self) -> _Bars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def batch_started(self, cases: int, to_run: int) -> None:
        self.total = cases
        self.overall = self.progress.add_task(f"cases ({cases - to_run} done before)", total=to_run)

    def case_progress(self, index: int, stage: str, done: int, total: int) -> None:
        label = f"  case {index}/{self.total} {stage:6}"
        task = self.tasks.get(index)
        if task is None:
            self.tasks[index] = self.progress.add_task(label, total=total, completed=done)
        else:
            self.progress.update(task, description=label, completed=done, total=total)

    def case_finished(self, entry: CaseEntry, case: Case) -> None:
        task = self.tasks.pop(entry.index, None)
        if task is not None:
            self.progress.remove_task(task)
        if entry.status != "skipped" and self.overall is not None:
            self.progress.advance(self.overall)
        mark = {"done": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[dim]-[/]"}
        if self.enabled or entry.status == "failed":
            err.print(
                f"{mark[entry.status]} case {entry.index}/{self.total} "
                f"{escape(case.case_id)} → {entry.pseudonym}: {escape(entry.detail)}",
                highlight=False,
                soft_wrap=True,
            )


def _print_summary(report: BatchReport, cases: list[Case], output: Path) -> None:
    console.print(render_table(report), highlight=False, soft_wrap=True, end="")
    console.print(f"report: {output / REPORT_JSON}, {output / REPORT_TEXT}", highlight=False)
    for entry in report.entries:
        if entry.status == "failed" or entry.detail.startswith("failed before"):
            err.print(
                f"[bold red]error:[/] case {entry.index} "
                f"{escape(cases[entry.index - 1].case_id)}: {escape(entry.detail)}",
                highlight=False,
                soft_wrap=True,
            )
