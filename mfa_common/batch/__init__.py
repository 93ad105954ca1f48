"""The batch runner: administration jobs over thousands of items, resumable after a kill.

::

    import anyio
    from mfa_common.batch import Journal, Skip, run_batch

    async def reset_mfa(user: dict[str, str]) -> Skip | None:
        if user["mfa"] == "off":
            return Skip("no MFA to reset")
        await client.reset_mfa(user["id"])  # any async call
        return None

    async def was_reset(user: dict[str, str]) -> bool | None:
        return not (await client.get_user(user["id"])).mfa_enabled

    summary = await run_batch(
        csv.DictReader(open("users.csv")),     # streamed, never loaded whole
        reset_mfa,
        key=lambda user: user["id"],           # stable, secret-free identity
        concurrency=50,
        rate=100,                              # at most 100 operation starts per second
        journal=Journal("reset.journal"),      # re-run the same command to resume
        verify_unknown=was_reset,              # settles writes a kill left in doubt
        on_progress=lambda p: print(f"{p.done} done, {p.failed} failed", end="\\r"),
    )
    print(summary)                             # a short table; summary.as_dict() for JSON

Items flow through a fixed pool of ``concurrency`` worker tasks; only counters and a few
example keys per failure reason are kept, so memory stays flat however long the source.
The journal (JSON lines, 0600) records ``started`` before each operation and the outcome
after it: a re-run skips what finished, retries what failed, and asks ``verify_unknown``
about writes a crash left unknown instead of repeating them blindly.

Administration jobs built on it (a read-only check per item, then the write, and the
verification of a lost answer) are :class:`BatchJob` objects, run by :func:`run_batch_job`; each
API's are in its ``jobs`` module (:mod:`quatrix_async.jobs`, :mod:`metalcloud_async.jobs`).
"""

from __future__ import annotations

from .jobs import (
    BatchJob,
    BatchJobResult,
    CsvCells,
    CsvRowError,
    PlannedChange,
    PlannedSkip,
    read_csv,
    run_batch_job,
)
from .journal import Journal, JournalError, JournalLockedError, JournalMismatchError
from .outcome import OUTCOME_UNKNOWN, ItemState, Skip, describe_failure, is_outcome_unknown
from .rate_limit import RateLimiter
from .runner import DEFAULT_CONCURRENCY, run_batch
from .summary import BatchProgress, BatchSummary, FailureReason

__all__ = [
    "DEFAULT_CONCURRENCY",
    "OUTCOME_UNKNOWN",
    "BatchJob",
    "BatchJobResult",
    "BatchProgress",
    "BatchSummary",
    "CsvCells",
    "CsvRowError",
    "FailureReason",
    "ItemState",
    "Journal",
    "JournalError",
    "JournalLockedError",
    "JournalMismatchError",
    "PlannedChange",
    "PlannedSkip",
    "RateLimiter",
    "Skip",
    "describe_failure",
    "is_outcome_unknown",
    "read_csv",
    "run_batch",
    "run_batch_job",
]
