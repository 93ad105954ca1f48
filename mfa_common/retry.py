"""When to retry, and how long to wait: pure functions, no I/O.

Rules:
* idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) are retried on connection errors,
  timeouts, 408, 429 and 5xx;
* a non-idempotent write (POST, PATCH) is retried only when the request surely never reached
  the server (the connection could not be made) or the server said so explicitly (429);
  otherwise the error goes to the caller, who knows whether repeating the write is safe;
* waits grow exponentially with full jitter, and honour ``Retry-After`` (seconds or an HTTP
  date) up to a cap; a longer ``Retry-After`` is not waited for;
* an API adds its own rules as hooks (``final_answer``): a response any hook calls final is
  never retried (the X-MFA lockout: each retry would feed the lockout counter).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import attrs

from . import _constants as C
from ._httpx import ConnectError, ConnectTimeout, PoolTimeout, Response, TransportError

#: A hook of :class:`RetryPolicy`: True when this error response must never be retried.
FinalAnswerRule = Callable[[Response], bool]

# Connection failures that prove the request never left the client.
_NOT_SENT = (ConnectError, ConnectTimeout, PoolTimeout)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:  # pragma: no cover - older Pythons
            return None
        seconds = when.timestamp() - now
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return max(0.0, seconds)


def request_not_sent(exc: BaseException) -> bool:
    """True when ``exc`` proves the server never saw the request."""
    return isinstance(exc, _NOT_SENT)


@attrs.frozen
class RetryPolicy:
    """Retry decisions for one client. Override per call with ``max_retries``."""

    max_retries: int = C.MAX_RETRIES
    initial_backoff: float = C.INITIAL_BACKOFF
    max_backoff: float = C.MAX_BACKOFF
    max_retry_after: float = C.MAX_RETRY_AFTER
    retry_statuses: frozenset[int] = C.RETRY_STATUSES
    idempotent_methods: frozenset[str] = C.IDEMPOTENT_METHODS
    final_answer: tuple[FinalAnswerRule, ...] = ()

    def with_rule(self, rule: FinalAnswerRule) -> RetryPolicy:
        """This policy plus an API-specific "never retry this answer" rule."""
        return attrs.evolve(self, final_answer=(*self.final_answer, rule))

    def is_idempotent(self, method: str) -> bool:
        return method.upper() in self.idempotent_methods

    def retry_status(self, status: int, *, idempotent: bool) -> bool:
        """Whether a response with ``status`` may be retried."""
        if status == 429:
            return True  # the server refused the request without processing it
        return idempotent and status in self.retry_statuses

    def status_delay(self, response: Response, *, attempt: int, idempotent: bool) -> float | None:
        """Seconds to wait before retrying after this error response (``attempt`` retries
        done so far), or None for no retry."""
        if not self.retry_status(response.status_code, idempotent=idempotent):
            return None
        if any(rule(response) for rule in self.final_answer):
            return None
        # An HTTP-date Retry-After is wall-clock by definition; every other wait is relative.
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
        return self.backoff(attempt + 1, retry_after=retry_after)

    def retry_exception(self, exc: BaseException, *, idempotent: bool) -> bool:
        """Whether a transport error may be retried."""
        if not isinstance(exc, TransportError):
            return False
        return idempotent or request_not_sent(exc)

    def backoff(
        self, attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based); None means do not retry."""
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** (attempt - 1)))
        return (rng or random).uniform(ceiling / 2, ceiling)
