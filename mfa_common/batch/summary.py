"""What a batch reports: live progress and the final summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["BatchProgress", "BatchSummary", "FailureReason"]


@attrs.frozen
class BatchProgress:
    """A snapshot passed to ``on_progress``.

    Attributes:
        done: Items whose operation succeeded.
        failed: Items that failed.
        skipped: Items skipped (by the operation, the journal, or as a duplicate key).
        unknown: Writes whose outcome could not be established.
        in_flight: Items running now.
        seen: Items taken from the source so far (the total is not known in advance for a
            streamed source).
        elapsed: Seconds since the start.
        rate: Finished items per second since the start.
        final: True for the last snapshot (after the end, or a cancellation).
    """

    done: int
    failed: int
    skipped: int
    unknown: int
    in_flight: int
    seen: int
    elapsed: float
    rate: float
    final: bool = False

    @property
    def finished(self) -> int:
        """Items with an outcome (done + failed + skipped + unknown)."""
        return self.done + self.failed + self.skipped + self.unknown


@attrs.frozen
class FailureReason:
    """One failure reason: how many items, a few example keys and one example message.

    Attributes:
        reason: The grouping key (the exception's class name, or ``"outcome unknown"``).
        count: How many items failed for it.
        example_keys: The keys of the first few (at most ``max_examples``).
        example_message: One secret-free message (see :func:`describe_failure`).
    """

    reason: str
    count: int
    example_keys: tuple[str, ...]
    example_message: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "count": self.count,
            "example_keys": list(self.example_keys),
            "example_message": self.example_message,
        }


@attrs.frozen
class BatchSummary:
    """The outcome of a batch: counts, failures by reason, timing.

    ``total == done + failed + skipped + unknown``; ``ok`` is True when nothing failed and
    nothing is unknown. ``str(summary)`` is a short table.

    Attributes:
        total: Items taken from the source.
        done: Items whose operation succeeded (or a lost answer was verified as applied).
        failed: Items that failed.
        skipped: Items skipped (by the operation, the journal, or as a duplicate key).
        unknown: Writes whose outcome could not be established (a timeout after the request
            left, or a previous run's interrupted write that ``verify_unknown`` could not
            settle): they were not repeated and are listed under
            ``failures_by_reason["outcome unknown"]``.
        failures_by_reason: Each failure reason with its count and examples.
        skipped_by_reason: How many items were skipped for each reason.
        elapsed: Seconds the run took.
        throughput: Finished items per second.
        stopped: Why the batch stopped early (``stop_on`` matched), else None.
    """

    total: int
    done: int
    failed: int
    skipped: int
    unknown: int
    failures_by_reason: Mapping[str, FailureReason]
    skipped_by_reason: Mapping[str, int]
    elapsed: float
    throughput: float
    stopped: str | None = None

    @property
    def ok(self) -> bool:
        """True when every item ended done or skipped and the batch ran to the end."""
        return self.failed == 0 and self.unknown == 0 and self.stopped is None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``--json`` output)."""
        return {
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "unknown": self.unknown,
            "failures_by_reason": {k: v.as_dict() for k, v in self.failures_by_reason.items()},
            "skipped_by_reason": dict(self.skipped_by_reason),
            "elapsed": round(self.elapsed, 3),
            "throughput": round(self.throughput, 1),
            "stopped": self.stopped,
        }

    def __str__(self) -> str:
        rows = [
            ("total", f"{self.total}"),
            ("done", f"{self.done}"),
            ("failed", f"{self.failed}"),
            ("skipped", f"{self.skipped}"),
            ("unknown", f"{self.unknown}"),
            ("elapsed", f"{self.elapsed:.2f} s"),
            ("throughput", f"{self.throughput:.1f} items/s"),
        ]
        if self.stopped:
            rows.append(("stopped", self.stopped))
        lines = [f"  {name:<11} {value}" for name, value in rows]
        if self.failures_by_reason:
            lines.append("  failures by reason:")
            width = max(len(r) for r in self.failures_by_reason)
            for reason, group in sorted(self.failures_by_reason.items(), key=lambda kv: -kv[1].count):
                examples = ", ".join(group.example_keys)
                lines.append(f"    {reason:<{width}} {group.count:>7}  e.g. {examples}")
        if self.skipped_by_reason:
            lines.append("  skipped by reason:")
            width = max(len(r) for r in self.skipped_by_reason)
            for reason, count in sorted(self.skipped_by_reason.items(), key=lambda kv: -kv[1]):
                lines.append(f"    {reason:<{width}} {count:>7}")
        return "\n".join(["Batch summary", *lines])
