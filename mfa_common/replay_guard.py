"""Replay-safe TOTP issuing: "the next code the server will accept" for a secret.

Servers reject a second use of a code, and the strictest (devise-two-factor, used by GitLab)
accept at most one login per user per time step whatever the code. So the SDK remembers, per
secret and for the whole process, the last time step it handed out, and a caller who needs
another code waits for the next step instead of sending one the server would reject.

It also refuses to hand out a code with less than ``min_remaining`` seconds left in its step,
so a code cannot expire between generation and verification on a server without a window.

Reservation is synchronous (a check and a write under a threading lock, no await between), so
any number of asyncio or Trio tasks and threads may ask at once: each gets a distinct step.
"""

from __future__ import annotations

import threading

import attrs

from . import _constants as C
from .clock import SYSTEM_CLOCK, Clock
from .secret import Secret
from .totp import Totp


class StepRegistry:
    """Last time step handed out, per secret fingerprint. One shared instance per process."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def last_used(self, fingerprint: str) -> int | None:
        with self._lock:
            return self._last.get(fingerprint)

    def reserve(self, fingerprint: str, step: int) -> bool:
        """Claim ``step`` for the secret; False if it (or a later step) was already used."""
        with self._lock:
            last = self._last.get(fingerprint)
            if last is not None and step <= last:
                return False
            self._last[fingerprint] = step
            return True

    def clear(self) -> None:
        with self._lock:
            self._last.clear()


#: The registry every provider uses unless given another (shared by all tasks in the process).
STEP_REGISTRY = StepRegistry()


@attrs.frozen
class IssuedTotp:
    """A code and the time step it belongs to."""

    code: Secret[str]
    step: int


async def next_totp(
    totp: Totp,
    *,
    clock: Clock | None = None,
    min_remaining: float = C.TOTP_MIN_REMAINING,
    registry: StepRegistry | None = None,
) -> IssuedTotp:
    """Wait (if needed) for a step no caller in this process has used, and return its code."""
    clock = clock or SYSTEM_CLOCK
    registry = registry or STEP_REGISTRY
    period = float(totp.period)
    margin = min(min_remaining, period / 2)
    fingerprint = totp.fingerprint
    while True:
        now = clock.now()
        step = totp.step_at(now)
        left = (step + 1) * period - now
        if left < margin:
            await clock.sleep(left + C.TOTP_BOUNDARY_SLACK)
            continue
        last = registry.last_used(fingerprint)
        if last is not None and step <= last:
            await clock.sleep((last + 1) * period - now + C.TOTP_BOUNDARY_SLACK)
            continue
        if registry.reserve(fingerprint, step):
            return IssuedTotp(code=Secret(totp.code_at_step(step)), step=step)
