"""Where a second factor comes from: a TOTP secret, a recovery-code store, or a person.

An auth backend that meets an MFA challenge asks its :class:`CodeProvider` for a code and,
once it knows what the server did with it, settles the :class:`IssuedCode`:

* ``accepted()`` — the server took it;
* ``rejected()`` — the server refused it (a recovery code is then never offered again);
* ``not_sent()`` — the request never left (a recovery code goes back to the pool);
* ``unknown()`` — sent, outcome unknown (a recovery code is set aside, never reused blindly).

The same outcomes go through ``await issued.asettle(outcome)`` without blocking the event loop:
a code from a persisted :class:`RecoveryCodeStore` then writes the store file in a worker thread.
The login driver settles that way; the synchronous methods stay for code that has no loop.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Literal, Protocol, runtime_checkable

import attrs

from . import _constants as C
from ._httpx import Request, Response
from .clock import Clock
from .errors import APIConnectionError, InvalidCodeError
from .recovery_codes import RecoveryCodeReservation, RecoveryCodeStore
from .replay_guard import StepRegistry, next_totp
from .secret import Secret, wrap
from .totp import Totp, validate_code_format

CodeKind = Literal["totp", "recovery", "pin", "other"]
#: What the server did with a code (the values of :class:`mfa_common.auth.machine.Settlement`).
Outcome = Literal["accepted", "rejected", "not_sent", "unknown"]


@attrs.frozen
class MfaChallenge:
    """What the server asked for: ``kind`` ("totp", "pin", "recovery"), for which ``user``."""

    kind: str = "totp"
    user: str | None = None
    detail: str | None = None


class IssuedCode:
    """A code handed out for one attempt; settle it exactly once (see the module docstring)."""

    __slots__ = ("_on_asettle", "_on_settle", "_settled", "kind", "value")

    def __init__(
        self,
        value: Secret[str],
        kind: CodeKind,
        on_settle: Callable[[str], None] | None = None,
        *,
        on_asettle: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.value = value
        self.kind = kind
        self._on_settle = on_settle
        self._on_asettle = on_asettle
        self._settled = False

    async def asettle(self, outcome: Outcome) -> None:
        """Settle by ``outcome`` (once, like the methods below) without blocking the event loop:
        ``on_asettle`` when given (a store write in a worker thread), else ``on_settle``."""
        if self._on_asettle is None:
            self._settle(outcome)
            return
        if self._settled:
            return
        self._settled = True
        await self._on_asettle(outcome)

    def _settle(self, outcome: str) -> None:
        if self._settled:
            return
        self._settled = True
        if self._on_settle is not None:
            self._on_settle(outcome)

    def accepted(self) -> None:
        self._settle("accepted")

    def rejected(self) -> None:
        self._settle("rejected")

    def not_sent(self) -> None:
        self._settle("not_sent")

    def unknown(self) -> None:
        self._settle("unknown")

    def __repr__(self) -> str:
        return f"IssuedCode(kind={self.kind!r}, value=Secret('***'))"


async def send_code(
    issued: IssuedCode, send: Callable[[Request], Awaitable[Response]], request: Request
) -> Response:
    """Send ``request`` (which carries ``issued``), settling the code if the send fails
    (see :func:`settled_if_send_fails`). Settling by status is the caller's."""
    with settled_if_send_fails(issued):
        return await send(request)


@contextmanager
def settled_if_send_fails(issued: IssuedCode) -> Iterator[None]:
    """Around the send of a request carrying ``issued``: when the send itself fails, settle the
    code ``not_sent`` if the request surely never left, ``unknown`` otherwise (including a
    cancellation in flight: the server may have seen it)."""
    try:
        yield
    except APIConnectionError as exc:
        issued.unknown() if exc.request_sent else issued.not_sent()
        raise
    except BaseException:
        issued.unknown()
        raise


@asynccontextmanager
async def asettled_if_send_fails(issued: IssuedCode) -> AsyncIterator[None]:
    """:func:`settled_if_send_fails` settling through :meth:`IssuedCode.asettle`."""
    try:
        yield
    except APIConnectionError as exc:
        await issued.asettle("unknown" if exc.request_sent else "not_sent")
        raise
    except BaseException:
        await issued.asettle("unknown")
        raise


@runtime_checkable
class CodeProvider(Protocol):
    """Anything that can answer an MFA challenge."""

    async def issue(self, challenge: MfaChallenge) -> IssuedCode:
        """A code for ``challenge``, to be settled once by whoever sends it.

        Args:
            challenge: What the server asked for.
        """
        ...


class TotpCodeProvider:
    """Codes from a TOTP secret, replay-safe (see :mod:`mfa_common.replay_guard`).

    A code is never issued for a time step already used with this secret, across processes
    too (the default step registry); the provider waits for the next step instead.

    Args:
        secret: A :class:`~mfa_common.totp.Totp`, a base32 secret or an ``otpauth://`` URI.
        clock: The clock codes are made by (default: the system clock).
        min_remaining: A code with fewer seconds left in its step than this waits for the next
            step (it might expire on the way).
        registry: Where used steps are recorded (default: the default step registry, shared
            across processes; ``STEP_REGISTRY`` keeps them in the process).
    """

    def __init__(
        self,
        secret: Totp | str | Secret[str],
        *,
        clock: Clock | None = None,
        min_remaining: float = C.TOTP_MIN_REMAINING,
        registry: StepRegistry | None = None,
    ) -> None:
        if isinstance(secret, Totp):
            self.totp = secret
        else:
            raw = wrap(secret)
            self.totp = Totp.from_uri(raw) if raw.reveal().lower().startswith("otpauth://") else Totp(raw)
        self.clock = clock
        self.min_remaining = min_remaining
        self.registry = registry

    async def issue(self, challenge: MfaChallenge) -> IssuedCode:
        """A code for ``challenge``, to be settled once by whoever sends it.

        Args:
            challenge: What the server asked for.
        """
        issued = await next_totp(
            self.totp, clock=self.clock, min_remaining=self.min_remaining, registry=self.registry
        )
        return IssuedCode(issued.code, "totp")

    def __repr__(self) -> str:
        return f"TotpCodeProvider({self.totp!r})"


class RecoveryCodeProvider:
    """One recovery code per attempt from a :class:`RecoveryCodeStore`, never reused.

    Args:
        store: The store the codes are reserved from and settled in.
    """

    def __init__(self, store: RecoveryCodeStore) -> None:
        self.store = store

    async def issue(self, challenge: MfaChallenge) -> IssuedCode:
        """A code for ``challenge``, to be settled once by whoever sends it.

        Args:
            challenge: What the server asked for.
        """
        reservation = await self.store.areserve()  # a persisted store writes off the event loop
        return IssuedCode(
            reservation.code, "recovery", _settler(reservation), on_asettle=_async_settler(reservation)
        )

    def __repr__(self) -> str:
        return f"RecoveryCodeProvider({self.store!r})"


def _settler(reservation: RecoveryCodeReservation) -> Callable[[str], None]:
    def settle(outcome: str) -> None:
        if outcome == "accepted":
            reservation.mark_used()
        elif outcome == "rejected":
            reservation.mark_rejected()
        elif outcome == "not_sent":
            reservation.release()
        else:
            reservation.mark_uncertain()

    return settle


def _async_settler(reservation: RecoveryCodeReservation) -> Callable[[str], Awaitable[None]]:
    async def settle(outcome: str) -> None:
        if outcome == "accepted":
            await reservation.amark_used()
        elif outcome == "rejected":
            await reservation.amark_rejected()
        elif outcome == "not_sent":
            await reservation.arelease()
        else:
            await reservation.amark_uncertain()

    return settle


CodeCallback = Callable[[MfaChallenge], "Awaitable[str | Secret[str]] | str | Secret[str]"]

#: ``digits`` of :class:`CallbackCodeProvider` by default: follow the challenge's kind.
BY_CHALLENGE: Literal["by-challenge"] = "by-challenge"


def _is_async(callback: object) -> bool:
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


class CallbackCodeProvider:
    """Asks a person (or any function) for the code: ``callback(challenge) -> str``.

    An ``async`` callback is awaited; a plain one (a CLI prompt reading the terminal) runs in a
    worker thread, so the event loop keeps serving other tasks (and the connections of its
    pool) while a person types.

    Args:
        callback: Given the :class:`MfaChallenge`, returns the code (or awaits it).
        kind: The kind of code it gives for a TOTP challenge (a PIN or recovery challenge is
            answered with a code of that kind).
        digits: Checks the shape before anything is sent (a malformed code must not cost a
            lockout attempt). By default it follows the challenge: 6 digits for a TOTP
            challenge, only "not empty" for a PIN (a Quatrix PIN is 5 characters, checked by
            its login step), a recovery code or another factor. Give a number to require that
            many digits always, or ``None`` to skip the check.
    """

    def __init__(
        self,
        callback: CodeCallback,
        *,
        kind: CodeKind = "totp",
        digits: int | Literal["by-challenge"] | None = BY_CHALLENGE,
    ) -> None:
        self.callback = callback
        self.kind: CodeKind = kind
        self.digits = digits

    def _digits_for(self, challenge: MfaChallenge) -> int | None:
        if self.digits == BY_CHALLENGE:
            return C.TOTP_DIGITS if challenge.kind == "totp" else None
        return self.digits if isinstance(self.digits, int) else None

    async def issue(self, challenge: MfaChallenge) -> IssuedCode:
        """A code for ``challenge``, to be settled once by whoever sends it.

        Args:
            challenge: What the server asked for.
        """
        if _is_async(self.callback):
            result = self.callback(challenge)
        else:
            import anyio.to_thread  # loaded on first use, not by an import of the SDK

            result = await anyio.to_thread.run_sync(self.callback, challenge, abandon_on_cancel=True)
        if inspect.isawaitable(result):
            result = await result
        value = wrap(result)
        digits = self._digits_for(challenge)
        if digits is not None:
            value = Secret(validate_code_format(value.reveal(), digits=digits))
        elif not value.reveal().strip():
            raise InvalidCodeError("an empty code was given")
        kind: CodeKind = self.kind
        if challenge.kind in ("pin", "recovery") and self.kind == "totp":
            kind = "pin" if challenge.kind == "pin" else "recovery"
        return IssuedCode(value, kind)


class StaticCodeProvider:
    """A fixed factor such as a Quatrix user PIN.

    Args:
        code: The code, offered to every challenge.
        kind: Its kind (``"pin"`` by default).
    """

    def __init__(self, code: str | Secret[str], *, kind: CodeKind = "pin") -> None:
        self._code = wrap(code)
        self.kind: CodeKind = kind

    async def issue(self, challenge: MfaChallenge) -> IssuedCode:
        """A code for ``challenge``, to be settled once by whoever sends it.

        Args:
            challenge: What the server asked for.
        """
        return IssuedCode(self._code, self.kind)

    def __repr__(self) -> str:
        return f"StaticCodeProvider(kind={self.kind!r}, code=Secret('***'))"
