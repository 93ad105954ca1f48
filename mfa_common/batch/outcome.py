"""Per-item outcomes of a batch: the ``Skip`` signal and secret-free failure reasons."""

from __future__ import annotations

from enum import Enum

from ..errors import APIConnectionError, MfaSdkError, ResponseDecodeError, ServerError

__all__ = [
    "OUTCOME_UNKNOWN",
    "ItemState",
    "Skip",
    "describe_failure",
    "is_outcome_unknown",
]

# The reason recorded for an item whose write may or may not have been applied.
OUTCOME_UNKNOWN = "outcome unknown"

# Reasons are cut to this many characters (journal lines and summaries stay small).
MAX_REASON_CHARS = 200

# Gateway statuses after which the upstream may or may not have applied the write.
_AMBIGUOUS_STATUSES = frozenset({502, 504})


class ItemState(str, Enum):
    """The outcome of one item (also the ``state`` values of the journal, plus ``unknown``)."""

    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"


class Skip(Exception):  # noqa: N818 - a signal, not an error
    """Raise or return this from an operation to mark the item skipped (not failed).

    Use it when there is nothing to do, for example a user who already has MFA enabled::

        async def enable(user):
            if user.mfa_enabled:
                return Skip("already enabled")
            await client.enable_mfa(user.id)

    Args:
        reason: Why, written to the journal and counted in the summary: keep it free of
            secrets (a short fixed phrase; whitespace is collapsed and a long one shortened).
    """

    def __init__(self, reason: str = "skipped") -> None:
        super().__init__(reason)
        self.reason = _shorten(reason) or "skipped"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 1] + "…"
    return text


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """``(kind, message)`` for a failed item, both safe to write to a journal or a log.

    ``kind`` is the exception's class name (the grouping key of ``failures_by_reason``).
    ``message`` adds ``str(exc)`` only for the SDK's own errors, whose messages are built
    without credentials (URLs redacted, bodies reduced to the server's code and message);
    any other exception is described by its class name alone, because its text may hold
    anything (a password in a ``KeyError``, a token in a ``ValueError``).

    Args:
        exc: The item's failure.

    Returns:
        ``(kind, message)``: the class name, and the text safe to record.
    """
    kind = type(exc).__name__
    if isinstance(exc, MfaSdkError):
        text = _shorten(str(exc))
        return kind, f"{kind}: {text}" if text else kind
    return kind, kind


def is_outcome_unknown(exc: BaseException) -> bool:
    """Whether a failure leaves it unknown if the server applied the write.

    True for a connection error or timeout after the request may have left
    (``APIConnectionError.request_sent``), and for 502/504 gateway errors, where the upstream
    may have finished the work after the gateway gave up; and for a success answer (2xx, or a
    status the error does not tell) whose body could not be read: the server may well have
    applied the write. Such items are recorded as ``unknown``: a re-run checks them with
    ``verify_unknown`` before repeating them.

    Args:
        exc: The item's failure.

    Returns:
        True when the write may have been applied (the default ``outcome_unknown`` of
        :func:`run_batch`).
    """
    if isinstance(exc, APIConnectionError):
        return bool(exc.request_sent)
    if isinstance(exc, ResponseDecodeError):
        return exc.status_code is None or 200 <= exc.status_code < 300
    return isinstance(exc, ServerError) and exc.status_code in _AMBIGUOUS_STATUSES
