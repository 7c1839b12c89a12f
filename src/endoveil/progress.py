"""Rich progress bars for long work: frames done / total, frames per second, time left."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["FrameProgress", "frame_progress"]


class _FpsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:6.0f} fps" if speed else "    - fps", style="cyan")


class FrameProgress:
    """One bar per stage of one file; ``update`` is the pipeline's progress callback."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._label = ""

    def start(self, label: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, visible=True)
            self._progress.stop_task(self._task)
        self._label = label
        self._task = self._progress.add_task(label, total=None)

    def update(self, done: int, total: int) -> None:
        if self._task is None:
            self.start(self._label or "working")
        assert self._task is not None
        self._progress.update(self._task, completed=done, total=total)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.stop_task(self._task)
            self._task = None


@contextmanager
def frame_progress(console: Console, *, enabled: bool = True) -> Iterator[FrameProgress]:
    """A live progress display on ``console`` (hidden when not enabled or not a terminal)."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        _FpsColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )
    with progress:
        yield FrameProgress(progress)
