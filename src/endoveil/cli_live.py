"""``endoveil live``: anonymize a camera, capture card, stream or file in real time."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from endoveil.cli_common import EXIT_USAGE, ModelOption, err, fail
from endoveil.errors import EndoveilError

if TYPE_CHECKING:  # the live machinery loads when `endoveil live` runs, not with every command
    from endoveil.live.loop import LiveReport, LiveSession, LiveStatus
    from endoveil.live.sinks import Sink

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``live`` command to ``app``."""
    app.command(name="live")(live)


def live(
    source: Annotated[
        str,
        typer.Argument(
            help="Camera index (0) or device (/dev/video0), stream URL (rtsp://, srt://, "
            "rtmp://, udp://, http://), lavfi:SPEC, or a video file."
        ),
    ],
    record: Annotated[
        Path | None, typer.Option(help="Record the anonymized output to this MP4 (+ labels).")
    ] = None,
    push: Annotated[
        list[str] | None,
        typer.Option(help="Push to rtmp://, srt://, rtsp://, udp:// or tcp:// (repeatable)."),
    ] = None,
    http: Annotated[
        int | None,
        typer.Option(help="Browser preview on http://127.0.0.1:PORT/ (0: a free port)."),
    ] = None,
    window: Annotated[bool, typer.Option(help="Preview window (OpenCV with GUI).")] = False,
    virtual_camera: Annotated[
        bool, typer.Option(help="Publish as a virtual camera (pyvirtualcam).")
    ] = False,
    realtime: Annotated[
        bool, typer.Option(help="Play a file source at its own rate (like a camera).")
    ] = True,
    loop: Annotated[bool, typer.Option(help="Loop a file source.")] = False,
    action: Annotated[str, typer.Option(help="blur, pixelate or black.")] = "blur",
    threshold: Annotated[
        float | None, typer.Option(help="p(out of body) threshold [default: the model's].")
    ] = None,
    hold: Annotated[
        float, typer.Option(help="Seconds of in-body scores before the output turns clear.")
    ] = 2.0,
    delay: Annotated[
        int, typer.Option(help="Frames of look-ahead: more latency, earlier hiding.", min=0)
    ] = 0,
    max_lag: Annotated[
        float, typer.Option(help="A frame older than this (s) is not scored: hidden.")
    ] = 0.2,
    stall: Annotated[
        float, typer.Option(help="No frame for this long (s): paused card, fail closed.")
    ] = 0.5,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    record_preset: Annotated[str, typer.Option(help="libx264 preset of the recording.")] = (
        "superfast"
    ),
    force: Annotated[
        bool, typer.Option(help="Let the recording replace an existing video and labels.")
    ] = False,
    model: ModelOption = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Log warnings only.")] = False,
) -> None:
    """Anonymize a live source in real time; fails closed (blurred) when unsure or behind."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )
    from endoveil.detect.classifier import OnnxClassifier
    from endoveil.live.loop import LiveConfig, LiveSession
    from endoveil.live.sinks import RecordSink, recording_labels
    from endoveil.live.sources import open_source

    if action not in ("blur", "pixelate", "black"):
        fail("--action must be blur, pixelate or black", EXIT_USAGE)
    try:
        config = LiveConfig(
            action=action,  # type: ignore[arg-type]
            threshold=threshold,
            hold_s=hold,
            delay_frames=delay,
            max_lag_s=max_lag,
            stall_s=stall,
            duration_s=duration,
        )
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        classifier = OnnxClassifier(model)
        session_holder: list[LiveSession] = []
        # Outputs first: a recording that would replace a file is refused before the camera
        # or stream is opened.
        sinks = _sinks(
            record, push or [], http, window, virtual_camera, record_preset, force, session_holder
        )
        src = open_source(source, realtime=realtime, loop=loop)
    except (EndoveilError, OSError) as exc:
        fail(str(exc))
    session = LiveSession(src, classifier, sinks, config, on_status=_print_status)
    session_holder.append(session)

    stop = threading.Event()

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        err.print("stopping: finalizing outputs (Ctrl-C again to abort)")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        report = session.run(stop)
    except Exception as exc:  # the session has finalized its outputs; say what broke in a line
        logging.getLogger("endoveil.live").debug("live session failed", exc_info=True)
        fail(f"live session stopped: {exc}")
    finally:
        signal.signal(signal.SIGINT, previous)
    _print_report(report)
    if report.frames_captured == 0:
        fail(f"no frame received; last problem: {report.last_source_error or source}")
    failed = [name for name, stats in report.sinks.items() if stats.delivered == 0 and stats.errors]
    if failed:
        fail(f"no frame reached {', '.join(failed)}")
    unfinished = [f"{name}: {s.close_error}" for name, s in report.sinks.items() if s.close_error]
    if unfinished:
        fail(f"could not finish {'; '.join(unfinished)}")
    for sink in sinks:
        if isinstance(sink, RecordSink) and sink.placed is not None:
            err.print(f"recorded: {sink.placed} (+ {recording_labels(sink.placed).name})")


def _sinks(
    record: Path | None,
    push: list[str],
    http: int | None,
    window: bool,
    virtual_camera: bool,
    record_preset: str,
    force: bool,
    session_holder: list[LiveSession],
) -> list[Sink]:
    from endoveil.live.preview import HttpPreviewSink
    from endoveil.live.sinks import PushSink, RecordSink, VirtualCameraSink, WindowSink

    sinks: list[Sink] = []
    if record is not None:
        if not record.parent.is_dir():
            raise OSError(f"{record.parent}: output folder does not exist")
        sinks.append(RecordSink(record, preset=record_preset, overwrite=force))
    sinks.extend(PushSink(url) for url in push)
    if window:
        sinks.append(WindowSink())
    if virtual_camera:
        sinks.append(VirtualCameraSink())
    if http is not None or not sinks:

        def status() -> dict[str, object]:
            return session_holder[0].status.as_dict() if session_holder else {}

        preview = HttpPreviewSink(http or 0, status=status)
        err.print(f"preview: [bold]{preview.url}[/]")
        sinks.append(preview)
    return sinks


def _print_status(status: LiveStatus) -> None:
    logging.getLogger("endoveil.live").info(
        "%s · %.1f fps · +%.0f ms · %d frames · %d dropped",
        status.state,
        status.fps,
        status.latency_ms,
        status.frames_out,
        status.dropped,
    )


def _print_report(report: LiveReport) -> None:
    table = Table(title="live session", show_header=False, title_justify="left")
    table.add_row("duration", f"{report.duration_s:.1f} s")
    table.add_row("frames captured / out", f"{report.frames_captured} / {report.frames_out}")
    table.add_row("sustained fps", f"{report.fps:.1f}")
    table.add_row(
        "added latency p50 / p99",
        f"{report.latency_percentile(50):.1f} / {report.latency_percentile(99):.1f} ms",
    )
    table.add_row("frames hidden", str(report.frames_hidden))
    table.add_row("frames not scored (hidden)", str(report.frames_not_scored))
    table.add_row("dropped at capture", str(report.capture_dropped))
    table.add_row(
        "source failures / paused cards", f"{report.source_failures} / {report.paused_cards}"
    )
    for name, stats in report.sinks.items():
        table.add_row(
            name, f"{stats.delivered} delivered, {stats.dropped} dropped, {stats.failures} failures"
        )
    Console().print(table)
