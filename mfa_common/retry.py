"""Every retry decision of the SDK, and how long to wait: pure functions, no I/O.

:class:`RetryPolicy` answers each question the request path and the login driver ask; none of
them decides on its own:

* **after an error answer** (:meth:`RetryPolicy.delay_after_status`): idempotent methods (GET,
  HEAD, OPTIONS, PUT, DELETE) are retried on 408, 429 and 5xx; a non-idempotent write (POST,
  PATCH) only on 429, which says the server refused it unprocessed. An answer any
  ``final_answer`` rule calls final is never retried: by default one carrying
  ``X-Account-Lockout`` (each retry would feed the lockout counter), in every API;
* **after a failed exchange** (:meth:`RetryPolicy.delay_after_error`): idempotent requests on
  any transport error; a write only when the request surely never reached the server (the
  connection could not be made);
* **after a success whose body arrived broken** (:meth:`RetryPolicy.delay_after_broken_body`):
  idempotent requests only;
* **a code-bearing login step refused unread** (:meth:`RetryPolicy.delay_before_new_code`):
  sent again with a freshly issued code, at most ``code_step_retries`` times;
* **a conditional write that met 412** (:meth:`RetryPolicy.reread_on_stale`): re-read the
  revision and send once more, only when the caller asked (``retry_on_stale``).

Waits grow exponentially with full jitter and honour ``Retry-After`` (seconds or an HTTP date)
up to ``max_retry_after``; a longer ``Retry-After`` is not waited for. The request path also
never sleeps past a call's deadline: the error in hand is raised at once instead.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import attrs

from . import _constants as C
from ._httpx import ConnectError, ConnectTimeout, PoolTimeout, Response, TransportError

__all__ = [
    "FinalAnswerRule",
    "RetryPolicy",
    "account_locked_out",
    "parse_retry_after",
    "request_not_sent",
]

#: A rule of :class:`RetryPolicy`: True when this error answer must never be retried.
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


def account_locked_out(response: Response) -> bool:
    """The lockout rule: an answer carrying ``X-Account-Lockout`` (any value but ``0``) is
    final. Every retry of a refused login would count as one more failure."""
    return response.headers.get(C.LOCKOUT_HEADER) not in (None, "", "0")


@attrs.frozen
class RetryPolicy:
    """Retry decisions for one client (see the module docstring).

    Override ``max_retries`` per call with ``RequestOptions(max_retries=...)``.

    Args:
        max_retries: Retries of one call after its first attempt.
        initial_backoff: The first wait, in seconds (exponential, full jitter).
        max_backoff: The longest wait between two attempts.
        max_retry_after: The longest ``Retry-After`` waited for; a longer one is not waited
            for.
        retry_statuses: The statuses an idempotent request is retried on (408, 429, 5xx).
        idempotent_methods: The methods retried on errors (GET, HEAD, OPTIONS, PUT, DELETE).
        final_answer: Rules naming answers never retried, whatever their status (by default
            one carrying ``X-Account-Lockout``: each retry would feed the lockout counter).
        code_step_retries: How often a code-bearing login step refused unread is sent again,
            each time with a freshly issued code.
        stale_retries: How often a conditional write that met 412 is re-read and sent again,
            when asked.
    """

    max_retries: int = C.MAX_RETRIES
    initial_backoff: float = C.INITIAL_BACKOFF
    max_backoff: float = C.MAX_BACKOFF
    max_retry_after: float = C.MAX_RETRY_AFTER
    retry_statuses: frozenset[int] = C.RETRY_STATUSES
    idempotent_methods: frozenset[str] = C.IDEMPOTENT_METHODS
    final_answer: tuple[FinalAnswerRule, ...] = (account_locked_out,)
    #: How often a code-bearing login step refused unread is sent again, each time with a
    #: freshly issued code.
    code_step_retries: int = C.CODE_STEP_RETRIES
    #: How often a conditional write that met 412 is re-read and sent again, when asked.
    stale_retries: int = C.STALE_RETRIES

    def with_rule(self, rule: FinalAnswerRule) -> RetryPolicy:
        """This policy plus a "never retry this answer" rule.

        Args:
            rule: Called with an answer; True when it must not be retried.
        """
        return attrs.evolve(self, final_answer=(*self.final_answer, rule))

    def is_idempotent(self, method: str) -> bool:
        """Whether requests of ``method`` are retried on errors.

        Args:
            method: An HTTP method.
        """
        return method.upper() in self.idempotent_methods

    def retry_status(self, status: int, *, idempotent: bool) -> bool:
        """Whether a response with ``status`` may be retried."""
        if status == 429:
            return True  # the server refused the request without processing it
        return idempotent and status in self.retry_statuses

    def is_final(self, response: Response) -> bool:
        """Whether a rule forbids retrying this answer, whatever its status."""
        return any(rule(response) for rule in self.final_answer)

    def delay_after_status(
        self, response: Response, *, attempt: int, idempotent: bool, max_retries: int | None = None
    ) -> float | None:
        """Seconds to wait before retrying after this error answer (``attempt`` retries done so
        far), or None for no retry."""
        if attempt >= (self.max_retries if max_retries is None else max_retries):
            return None
        if not self.retry_status(response.status_code, idempotent=idempotent) or self.is_final(response):
            return None
        return self._delay(response, attempt + 1)

    def delay_after_error(
        self, exc: BaseException, *, attempt: int, idempotent: bool, max_retries: int | None = None
    ) -> float | None:
        """Seconds to wait before retrying after a failed exchange, or None for no retry."""
        if attempt >= (self.max_retries if max_retries is None else max_retries):
            return None
        if not isinstance(exc, TransportError) or not (idempotent or request_not_sent(exc)):
            return None
        return self.backoff(attempt + 1)

    def delay_after_broken_body(
        self, *, attempt: int, idempotent: bool, max_retries: int | None = None
    ) -> float | None:
        """Seconds to wait before repeating a request whose success arrived with a broken JSON
        body: as safe as after a 503 for an idempotent request, never for a write."""
        if not idempotent or attempt >= (self.max_retries if max_retries is None else max_retries):
            return None
        return self.backoff(attempt + 1)

    def delay_before_new_code(
        self, response: Response, *, retry: int, now: float | None = None
    ) -> float | None:
        """Seconds to wait before sending a code-bearing step again, with a fresh code, after the
        server refused it unread (429, 503); ``retry`` is 1 for the first resend. None: do not
        (a lockout, a wait too long, the resends spent). ``now`` dates an HTTP-date
        ``Retry-After`` (the login's clock)."""
        if retry > self.code_step_retries or response.status_code not in (429, 503):
            return None
        if self.is_final(response):
            return None
        return self._delay(response, retry, now)

    def reread_on_stale(self, *, attempt: int, requested: bool) -> bool:
        """Whether a conditional write that met 412 (``attempt`` re-reads done) re-reads the
        revision and is sent again: only when the caller asked, at most ``stale_retries``."""
        return requested and attempt < self.stale_retries

    def _delay(self, response: Response, attempt: int, now: float | None = None) -> float | None:
        # An HTTP-date Retry-After is wall-clock by definition; every other wait is relative.
        when = time.time() if now is None else now
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=when)
        return self.backoff(attempt, retry_after=retry_after)

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
