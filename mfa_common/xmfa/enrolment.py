"""``enrol_totp``: turn TOTP on for the logged-in user in one awaited call.

generate → show the ``otpauth://`` link / secret through the caller's callback → confirm with
a fresh, replay-safe code (enable) → store the recovery codes. The call cannot leave MFA
half-enabled without saying so:

* anything failing before or at enable raises :class:`~mfa_common.xmfa.MfaNotEnabledError`
  (the cause chained): MFA is **not** on;
* if the enable answer is lost (connection dropped after sending, 5xx, timeout), the account is
  asked (``GET /api/auth/user``, field ``mfa``) before deciding; if that fails too,
  :class:`~mfa_common.xmfa.MfaEnableOutcomeUnknownError` carries the codes and the secret;
* if enable succeeded but storing the codes failed,
  :class:`~mfa_common.xmfa.RecoveryCodesNotStoredError` says MFA **is** on and carries the codes
  (as Secrets) and the intended path.

From the moment the enable request is sent until the codes are stored, cancellation is held
back (shielded), so the caller always learns the outcome; the client's deadline bounds it.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable, Sequence

import attrs

from ..clock import Clock
from ..errors import APIConnectionError, APIError, APIStatusError, ServerError
from ..recovery_codes import RecoveryCodeFormat, RecoveryCodeStore
from ..replay_guard import StepRegistry, next_totp
from ..secret import Secret
from ..totp import Totp
from .client import XMfaClient
from .errors import MfaEnableOutcomeUnknownError, MfaNotEnabledError, RecoveryCodesNotStoredError

__all__ = ["Enrolment", "ShowCallback", "StoreFactory", "enrol_totp"]

#: ``show(link, secret)``: display the QR code / secret to the user (sync or async).
ShowCallback = Callable[[Secret[str], Secret[str]], "Awaitable[None] | None"]
#: Builds the store that keeps the new recovery codes (default: a RecoveryCodeStore).
StoreFactory = Callable[[Sequence[Secret[str]]], RecoveryCodeStore]


@attrs.frozen
class Enrolment:
    """A completed enrolment: the TOTP to log in with, and the store holding the codes."""

    totp: Totp
    recovery_codes: RecoveryCodeStore


async def enrol_totp(
    client: XMfaClient,
    *,
    show: ShowCallback,
    store_path: str | os.PathLike[str] | None = None,
    store_factory: StoreFactory | None = None,
    clock: Clock | None = None,
    registry: StepRegistry | None = None,
) -> Enrolment:
    """Enable TOTP for the client's user; see the module docstring for the guarantees.

    Args:
        client: A client logged in as the user.
        show: ``show(link, secret)`` displays the ``otpauth://`` link (a QR code) and the secret
            to the user; sync or async.
        store_path: Persists the recovery codes (owner-only file, written atomically).
        store_factory: Replaces the default store; with neither, the codes live in memory in
            the returned store.
        clock: The clock of the replay-safe code (default: the client's).
        registry: The step registry of the replay-safe code (default: the default step
            registry, shared across processes).

    Returns:
        The TOTP to log in with, and the store holding the codes.

    Raises:
        MfaNotEnabledError: Anything failed before or at enable: MFA is not on.
        MfaEnableOutcomeUnknownError: The enable answer was lost and the account could not be
            checked; it carries the codes and the secret.
        RecoveryCodesNotStoredError: MFA is on but the codes could not be stored; it carries
            them.
    """
    path = os.fspath(store_path) if store_path is not None else None
    if store_factory is None:

        def store_factory(codes: Sequence[Secret[str]]) -> RecoveryCodeStore:
            # New codes void the old ones: an earlier store at the path is replaced.
            return RecoveryCodeStore(codes, format=RecoveryCodeFormat.SHELLHUB, path=path, replace=True)

    try:
        generated = await client.mfa.generate()
        totp = Totp(generated.secret)
        shown = show(generated.link, generated.secret)
        if inspect.isawaitable(shown):
            await shown
        issued = await next_totp(totp, clock=clock or client.clock, registry=registry)
    except MfaNotEnabledError:
        raise
    except Exception as exc:
        raise MfaNotEnabledError(f"enrolment stopped before enabling MFA ({type(exc).__name__})") from exc

    import anyio  # loaded on first use, not by an import of the SDK

    codes = generated.recovery_codes
    with anyio.CancelScope(shield=True):
        try:
            await client.mfa.enable(issued.code, generated.secret, codes)
        except APIStatusError as exc:
            if not isinstance(exc, ServerError):
                raise MfaNotEnabledError(f"the server refused to enable MFA ({exc.status_code})") from exc
            await _settle_uncertain(client, exc, codes, generated.secret)
        except APIConnectionError as exc:
            if not exc.request_sent:
                raise MfaNotEnabledError("the enable request was never sent") from exc
            await _settle_uncertain(client, exc, codes, generated.secret)
        try:
            store = store_factory(codes)
        except Exception as exc:
            raise RecoveryCodesNotStoredError(
                f"MFA IS enabled, but the recovery codes could not be stored ({type(exc).__name__}); "
                "save the codes carried by this error",
                codes=codes,
                path=path,
            ) from exc
    return Enrolment(totp=totp, recovery_codes=store)


async def _settle_uncertain(
    client: XMfaClient, cause: APIError, codes: Sequence[Secret[str]], secret: Secret[str]
) -> None:
    """After a lost enable answer, ask the server whether MFA is now on; return if it is."""
    try:
        user = await client.user.get()
    except Exception as exc:
        raise MfaEnableOutcomeUnknownError(
            "the enable answer was lost and the account could not be checked; MFA may be on: "
            "keep the codes and secret carried by this error",
            codes=codes,
            secret=secret,
        ) from exc
    if not user.mfa:
        raise MfaNotEnabledError(
            "the enable request failed; the account confirms MFA is not enabled"
        ) from cause
