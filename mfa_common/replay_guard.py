"""Replay-safe TOTP issuing: "the next code the server will accept" for a secret.

Servers reject a second use of a code, and the strictest (devise-two-factor, used by GitLab)
accept at most one login per user per time step whatever the code. So the SDK remembers, per
key and period, the last time step it handed out, and a caller who needs another code waits
for the next step instead of sending one the server would reject.

It also refuses to hand out a code with less than ``min_remaining`` seconds left in its step,
so a code cannot expire between generation and verification on a server without a window.

Which registry remembers the steps:

* the ``registry=`` argument, when given;
* else the one installed for the current context by :func:`using_step_registry` (a batch run
  with a journal installs the cross-process registry of :mod:`mfa_common.replay_state`);
* else the default: the user's step state file, shared by every process of the user, while it
  can be used, else (one DEBUG line) :data:`STEP_REGISTRY`, shared by every task and thread of
  this process only. ``MFA_SDKS_STEP_STATE=0`` makes :data:`STEP_REGISTRY` the default; see
  :func:`mfa_common.replay_state.default_step_registry`.

Reservation in the process registry is synchronous (a check and a write under a threading lock,
no await between), so any number of asyncio or Trio tasks and threads may ask at once: each gets
a distinct step. A registry whose ``blocking`` attribute is true (the state-file registry) is
called in a worker thread, off the event loop. Every wait for a code window is logged at INFO
(the number of seconds only: never a secret or a code).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterator
from typing import ClassVar

import attrs

from . import _constants as C
from .clock import SYSTEM_CLOCK, Clock
from .secret import Secret
from .totp import Totp

__all__ = [
    "STEP_REGISTRY",
    "IssuedTotp",
    "StepRegistry",
    "current_step_registry",
    "next_totp",
    "note_possible_replay",
    "using_step_registry",
]

logger = logging.getLogger(C.LOGGER_NAME)


class StepRegistry:
    """Last time step handed out, per key and period. One shared instance per process.

    The registry key of a :class:`Totp` (:meth:`key_for`) holds its period: steps of a 30 s and
    a 60 s code of the same secret are different time windows, and must not be compared.
    Subclasses that remember steps elsewhere override :meth:`claim` (and set ``blocking`` when
    it does I/O).
    """

    #: Whether :meth:`claim` blocks (file I/O): :func:`next_totp` then calls it in a thread.
    blocking: ClassVar[bool] = False

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def key_for(self, totp: Totp) -> str:
        """The registry key of ``totp``: its process-local fingerprint and its period."""
        return f"{totp.fingerprint}/{totp.period}"

    def last_used(self, key: str) -> int | None:
        with self._lock:
            return self._last.get(key)

    def reserve(self, key: str, step: int) -> bool:
        """Claim ``step`` for the key; False if it (or a later step) was already used."""
        with self._lock:
            last = self._last.get(key)
            if last is not None and step <= last:
                return False
            self._last[key] = step
            return True

    def claim(self, totp: Totp, step: int) -> int | None:
        """Claim ``step`` for ``totp``: None when claimed, else the last step already used."""
        key = self.key_for(totp)
        while True:
            last = self.last_used(key)
            if last is not None and step <= last:
                return last
            if self.reserve(key, step):
                return None

    def clear(self) -> None:
        with self._lock:
            self._last.clear()


#: The registry of this process (shared by all its tasks and threads): the default when the
#: step state file cannot be used or is turned off, or when passed explicitly.
STEP_REGISTRY = StepRegistry()

_CONTEXT_REGISTRY: contextvars.ContextVar[StepRegistry | None] = contextvars.ContextVar(
    "mfa_common_step_registry", default=None
)


@contextlib.contextmanager
def using_step_registry(registry: StepRegistry) -> Iterator[StepRegistry]:
    """Within the block (and the tasks it starts), codes issued without an explicit ``registry``
    are recorded in ``registry``: for instance the cross-process one of
    :func:`mfa_common.replay_state.shared_step_registry`."""
    token = _CONTEXT_REGISTRY.set(registry)
    try:
        yield registry
    finally:
        _CONTEXT_REGISTRY.reset(token)


def current_step_registry() -> StepRegistry:
    """The registry :func:`next_totp` uses when none is passed (see the module docstring)."""
    chosen = _CONTEXT_REGISTRY.get()
    if chosen is not None:
        return chosen
    from .replay_state import default_step_registry  # it builds on this module

    return default_step_registry()


_REPLAY_HINT = (
    "; it may have been a replay: a server refuses a code whose time step was already used, for "
    "instance by another process or machine with the same TOTP secret (the processes of one user "
    "share their used steps through the SDK's step state file unless MFA_SDKS_STEP_STATE=0 or a "
    "registry of their own turns it off)"
)


def note_possible_replay(exc: BaseException) -> None:
    """Say in ``exc`` (the error of a refused TOTP code) that the code may have been a replay."""
    message = str(exc)
    if _REPLAY_HINT in message:
        return
    exc.args = (message + _REPLAY_HINT, *exc.args[1:])
    if isinstance(getattr(exc, "message", None), str):
        exc.message = message + _REPLAY_HINT  # type: ignore[attr-defined]


@attrs.frozen
class IssuedTotp:
    """A code and the time step it belongs to."""

    code: Secret[str]
    step: int


async def _wait(clock: Clock, seconds: float, why: str) -> None:
    logger.info("waiting %.1f s for the next code window (%s)", seconds, why)
    await clock.sleep(seconds)


async def next_totp(
    totp: Totp,
    *,
    clock: Clock | None = None,
    min_remaining: float = C.TOTP_MIN_REMAINING,
    registry: StepRegistry | None = None,
) -> IssuedTotp:
    """Wait (if needed) for a step no caller sharing the registry has used; return its code."""
    clock = clock or SYSTEM_CLOCK
    registry = registry or current_step_registry()
    period = float(totp.period)
    margin = min(min_remaining, period / 2)
    while True:
        now = clock.now()
        step = totp.step_at(now)
        left = (step + 1) * period - now
        if left < margin:
            await _wait(clock, left + C.TOTP_BOUNDARY_SLACK, "too little time left in this one")
            continue
        if registry.blocking:
            import anyio.to_thread  # loaded on first use, not by an import of the SDK

            last = await anyio.to_thread.run_sync(registry.claim, totp, step)
        else:
            last = registry.claim(totp, step)
        if last is None:
            return IssuedTotp(code=Secret(totp.code_at_step(step)), step=step)
        # Re-read the clock: a blocking claim may have taken a while.
        wait = (last + 1) * period - clock.now() + C.TOTP_BOUNDARY_SLACK
        await _wait(clock, max(wait, 0.0), "this one was already used")
