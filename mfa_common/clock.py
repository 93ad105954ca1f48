"""Injectable time source for everything that depends on the TOTP step.

Codes, replay waits and lockout deadlines all read time through a :class:`Clock`, so
production code uses the system clock (optionally corrected by the server's ``Date`` header)
and tests use :class:`FakeClock`, where waiting for the next 30-second step costs nothing.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
from datetime import timezone
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A UTC wall clock plus a way to wait on it."""

    def now(self) -> float:
        """Current UTC time as Unix seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class SystemClock:
    """``time.time()`` plus an adjustable offset towards the server's clock.

    The offset exists because TOTP servers reject codes from a client whose clock is off by
    more than a step or so; ``learn_offset_from_date_header`` estimates it from a response.
    ``max_offset`` bounds what a ``Date`` header may do: a forged header must not make the
    client mint codes for a distant future. ``None`` removes the bound.
    """

    __slots__ = ("max_offset", "offset")

    def __init__(self, offset: float = 0.0, *, max_offset: float | None = 900.0) -> None:
        self.offset = float(offset)
        self.max_offset = max_offset

    def now(self) -> float:
        return time.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        import anyio  # loaded when something waits, not by an import of the SDK

        await anyio.sleep(max(0.0, seconds))

    def learn_offset_from_date_header(self, date_header: str, *, sent_at: float, received_at: float) -> None:
        """Move ``offset`` towards the server clock seen in an HTTP ``Date`` header.

        ``sent_at`` and ``received_at`` are readings of :meth:`now` taken around the request.
        ``Date`` has one-second resolution and is truncated, so the server's time is taken as
        the header plus half a second, compared with the midpoint of the request. Small
        differences (within 1.5 s plus half the round trip) are noise and are ignored, as are
        unparseable headers and differences beyond ``max_offset``.
        """
        try:
            parsed = email.utils.parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        if parsed is None:
            return
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        try:
            server_time = parsed.timestamp() + 0.5
        except (OverflowError, OSError, ValueError):
            return
        if not (math.isfinite(sent_at) and math.isfinite(received_at)) or received_at < sent_at:
            return
        difference = server_time - (sent_at + received_at) / 2
        if abs(difference) <= 1.5 + (received_at - sent_at) / 2:
            return
        new_offset = self.offset + difference
        if self.max_offset is not None and abs(new_offset) > self.max_offset:
            return
        self.offset = new_offset

    def __repr__(self) -> str:
        return f"SystemClock(offset={self.offset:.3f})"


class FakeClock:
    """A manually driven clock for tests.

    ``sleep`` advances the fake time at once and yields a single checkpoint, so code that
    waits for the next TOTP step runs instantly. The lock makes it safe to read from a fake
    server running in another thread. ``sleeps`` records every requested duration.
    """

    __slots__ = ("_lock", "_now", "sleeps")

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = float(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward; going backwards needs :meth:`set`, to make it deliberate."""
        if seconds < 0 or not math.isfinite(seconds):
            raise ValueError("advance() takes a finite, non-negative number of seconds")
        with self._lock:
            self._now += seconds

    def set(self, ts: float) -> None:
        if not math.isfinite(ts):
            raise ValueError("set() takes a finite timestamp")
        with self._lock:
            self._now = float(ts)

    async def sleep(self, seconds: float) -> None:
        duration = max(0.0, seconds)
        with self._lock:
            self.sleeps.append(duration)
            self._now += duration
        import anyio.lowlevel

        await anyio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now():.3f})"


SYSTEM_CLOCK = SystemClock()
