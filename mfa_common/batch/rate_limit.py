"""A requests-per-second limiter shared by the workers of a batch."""

from __future__ import annotations

import math
from typing import Protocol

import anyio

from ..errors import InvalidInputError

__all__ = ["RateLimiter", "TimeSource"]


class TimeSource(Protocol):
    """A monotonic clock and a way to wait on it (tests pass a fake one)."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class _EventLoopTime:
    """The event loop's monotonic clock (asyncio or Trio)."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


_EVENT_LOOP_TIME = _EventLoopTime()


class RateLimiter:
    """At most ``rate`` operation starts per second, with bursts of at most ``burst``.

    A token bucket holding at most ``burst`` tokens, refilled at ``rate`` per second and read
    at the moment an operation actually starts: in any interval of ``T`` seconds at most
    ``burst + rate * T`` operations start, however late the event loop wakes a waiter. (A
    schedule of reserved future slots would not do: after a stalled loop, every waiter whose
    slot had passed would start at once; equally, time lost to a late wake-up is not made up
    later, so under a loaded loop the rate falls short rather than bursting.) Waiters queue
    in order behind one fair lock and only the first sleeps, so any number of tasks may share
    one limiter, under asyncio and Trio. A task cancelled while it waits takes no token; the
    rate is never exceeded, it can only fall short.

    With ``burst=1`` (the default) starts are at least ``1/rate`` apart: ``rate=200`` lets 100
    operations start within ``99/200 = 0.495`` s, never faster.

    Args:
        rate: Operation starts per second (a positive number).
        burst: How many may start at once after an idle time.
        time: Replaces the event loop's clock (a :class:`TimeSource`, for tests).

    Raises:
        InvalidInputError: A rate that is not a positive finite number, or a burst below 1.
    """

    __slots__ = ("_lock", "_time", "_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, *, burst: int = 1, time: TimeSource | None = None) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise InvalidInputError("rate must be a positive number of operations per second")
        if burst < 1:
            raise InvalidInputError("burst must be at least 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self._time: TimeSource = time if time is not None else _EVENT_LOOP_TIME
        self._tokens = float(self.burst)
        self._updated: float | None = None  # first use: a full bucket
        self._lock: anyio.Lock | None = None  # made on first use, inside an event loop

    async def acquire(self) -> None:
        """Wait until one more operation may start."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            while True:
                now = self._time.now()
                if self._updated is not None:
                    elapsed = max(0.0, now - self._updated)
                    self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
                self._updated = now
                if self._tokens >= 1.0 - 1e-9:  # float rounding must not cost a second sleep
                    self._tokens -= 1.0
                    return
                await self._time.sleep((1.0 - self._tokens) / self.rate)

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate:g}, burst={self.burst})"
