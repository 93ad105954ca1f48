"""``client.mfa``: the caller's own MFA: generate a secret, enable, disable (by a code, a
recovery code, the e-mailed codes, or inside the recovery window)."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidInputError
from ..options import RequestOptions
from ..recovery_codes import RecoveryCodeFormat, normalize_recovery_code
from ..requestor import Requestor
from ..secret import Secret, wrap
from ._base import XMfaAPIGroup
from .models import MfaDisable, MfaEnable, MfaGenerate, converter
from .protocol import XMfaPaths, normalize_email_code, totp_code

__all__ = ["MfaAPI"]


class MfaAPI(XMfaAPIGroup):
    """``client.mfa``: the caller's own MFA (generate a secret, enable, disable)."""

    def __init__(
        self, requestor: Requestor, paths: XMfaPaths, *, recovery_code_format: RecoveryCodeFormat
    ) -> None:
        super().__init__(requestor, paths)
        self._recovery_code_format = recovery_code_format

    async def generate(self, *, options: RequestOptions | None = None) -> MfaGenerate:
        """``GET /api/user/mfa/generate``: a new secret, its ``otpauth://`` link and recovery codes.

        All are Secrets. Nothing is enabled until :meth:`enable` (or use
        :func:`mfa_common.xmfa.enrol_totp`).

        Args:
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            ConflictError: MFA is already enabled (409).
        """
        response = await self._requestor.request("GET", self._paths.generate, options=options)
        return self._decode(response, MfaGenerate)

    async def enable(
        self,
        code: str | Secret[str],
        secret: str | Secret[str],
        recovery_codes: Sequence[str | Secret[str]],
        *,
        options: RequestOptions | None = None,
    ) -> None:
        """``PUT /api/user/mfa/enable``: confirm the generated secret with a current code.

        Args:
            code: A current 6-digit code of ``secret``.
            secret: The secret of :meth:`generate`.
            recovery_codes: The recovery codes of :meth:`generate`.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            MfaCodeRejectedError: A wrong code.
        """
        body = converter.unstructure(
            MfaEnable(totp_code(code), wrap(secret), tuple(wrap(c) for c in recovery_codes))
        )
        # PUT, but not safe to repeat: a replay after a lost answer meets "already enabled".
        await self._requestor.request("PUT", self._paths.enable, json=body, idempotent=False, options=options)

    async def disable(
        self,
        *,
        code: str | Secret[str] | None = None,
        recovery_code: str | Secret[str] | None = None,
        main_email_code: str | Secret[str] | None = None,
        recovery_email_code: str | Secret[str] | None = None,
        options: RequestOptions | None = None,
    ) -> None:
        """``PUT /api/user/mfa/disable`` with exactly one factor.

        With none, an empty body, accepted only inside the 10-minute window after
        :meth:`SessionAPI.recover`. Rejections are typed by the factor sent
        (``MfaCodeRejectedError``, ``RecoveryCodeRejectedError``, ``EmailCodeRejectedError``).

        Args:
            code: A TOTP code.
            recovery_code: A recovery code.
            main_email_code: The code mailed to the main address (with ``recovery_email_code``).
            recovery_email_code: The code mailed to the recovery address (with
                ``main_email_code``).
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            RecoveryWindowClosedError: No factor, outside the recovery window.
            InvalidInputError: More than one factor, or one e-mail code without the other.
        """
        factors = sum(x is not None for x in (code, recovery_code)) + (
            main_email_code is not None or recovery_email_code is not None
        )
        if factors > 1:
            raise InvalidInputError("give one of code, recovery_code or the two e-mail codes")
        if (main_email_code is None) != (recovery_email_code is None):
            raise InvalidInputError("main_email_code and recovery_email_code must come together")
        model = MfaDisable(
            code=totp_code(code) if code is not None else None,
            recovery_code=(
                normalize_recovery_code(recovery_code, self._recovery_code_format)
                if recovery_code is not None
                else None
            ),
            main_email_code=normalize_email_code(main_email_code) if main_email_code is not None else None,
            recovery_email_code=(
                normalize_email_code(recovery_email_code) if recovery_email_code is not None else None
            ),
        )
        body = converter.unstructure(model)
        await self._requestor.request(
            "PUT", self._paths.disable, json=body, idempotent=False, options=options
        )

    async def recovery_disable(self, *, options: RequestOptions | None = None) -> None:
        """``PUT /api/user/mfa/recovery/disable``: disable MFA inside the recovery window.

        Servers since 2026-07; no body.

        Args:
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            RecoveryWindowClosedError: Outside the window.
        """
        await self._requestor.request("PUT", self._paths.recovery_disable, idempotent=False, options=options)
