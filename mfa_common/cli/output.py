"""What the tools print: consoles (stdout for results, stderr for messages and progress), QR
codes, owner-only files, the batch progress bar and summary, JSON documents."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console

from .._files import StateFile
from ..qr import render_qr

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ..batch import BatchProgress, BatchSummary

__all__ = [
    "BatchProgressDisplay",
    "emit_json",
    "print_summary",
    "render_qr",
    "stderr_console",
    "stdout_console",
    "write_private_file",
]

# Width given to rich when output is not a terminal: tables fit, text is never wrapped.
_PIPE_WIDTH = 200


def stdout_console() -> Console:
    """Results (tables, the QR code): stdout, no syntax highlighting. Not a terminal: lines are
    never wrapped (a pipe or a log file gets whole messages) and tables get room."""
    return _console(sys.stdout)


def stderr_console() -> Console:
    """Messages and progress: stderr, so stdout stays clean for ``--json``."""
    return _console(sys.stderr)


def _console(stream: IO[str]) -> Console:
    terminal = stream.isatty()
    return Console(
        file=stream,
        highlight=False,
        soft_wrap=not terminal,
        width=None if terminal else _PIPE_WIDTH,
    )


def write_private_file(path: Path, data: bytes, *, replace: bool = False, what: str = "the file") -> None:
    """Write ``data`` to a file only its owner can read (0600), never through a link.

    A new file by default (:class:`FileExistsError` when anything is at the path);
    ``replace=True`` swaps the file atomically (written beside it, then renamed), so a reader
    never sees half of it. Other failures raise a
    :class:`~mfa_common.errors.StateFileError` naming the path (``what`` names the file).
    """
    file = StateFile(path, what=what)
    if replace:
        file.replace(data)
    else:
        file.create(data)


class BatchProgressDisplay:
    """A live rich progress bar for :func:`mfa_common.batch.run_batch`; pass it as ``on_progress``.

    ``total`` (when known) gives a bar and an ETA; for a streamed source the bar shows counts.
    Use as a context manager around ``run_batch``. Disabled (``enabled=False``) it does nothing,
    which is what ``--json`` wants.
    """

    def __init__(
        self,
        description: str,
        *,
        total: int | None = None,
        enabled: bool = True,
        console: Console | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.enabled = enabled
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.last: BatchProgress | None = None

    def __enter__(self) -> BatchProgressDisplay:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.fields[of]}"),
                TextColumn(
                    "done {task.fields[done]}  failed {task.fields[failed]}  "
                    "unknown {task.fields[unknown]}  skipped {task.fields[skipped]}"
                ),
                TextColumn("{task.fields[rate]:.0f}/s"),
                TimeElapsedColumn(),
                console=self._console or stderr_console(),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self.description,
                total=self.total,
                of=self.total if self.total is not None else "?",
                done=0,
                failed=0,
                unknown=0,
                skipped=0,
                rate=0.0,
            )
        return self

    def __call__(self, progress: BatchProgress) -> None:
        self.last = progress
        if self._progress is None or self._task is None:
            return
        self._progress.update(
            self._task,
            completed=progress.finished,
            done=progress.done,
            failed=progress.failed,
            unknown=progress.unknown,
            skipped=progress.skipped,
            rate=progress.rate,
            of=self.total if self.total is not None else (progress.seen if progress.final else "?"),
        )

    def __exit__(self, kind: object, *exc: object) -> None:
        if self._progress is not None:
            # Stopped by an error: the bar goes, and the one-line error stands alone.
            self._progress.live.transient = kind is not None and kind is not KeyboardInterrupt
            self._progress.refresh()
            self._progress.stop()
            self._progress = None


def print_summary(console: Console, summary: BatchSummary, *, title: str) -> None:
    """The batch summary as a table, then failures by reason (secret-free by construction)."""
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for name, value in (
        ("total", summary.total),
        ("done", summary.done),
        ("failed", summary.failed),
        ("skipped", summary.skipped),
        ("unknown", summary.unknown),
        ("elapsed", f"{summary.elapsed:.2f} s"),
        ("throughput", f"{summary.throughput:.1f}/s"),
    ):
        table.add_row(name, str(value))
    if summary.stopped:
        table.add_row("stopped", summary.stopped)
    console.print(table)
    if summary.failures_by_reason:
        failures = Table(title="Failures by reason", title_justify="left")
        failures.add_column("reason")
        failures.add_column("count", justify="right")
        failures.add_column("examples")
        failures.add_column("message")
        for reason, group in sorted(summary.failures_by_reason.items(), key=lambda kv: -kv[1].count):
            failures.add_row(reason, str(group.count), ", ".join(group.example_keys), group.example_message)
        console.print(failures)
    if summary.skipped_by_reason:
        skipped = Table(title="Skipped by reason", title_justify="left")
        skipped.add_column("reason")
        skipped.add_column("count", justify="right")
        for reason, count in sorted(summary.skipped_by_reason.items(), key=lambda kv: -kv[1]):
            skipped.add_row(reason, str(count))
        console.print(skipped)


def emit_json(data: Any, out: IO[str] | None = None) -> None:
    """One JSON document on stdout (the only thing a ``--json`` command writes there)."""
    stream = out or sys.stdout
    stream.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    stream.flush()
