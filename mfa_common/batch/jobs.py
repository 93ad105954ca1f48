"""Batch jobs: a change decided per item by a read-only check, then applied, journaled and resumable.

A :class:`BatchJob` is what an administration job over many users is, whatever the API: a stream
of items (CSV rows, or a user listing), a stable secret-free key per item (the journal's
identity), a read-only ``check`` that decides what would change (a :class:`PlannedChange`) or
why the item is left alone (a :class:`~mfa_common.batch.Skip`, or a :class:`PlannedSkip` that
also says whom and from which state), and a ``verify`` that settles a write whose answer was
lost. :func:`run_batch_job` runs one through :func:`~mfa_common.batch.run_batch` (journaled,
resumable, rate-limited) or, with ``dry_run=True``, runs only the checks and returns the
planned changes. The command-line tools run the same jobs as batch commands
(``mfa_common.cli.BatchJobAdapter``): dry run, ``--plan FILE`` and ``apply FILE``.

The jobs themselves are in each API's ``jobs`` module (:mod:`quatrix_async.jobs`,
:mod:`metalcloud_async.jobs`). :func:`read_csv` reads their CSV files: checked whole, a bad row
refused with its line (:class:`CsvRowError`) before anything is sent.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import attrs

from ..errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from .journal import Journal
from .outcome import Skip, is_outcome_unknown
from .runner import run_batch
from .summary import BatchProgress, BatchSummary

__all__ = [
    "BatchJob",
    "BatchJobResult",
    "CsvCells",
    "CsvRowError",
    "PlannedChange",
    "PlannedSkip",
    "read_csv",
    "run_batch_job",
]

T = TypeVar("T")

# A batch that meets one of these stops: every further item would fail the same way.
_STOP_ON = (AuthenticationError, PermissionDeniedError)


@attrs.frozen
class PlannedChange:
    """A change a check decided on.

    Attributes:
        key: The target's id (the journal's key).
        action: What the change does, in a few words (``"reset 2FA"``).
        who: Whom it is about, for people (an e-mail); may be empty.
        before: The target's state the change is planned from (JSON values).
        apply: Makes the change; raises :class:`~mfa_common.batch.Skip` when the server says it
            is not needed after all.
    """

    key: str
    action: str
    who: str
    before: Mapping[str, Any]
    apply: Callable[[], Awaitable[None]] = attrs.field(repr=False, eq=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what a dry run lists; the tools' ``--dry-run --json`` has the same)."""
        return {"id": self.key, "email": self.who, "action": self.action, "before": dict(self.before)}


class PlannedSkip(Skip):
    """A check's decision to leave a target alone, saying whom and from which state.

    Applying a saved plan compares that state with the plan's first, so a target whose state
    moved is reported as changed since the plan rather than by this reason.

    Args:
        reason: Why (secret-free, as :class:`~mfa_common.batch.Skip`'s).
        who: Whom it is about, for people (an e-mail).
        before: The target's state, where the check read it (in the form of
            :attr:`PlannedChange.before`).
    """

    def __init__(self, reason: str, *, who: str = "", before: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.who = who
        self.before = before


@attrs.frozen
class BatchJob(Generic[T]):
    """One batch job (see the module docstring).

    Attributes:
        name: The action (``"reset 2FA"``: the same words in every summary).
        items: The targets (any iterable or async iterable).
        key: An item's identity (stable, secret-free: the journal's key).
        check: The read-only decision for an item: a :class:`PlannedChange`, or a
            :class:`~mfa_common.batch.Skip` saying why not.
        verify: ``verify(item, before)``: whether a write whose answer was lost took effect
            (True: it did; False: it did not, safe to repeat; None: cannot tell). ``before`` is
            the target's state planned before the first attempt, or None where this process did
            not plan it (a run resumed from a journal).
        unit: Names the items (``"users"``).
        start: Reads once what every item needs (the caller's own account, a listing) before
            the first item.
        total: The number of items once started, when known.
        from_key: Rebuilds an item from its key, for a saved plan that lists keys only (without
            it, the key is looked up among ``items``, which must then be readable again, as
            :func:`read_csv`'s are).
    """

    name: str
    items: Iterable[T] | AsyncIterable[T]
    key: Callable[[T], str]
    check: Callable[[T], Awaitable[PlannedChange | Skip]]
    verify: Callable[[T, Mapping[str, Any] | None], Awaitable[bool | None]]
    unit: str = "users"
    start: Callable[[], Awaitable[None]] | None = None
    total: Callable[[], int | None] | None = None
    from_key: Callable[[str], T] | None = None

    async def decide(self, item: T) -> PlannedChange | Skip:
        """``check(item)``, with a :class:`~mfa_common.batch.Skip` it raises (from a lookup:
        no such user) returned like one it returns.

        Args:
            item: One of the job's items.

        Returns:
            The planned change, or why the item is left alone.
        """
        try:
            return await self.check(item)
        except Skip as skip:
            return skip


@attrs.frozen
class BatchJobResult:
    """The summary of a run, and the planned changes of a dry run.

    Attributes:
        name: The job's action.
        summary: The run's counts and failure reasons.
        dry_run: Whether only the checks ran.
        planned: A dry run's changes, each as :meth:`PlannedChange.as_dict` gives it, sorted by
            key (empty for a run that applied them).
    """

    name: str
    summary: BatchSummary
    dry_run: bool
    planned: list[dict[str, Any]] = attrs.Factory(list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the tools' ``--json`` output): the summary's fields with the action,
        and for a dry run the planned changes."""
        out: dict[str, Any] = {"action": self.name, "dry_run": self.dry_run, "ok": self.summary.ok}
        out.update(self.summary.as_dict())
        if self.dry_run:
            out["would_change"] = self.planned
            out["count"] = len(self.planned)
        return out


async def run_batch_job(
    job: BatchJob[T],
    *,
    dry_run: bool = False,
    concurrency: int = 10,
    rate: float | None = None,
    journal: str | os.PathLike[str] | None = None,
    on_progress: Callable[[BatchProgress], object] | None = None,
) -> BatchJobResult:
    """Run ``job``: check each item and apply its change. Stops early on a refused credential
    (an :class:`~mfa_common.errors.AuthenticationError` or a
    :class:`~mfa_common.errors.PermissionDeniedError`: every further item would fail alike).

    A write whose answer is lost is verified at once against the state its check planned from;
    on a run resumed with the same ``journal``, ``verify`` gets no such state (``before`` is
    None) and a job that cannot tell without it leaves the item unknown rather than repeat it.

    Args:
        job: The job.
        dry_run: Only check each item and collect the plan (no journal is written then).
        concurrency: How many items run at once.
        rate: At most this many item starts per second (None: no limit).
        journal: The journal's path: a re-run with the same path resumes (see
            :func:`run_batch`).
        on_progress: Given a :class:`BatchProgress` now and then, as :func:`run_batch` does.

    Returns:
        The summary, and a dry run's planned changes.

    Raises:
        JournalLockedError: Another run holds the journal.
        JournalMismatchError: The journal was made for another run.
    """
    if job.start is not None:
        await job.start()
    planned: list[dict[str, Any]] = []
    # The planned state of each write whose outcome is in doubt, until it is verified.
    in_doubt: dict[str, Mapping[str, Any]] = {}

    async def operation(item: T) -> Skip | None:
        decided = await job.decide(item)
        if isinstance(decided, Skip):
            return decided
        if dry_run:
            planned.append(decided.as_dict())
            return None
        key = job.key(item)
        in_doubt[key] = decided.before
        try:
            await decided.apply()
        except Exception as exc:
            if not is_outcome_unknown(exc):
                in_doubt.pop(key, None)
            raise
        in_doubt.pop(key, None)
        return None

    async def verify(item: T) -> bool | None:
        return await job.verify(item, in_doubt.pop(job.key(item), None))

    summary = await run_batch(
        job.items,
        operation,
        key=job.key,
        concurrency=concurrency,
        rate=rate,
        journal=Journal(journal) if journal is not None and not dry_run else None,
        on_progress=on_progress,
        verify_unknown=None if dry_run else verify,
        stop_on=_STOP_ON,
    )
    planned.sort(key=lambda change: str(change["id"]))
    return BatchJobResult(job.name, summary, dry_run, planned)


# ---------------------------------------------------------------------------- CSV


class CsvRowError(InvalidInputError):
    """A CSV row that cannot become an item. The whole file is checked before anything is sent.

    Args:
        path: The file (its name is in the message).
        line: The row's line, 1-based (the header is line 1); kept as ``line``.
        message: Why the row cannot be used (never a cell holding a secret).
    """

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{os.path.basename(path)} line {line}: {message}")
        self.line = line


class CsvCells(dict[str, str]):
    """One row: column name -> stripped cell. Names are compared ignoring case and punctuation
    (``E-mail``, ``email`` and ``EMAIL`` are one column): look a cell up by
    :meth:`column` of its name, or with :meth:`required`.

    Args:
        cells: Each column, in the form :meth:`column` gives, with its stripped cell.
        headers: Each column, in that form, with its name as the file writes it.
    """

    def __init__(self, cells: Mapping[str, str], headers: Mapping[str, str]) -> None:
        super().__init__(cells)
        self.headers = dict(headers)

    @staticmethod
    def column(name: str) -> str:
        """The form a column name is compared in (the keys of this dict).

        Args:
            name: A column's name, as written anywhere.
        """
        return re.sub(r"[^a-z0-9]", "", name.lower())

    def original(self, column: str) -> str:
        """The column's name as the file writes it.

        Args:
            column: The column, in the form :meth:`column` gives.
        """
        return self.headers.get(column, column)

    def required(self, name: str) -> str:
        """The cell of column ``name``.

        Args:
            name: The column's name, as written anywhere.

        Raises:
            ValueError: The cell is empty or the column missing (:func:`read_csv` reports it
                with the line).
        """
        value = self.get(self.column(name), "")
        if not value:
            raise ValueError(f"column {name!r} is empty or missing")
        return value


class _CsvSource(Generic[T]):
    """Rows of a CSV file as items, streamed; :meth:`validate` reads the whole file once first
    so that a bad row is reported before any write."""

    def __init__(self, path: str | os.PathLike[str], parse: Callable[[CsvCells], T]) -> None:
        self.path = os.fspath(path)
        self.parse = parse

    def _rows(self) -> Iterator[tuple[int, T]]:
        try:
            handle = open(self.path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InvalidInputError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        with handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                raise CsvRowError(self.path, 1, "the file has no header row")
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise CsvRowError(self.path, line, "more values than header columns")
                named = [k for k in row if k is not None]
                cells = CsvCells(
                    {CsvCells.column(k): (row[k] or "").strip() for k in named},
                    {CsvCells.column(k): k for k in named},
                )
                if not any(cells.values()):
                    continue
                try:
                    yield line, self.parse(cells)
                except (ValueError, InvalidInputError) as exc:
                    raise CsvRowError(self.path, line, str(exc)) from None

    def validate(self) -> int:
        """The number of items; raises :class:`CsvRowError` on the first bad row, or on a row
        whose ``key`` (its journal identity) an earlier row has with another ``change`` (what
        the write sets, for rows whose key does not say it all): the batch runs one item per
        key, so which of the two values would win must not be left to chance."""
        first_seen: dict[str, tuple[int, bytes]] = {}  # key -> (line, digest of its change)
        count = 0
        for line, item in self._rows():
            count += 1
            key, change = getattr(item, "key", None), getattr(item, "change", None)
            if not isinstance(key, str) or change is None:
                continue
            digest = hashlib.blake2b(repr(change).encode(), digest_size=16).digest()
            seen = first_seen.setdefault(key, (line, digest))
            if seen[1] != digest:
                raise CsvRowError(
                    self.path,
                    line,
                    f"{key} is on line {seen[0]} too, with other values: give it one row",
                )
        return count

    def __iter__(self) -> Iterator[T]:
        for _, item in self._rows():
            yield item


def read_csv(path: str | os.PathLike[str], parse: Callable[[CsvCells], T]) -> Iterable[T]:
    """The items of a CSV file, one per row that is not blank, checked whole before this
    returns; the items themselves are read lazily, and may be read again. A row may repeat an
    earlier row's ``key`` only with the same ``change`` (attributes of the items, where they
    have them).

    Args:
        path: The file (UTF-8, a byte-order mark allowed; a header row first).
        parse: Turns a row's :class:`CsvCells` into an item, raising ValueError (or
            InvalidInputError) for a bad row.

    Returns:
        The items, readable any number of times.

    Raises:
        CsvRowError: A bad row, named by its line.
        InvalidInputError: A file that cannot be read or has no rows.
    """
    source = _CsvSource(path, parse)
    if source.validate() == 0:
        raise InvalidInputError(f"{os.path.basename(source.path)} has no rows")
    return source
