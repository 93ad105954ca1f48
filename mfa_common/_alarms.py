"""Many deadlines on one asyncio timer.

Every call has a deadline, every request body a write timeout and every answer a read timeout
that moves on with each piece of data, but almost none of them expires. One ``loop.call_at``
handle per deadline costs a timer object, a push onto the loop's heap and a cancellation each
time, and every handle in the heap makes each push dearer. :class:`Alarms` keeps the deadlines
in flight in a set and arms one loop timer, at the earliest of them; an alarm that never rings
costs a set insertion and a removal.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

__all__ = ["Alarm", "Alarms"]

# A timer may run this much before its time (the loop's clock resolution); an alarm due within
# it rings, as asyncio's own timers do.
_RESOLUTION = time.get_clock_info("monotonic").resolution


class Alarm:
    """One deadline: ``ring`` runs at ``when`` (loop time) unless the alarm is removed first;
    ``rung`` says whether it ran."""

    __slots__ = ("ring", "rung", "when")

    def __init__(self, when: float, ring: Callable[[], object]) -> None:
        self.when = when
        self.ring = ring
        self.rung = False


class Alarms:
    """The alarms of one event loop, on one timer armed at the earliest of them."""

    __slots__ = ("_armed_at", "_handle", "_pending", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._pending: set[Alarm] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = math.inf

    def add(self, delay: float, ring: Callable[[], object]) -> Alarm:
        """An alarm that calls ``ring()`` in ``delay`` seconds unless :meth:`remove` comes first."""
        alarm = Alarm(self.loop.time() + delay, ring)
        self._pending.add(alarm)
        if alarm.when < self._armed_at:
            self._arm(alarm.when)
        return alarm

    def move(self, alarm: Alarm, delay: float) -> None:
        """Make a pending ``alarm`` ring in ``delay`` seconds instead (sooner or later)."""
        alarm.when = self.loop.time() + delay
        if alarm.when < self._armed_at:
            self._arm(alarm.when)

    def remove(self, alarm: Alarm) -> None:
        """Forget ``alarm`` (rung or not). The timer stays armed: when it runs with nothing due
        it only re-arms for the earliest alarm left, if any."""
        self._pending.discard(alarm)

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = when
        self._handle = self.loop.call_at(when, self._due)

    def _due(self) -> None:
        self._handle = None
        self._armed_at = math.inf
        now = self.loop.time() + _RESOLUTION
        due = [alarm for alarm in self._pending if alarm.when <= now]
        for alarm in due:
            self._pending.discard(alarm)
        if self._pending:
            self._arm(min(alarm.when for alarm in self._pending))
        for alarm in due:
            alarm.rung = True
            alarm.ring()
