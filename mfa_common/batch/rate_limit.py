"""A requests-per-second limiter shared by the workers of a batch."""

from __future__ import annotations

import math

import anyio

from ..errors import InvalidInputError

__all__ = ["RateLimiter"]


class RateLimiter:
    """Spaces operation starts to at most ``rate`` per second, allowing bursts of ``burst``.

    A token bucket in its "virtual scheduling" form (GCRA): each call reserves the next free
    slot on the event loop's monotonic clock, then sleeps until it. Reserving is synchronous
    (no await between reading and moving the schedule), so any number of tasks may share one
    limiter without a lock, under asyncio and Trio alike. A task cancelled while it waits
    forfeits its slot; the rate is never exceeded, it can only fall short.

    With ``burst=1`` (the default) starts are evenly spaced ``1/rate`` apart: ``rate=200``
    lets 100 operations start within ``99/200 = 0.495`` s, never faster.
    """

    __slots__ = ("_burst_allowance", "_interval", "_tat", "burst", "rate")

    def __init__(self, rate: float, *, burst: int = 1) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise InvalidInputError("rate must be a positive number of operations per second")
        if burst < 1:
            raise InvalidInputError("burst must be at least 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self._interval = 1.0 / self.rate
        self._burst_allowance = (self.burst - 1) * self._interval
        # Theoretical arrival time of the next operation; -inf: nothing scheduled yet.
        self._tat = -math.inf

    async def acquire(self) -> None:
        """Wait until one more operation may start."""
        now = anyio.current_time()
        tat = max(self._tat, now)
        start = tat - self._burst_allowance
        self._tat = tat + self._interval
        if start > now:
            await anyio.sleep_until(start)

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate:g}, burst={self.burst})"
