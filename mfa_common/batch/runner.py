"""``run_batch``: stream items through an async operation with bounded concurrency."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from ..errors import InvalidInputError
from ..replay_guard import StepRegistry, using_step_registry
from ..replay_state import shared_step_registry
from .journal import Journal, JournalWriter
from .outcome import OUTCOME_UNKNOWN, ItemState, Skip, describe_failure, is_outcome_unknown
from .rate_limit import RateLimiter
from .summary import BatchProgress, BatchSummary, FailureReason

__all__ = ["DEFAULT_CONCURRENCY", "run_batch"]

T = TypeVar("T")

DEFAULT_CONCURRENCY = 50
DEFAULT_PROGRESS_INTERVAL = 0.5
# Example item keys kept per failure reason (the summary stays small for any batch size).
DEFAULT_MAX_EXAMPLES = 5
# Distinct failure reasons kept; any further reason is counted under "other".
MAX_FAILURE_REASONS = 50
_OTHER_REASON = "other"
#: The skip reason of a key met again in the same source (the first occurrence decides).
DUPLICATE_KEY = "duplicate key (already in this batch)"
# A worker yields to the event loop at least once per this many items.
_CHECKPOINT_EVERY = 8

StopOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


def _default_key(item: object) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, int) and not isinstance(item, bool):
        return str(item)
    raise InvalidInputError(
        f"items of type {type(item).__name__} need key=: pass a function returning a stable, "
        "secret-free identity (a user id or e-mail address)"
    )


class _Group:
    __slots__ = ("count", "example_keys", "example_message")

    def __init__(self, message: str) -> None:
        self.count = 0
        self.example_keys: list[str] = []
        self.example_message = message


class _Source(Generic[T]):
    """Hands items to the workers one at a time, from a sync or an async iterable."""

    def __init__(self, items: Iterable[T] | AsyncIterable[T]) -> None:
        self._sync: Iterator[T] | None = None
        self._async: AsyncIterator[T] | None = None
        if isinstance(items, AsyncIterable):
            self._async = items.__aiter__()
        elif isinstance(items, Iterable):
            self._sync = iter(items)
        else:
            raise InvalidInputError("items must be an iterable or an async iterable")
        self._lock = anyio.Lock()
        self.exhausted = False

    async def next(self) -> tuple[bool, T | None]:
        """``(True, item)`` or ``(False, None)`` once the source is exhausted."""
        if self.exhausted:
            return False, None
        if self._sync is not None:
            try:
                return True, next(self._sync)
            except StopIteration:
                self.exhausted = True
                return False, None
        assert self._async is not None
        # An async generator refuses a second __anext__ while one is pending: one at a time.
        async with self._lock:
            if self.exhausted:
                return False, None
            try:
                return True, await self._async.__anext__()
            except StopAsyncIteration:
                self.exhausted = True
                return False, None

    async def aclose(self) -> None:
        """Close an async generator left half-consumed (an early stop), so it is not leaked."""
        if self._async is None or self.exhausted:
            return
        aclose = getattr(self._async, "aclose", None)
        if aclose is None:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(1.0), contextlib.suppress(Exception):
            await aclose()


class _Run(Generic[T]):
    """The state of one batch: counters, failure groups, the open journal."""

    def __init__(
        self,
        operation: Callable[[T], Awaitable[Any]],
        *,
        key: Callable[[T], str] | None,
        journaled: bool,
        limiter: RateLimiter | None,
        verify_unknown: Callable[[T], Awaitable[bool | None]] | None,
        retry_unknown: bool,
        outcome_unknown: Callable[[BaseException], bool],
        stop_on: Callable[[BaseException], bool] | None,
        max_examples: int,
    ) -> None:
        self.operation = operation
        self.key = key
        self.journaled = journaled
        self.limiter = limiter
        self.verify_unknown = verify_unknown
        self.retry_unknown = retry_unknown
        self.outcome_unknown = outcome_unknown
        self.stop_on = stop_on
        self.max_examples = max_examples
        self.writer: JournalWriter | None = None
        self.prior: dict[str, ItemState] = {}
        # With a journal, every key met so far, so that each runs only once (one entry per
        # distinct key, as the journal's own state on a resume); without one, memory stays flat.
        self.keys_seen: set[str] | None = set() if journaled else None
        self.seen = self.done = self.failed = self.skipped = self.unknown = self.in_flight = 0
        self.failures: dict[str, _Group] = {}
        self.skipped_by_reason: dict[str, int] = {}
        self.stopping = False
        self.stopped: str | None = None
        self.error: BaseException | None = None
        self.progress_broken = False
        self.started_at = anyio.current_time()

    # ----------------------------------------------------------------- bookkeeping

    def _fail(self, key: str, kind: str, message: str, *, unknown: bool = False) -> None:
        if unknown:
            self.unknown += 1
            kind = OUTCOME_UNKNOWN
        else:
            self.failed += 1
        group = self.failures.get(kind)
        if group is None:
            if len(self.failures) >= MAX_FAILURE_REASONS:
                kind = _OTHER_REASON
                group = self.failures.get(kind)
            if group is None:
                group = self.failures[kind] = _Group(message)
        group.count += 1
        if len(group.example_keys) < self.max_examples:
            group.example_keys.append(key)

    def _skip(self, reason: str) -> None:
        self.skipped += 1
        self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + 1

    def _journal(
        self, key: str, state: ItemState, reason: str | None = None, *, unknown: bool = False
    ) -> None:
        if self.writer is not None:
            self.writer.finished(key, state, reason, unknown=unknown)

    def stop(self, reason: str) -> None:
        """Start no new item; the ones in flight finish normally."""
        if not self.stopping:
            self.stopping = True
            self.stopped = reason

    def progress(self, *, final: bool = False) -> BatchProgress:
        elapsed = anyio.current_time() - self.started_at
        finished = self.done + self.failed + self.skipped + self.unknown
        return BatchProgress(
            done=self.done,
            failed=self.failed,
            skipped=self.skipped,
            unknown=self.unknown,
            in_flight=self.in_flight,
            seen=self.seen,
            elapsed=elapsed,
            rate=finished / elapsed if elapsed > 0 else 0.0,
            final=final,
        )

    def summary(self) -> BatchSummary:
        elapsed = anyio.current_time() - self.started_at
        total = self.done + self.failed + self.skipped + self.unknown
        return BatchSummary(
            total=total,
            done=self.done,
            failed=self.failed,
            skipped=self.skipped,
            unknown=self.unknown,
            failures_by_reason={
                reason: FailureReason(reason, g.count, tuple(g.example_keys), g.example_message)
                for reason, g in self.failures.items()
            },
            skipped_by_reason=dict(self.skipped_by_reason),
            elapsed=elapsed,
            throughput=total / elapsed if elapsed > 0 else 0.0,
            stopped=self.stopped,
        )

    # ----------------------------------------------------------------- one item

    async def _verify(self, item: T) -> tuple[bool | None, str]:
        """Ask ``verify_unknown`` whether an earlier, interrupted write was applied."""
        if self.verify_unknown is None:
            return None, OUTCOME_UNKNOWN
        if self.limiter is not None:
            await self.limiter.acquire()
        try:
            verdict = await self.verify_unknown(item)
        except Exception as exc:
            return None, f"{OUTCOME_UNKNOWN} (verification failed: {describe_failure(exc)[0]})"
        if verdict is None:
            return None, OUTCOME_UNKNOWN
        return bool(verdict), OUTCOME_UNKNOWN

    async def process(self, item: T, index: int) -> None:
        positional = False
        if self.key is None:
            try:
                key = _default_key(item)
            except InvalidInputError:
                if self.journaled:
                    raise  # a programming error: no stable identity to journal
                key = f"#{index}"
                positional = True
        else:
            try:
                key = str(self.key(item))
            except Exception as exc:
                kind, message = describe_failure(exc)
                self._fail(f"#{index}", kind, message)
                return

        if self.keys_seen is not None and not positional:
            if key in self.keys_seen:
                self._skip(DUPLICATE_KEY)
                return
            self.keys_seen.add(key)
        prior = self.prior.pop(key, None) if self.prior else None
        if prior is ItemState.DONE:
            self._skip("already done (journal)")
            return
        if prior is ItemState.SKIPPED:
            self._skip("already skipped (journal)")
            return
        if prior is ItemState.UNKNOWN:
            verdict, message = await self._verify(item)
            if verdict is True:
                self._journal(key, ItemState.DONE, "verified")
                self.done += 1
                return
            if verdict is None and not self.retry_unknown:
                self._journal(key, ItemState.FAILED, message, unknown=True)
                self._fail(key, OUTCOME_UNKNOWN, message, unknown=True)
                return
            # False (not applied) or retry_unknown: safe to run it again.

        if self.limiter is not None:
            await self.limiter.acquire()
        if self.writer is not None:
            self.writer.started(key)
        self.in_flight += 1
        try:
            result = await self.operation(item)
        except Skip as signal:
            self._journal(key, ItemState.SKIPPED, signal.reason)
            self._skip(signal.reason)
        except Exception as exc:
            await self._failed(item, key, exc)
        else:
            if isinstance(result, Skip) or result is Skip:
                reason = result.reason if isinstance(result, Skip) else "skipped"
                self._journal(key, ItemState.SKIPPED, reason)
                self._skip(reason)
            else:
                self._journal(key, ItemState.DONE)
                self.done += 1
        finally:
            self.in_flight -= 1

    async def _failed(self, item: T, key: str, exc: Exception) -> None:
        kind, message = describe_failure(exc)
        if self.outcome_unknown(exc):
            verdict, _ = await self._verify(item)
            if verdict is True:
                self._journal(key, ItemState.DONE, "verified")
                self.done += 1
                return
            if verdict is None:
                message = f"{OUTCOME_UNKNOWN} ({message})"
                self._journal(key, ItemState.FAILED, message, unknown=True)
                self._fail(key, OUTCOME_UNKNOWN, message, unknown=True)
                self._check_stop(exc, kind)
                return
        self._journal(key, ItemState.FAILED, message)
        self._fail(key, kind, message)
        self._check_stop(exc, kind)

    def _check_stop(self, exc: Exception, kind: str) -> None:
        if self.stop_on is not None and self.stop_on(exc):
            self.stop(f"stop_on matched {kind}")

    # ----------------------------------------------------------------- workers

    async def worker(self, source: _Source[T], workers: anyio.CancelScope) -> None:
        since_checkpoint = 0
        try:
            while not self.stopping:
                try:
                    more, item = await source.next()
                except Exception as exc:  # the source itself broke: finish what runs, then raise
                    if self.error is None:
                        self.error = exc
                    self.stop(f"the source raised {type(exc).__name__}")
                    return
                if not more:
                    return
                self.seen += 1
                await self.process(item, self.seen)  # type: ignore[arg-type]
                # Operations that never suspend (or skipped items) must still let cancellation
                # and progress in; every few items is enough and keeps the per-item cost low.
                since_checkpoint += 1
                if since_checkpoint >= _CHECKPOINT_EVERY:
                    since_checkpoint = 0
                    await anyio.lowlevel.checkpoint()
        except Exception as exc:  # journal failure or a programming error: stop everything now
            if self.error is None:
                self.error = exc
            self.stopping = True
            workers.cancel()


async def run_batch(
    items: Iterable[T] | AsyncIterable[T],
    operation: Callable[[T], Awaitable[Any]],
    *,
    key: Callable[[T], str] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    rate: float | RateLimiter | None = None,
    journal: Journal | str | os.PathLike[str] | None = None,
    on_progress: Callable[[BatchProgress], object] | None = None,
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    verify_unknown: Callable[[T], Awaitable[bool | None]] | None = None,
    retry_unknown: bool = False,
    stop_on: StopOn | None = None,
    outcome_unknown: Callable[[BaseException], bool] = is_outcome_unknown,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    step_registry: StepRegistry | None = None,
) -> BatchSummary:
    """Run ``operation(item)`` for every item, ``concurrency`` at a time, and summarise.

    Streaming: ``items`` is consumed lazily by a fixed pool of ``concurrency`` worker tasks, so
    a source of 100,000 users never becomes 100,000 tasks; results are not kept (only counters,
    and a few example keys per failure reason).

    Outcomes: an item is *done* when the operation returns; *skipped* when it raises or
    returns :class:`Skip`, or the journal says it was already done or skipped; *failed* when
    it raises (an ``Exception``; one failure never stops the others); *unknown* when it
    failed in a way that leaves the write's fate open (``outcome_unknown(exc)``) and
    ``verify_unknown`` could not settle it. Reasons are secret-free: see
    :func:`describe_failure`.

    With a journal, a key met again in the same source is not run again: the first occurrence
    runs (or is skipped by the journal) and every later one is *skipped*, counted under the
    reason ``"duplicate key (already in this batch)"``; the runner then keeps the set of keys
    seen (one entry per distinct key). Without a journal nothing is remembered per item
    (memory stays flat) and keys are assumed unique.

    On a re-run with the same journal, done and skipped keys are skipped, failed keys are
    retried, and keys left *unknown* (the run was killed or cancelled mid-write, or the outcome
    was unknown) are first checked with ``verify_unknown(item)``: True, the write had been
    applied and is recorded done without repeating it; False, safe to repeat, so it runs again;
    None (or no ``verify_unknown``, or it raised), recorded as *unknown* and not repeated unless
    ``retry_unknown=True``. The same check runs at once when an operation fails with an unknown
    outcome during the run.

    Cancellation (Ctrl-C, a deadline, an enclosing ``CancelScope``) stops promptly: no new
    item starts, in-flight operations are cancelled (their journal lines stay ``started``,
    i.e. unknown, to be verified by the next run), the journal is synced and closed, and
    the cancellation propagates. Works under asyncio and Trio. If the source raises, the items
    in flight finish and the source's exception is re-raised.

    Args:
        items: Any iterable or async iterable of items, read lazily.
        operation: The async call made for each item; returning (or raising) a :class:`Skip`
            counts the item skipped.
        key: The item's stable identity for the journal and the failure examples (default: the
            item itself for ``str``/``int`` items; required with a journal otherwise). Never a
            secret.
        concurrency: How many items run at once (a fixed pool of worker tasks).
        rate: At most this many operation starts per second across all workers (a float, or a
            shared :class:`RateLimiter`); verification calls count against it too.
        journal: A :class:`Journal` or its path: a ``started`` line is written before each
            operation and the outcome after it, so a re-run resumes.
        on_progress: A plain (non-async) callable given a :class:`BatchProgress` at most every
            ``progress_interval`` seconds, and once at the end (also after a cancellation, with
            ``final=True``). Keep it cheap.
        progress_interval: Seconds between two ``on_progress`` calls.
        verify_unknown: Settles an item whose write's fate is open: True (applied), False (not
            applied: safe to repeat) or None (cannot tell).
        retry_unknown: Repeat writes left unknown (for idempotent operations, where repeating
            is harmless).
        stop_on: Exception class(es) or a predicate: when a failure matches, no new item
            starts, the ones in flight finish, and the summary's ``stopped`` says why (for
            example ``stop_on=AuthenticationError``: a revoked credential fails every item).
        outcome_unknown: Says whether a failure leaves the write's fate open (default
            :func:`is_outcome_unknown`: a timeout or connection drop after the request left, or
            a 502/504).
        max_examples: How many example keys are kept per failure reason.
        step_registry: Where TOTP codes issued during the run (by code providers given no
            ``registry=`` of their own) record their time steps. Default: with a journal, the
            cross-process state file of :func:`mfa_common.replay_state.shared_step_registry`,
            so a resumed run (or any other process of the user) never resends a step this run
            used; without a journal, whatever registry the caller's context holds.

    Returns:
        The counts, the failure reasons with examples, the elapsed time and why the run
        stopped early (if it did).

    Raises:
        InvalidInputError: A concurrency that is not a positive whole number, a progress
            interval that is not positive, or items that need a ``key`` without one.
        JournalLockedError: Another run holds the journal.
        JournalMismatchError: The journal was made for another batch.
    """
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise InvalidInputError("concurrency must be a positive integer")
    if progress_interval <= 0:
        raise InvalidInputError("progress_interval must be positive")
    limiter = rate if isinstance(rate, RateLimiter) else (RateLimiter(rate) if rate is not None else None)
    if journal is not None and not isinstance(journal, Journal):
        journal = Journal(journal)
    run: _Run[T] = _Run(
        operation,
        key=key,
        journaled=journal is not None,
        limiter=limiter,
        verify_unknown=verify_unknown,
        retry_unknown=retry_unknown,
        outcome_unknown=outcome_unknown,
        stop_on=_stop_predicate(stop_on),
        max_examples=max_examples,
    )
    source = _Source(items)
    if step_registry is None and journal is not None:
        step_registry = shared_step_registry()
    with contextlib.ExitStack() as scope:
        if step_registry is not None:
            scope.enter_context(using_step_registry(step_registry))
        return await _execute(run, source, journal, concurrency, on_progress, progress_interval)


async def _execute(
    run: _Run[T],
    source: _Source[T],
    journal: Journal | None,
    concurrency: int,
    on_progress: Callable[[BatchProgress], object] | None,
    progress_interval: float,
) -> BatchSummary:
    if journal is not None:
        # Shielded: the thread runs to the end anyway, and its open file must not be lost.
        with anyio.CancelScope(shield=True):
            run.writer, run.prior = await anyio.to_thread.run_sync(_open_journal, journal)
    try:
        async with anyio.create_task_group() as outer:
            if on_progress is not None:
                outer.start_soon(_report_progress, run, on_progress, progress_interval)
            async with anyio.create_task_group() as workers:
                for _ in range(concurrency):
                    workers.start_soon(run.worker, source, workers.cancel_scope)
            outer.cancel_scope.cancel()
    finally:
        try:
            await source.aclose()
            if run.writer is not None:
                run.writer.close()
        finally:
            if on_progress is not None and not run.progress_broken:
                on_progress(run.progress(final=True))
    if run.error is not None:
        raise run.error
    return run.summary()


def _open_journal(journal: Journal) -> tuple[JournalWriter, dict[str, ItemState]]:
    writer = journal.open_writer()  # locks the file first, so the state read below is current
    try:
        states = journal.read()
    except BaseException:
        writer.close()
        raise
    # Failed keys run again exactly like unseen ones; keep only what changes the plan.
    return writer, {k: s for k, s in states.items() if s is not ItemState.FAILED}


async def _report_progress(
    run: _Run[Any], callback: Callable[[BatchProgress], object], interval: float
) -> None:
    while True:
        await anyio.sleep(interval)
        try:
            callback(run.progress())
        except Exception as exc:  # a broken progress display: finish what runs, then raise
            if run.error is None:
                run.error = exc
            run.stop(f"on_progress raised {type(exc).__name__}")
            run.progress_broken = True
            return


def _stop_predicate(stop_on: StopOn | None) -> Callable[[BaseException], bool] | None:
    if stop_on is None:
        return None
    if isinstance(stop_on, (type, tuple)):
        classes = stop_on
        return lambda exc: isinstance(exc, classes)
    return stop_on
