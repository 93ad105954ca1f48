"""ProfileAPI: the logged-in user's profile, password and own MFA settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mfa_common.options import RequestOptions
from mfa_common.secret import Secret, wrap
from mfa_common.wire import decode_error

from . import protocol
from ._base import QuatrixAPIGroup
from .protocol import auth_type_of

if TYPE_CHECKING:
    # The models load with the first call (see quatrix_async/__init__.py).
    from .models import (
        AuthType,
        ProfileInfoResp,
        ProfileRemoveMfaResp,
        ProfileResp,
        ProfileSetMfaResp,
        ProfileSetPasswordResp,
        ProfileSetResp,
        TwoFactorSecret,
    )

__all__ = ["ProfileAPI"]


class ProfileAPI(QuatrixAPIGroup):
    """``client.profile``: the logged-in user's profile, password and own MFA settings (``/profile/*``)."""

    async def get(self, *, options: RequestOptions | None = None) -> ProfileResp:
        """``GET /profile``: the logged-in user's profile.

        Args:
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        from .models import ProfileResp

        return self._decode(await self._requestor.request("GET", "profile", options=options), ProfileResp)

    async def info(self, *, options: RequestOptions | None = None) -> ProfileInfoResp:
        """``GET /profile/info``: used and available user licences and storage of the account.

        Args:
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        from .models import ProfileInfoResp

        return self._decode(
            await self._requestor.request("GET", "profile/info", options=options), ProfileInfoResp
        )

    async def update(
        self,
        *,
        name: str | None = None,
        email: str | None = None,
        language: str | None = None,
        message_signature: str | None = None,
        options: RequestOptions | None = None,
    ) -> ProfileSetResp:
        """``POST /profile/set``: change the given fields only (the others are not sent).

        Setting a field to the same value twice is harmless, so the call is retried like a read.

        Args:
            name: The new display name.
            email: The new e-mail address.
            language: The new language code.
            message_signature: The new signature of the user's messages.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        from .models import ProfileSetReq, ProfileSetResp, converter

        body = ProfileSetReq(name=name, email=email, language=language, message_signature=message_signature)
        response = await self._requestor.request(
            "POST", "profile/set", json=converter.unstructure(body), idempotent=True, options=options
        )
        return self._decode(response, ProfileSetResp)

    async def set_password(
        self,
        current_password: str | Secret[str],
        new_password: str | Secret[str],
        *,
        options: RequestOptions | None = None,
    ) -> ProfileSetPasswordResp:
        """``POST /profile/set-password``: both passwords travel base64-encoded, as the API wants.

        Not retried: after a lost answer the current password may already have changed.

        Args:
            current_password: The password now.
            new_password: The new password, 6 to 64 characters (checked before sending).
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        from .models import ProfileSetPasswordResp

        body = protocol.set_password_body(current_password, new_password)
        response = await self._requestor.request(
            "POST", "profile/set-password", json=body, idempotent=False, options=options
        )
        return self._decode(response, ProfileSetPasswordResp)

    async def generate_2fa(self, *, options: RequestOptions | None = None) -> TwoFactorSecret:
        """``GET /profile/2fa/generate``: a new pending 2FA secret, as a QR code image.

        The server answers ``application/octet-stream`` (CONFIRMED since API v1.0-123) holding a
        PNG (raw, base64 or a data URI; which one is UNCONFIRMED, all are read) and no secret.
        With the ``qr`` extra installed (``pip install 'mfa-sdks[qr]'``) the QR code is decoded at
        once, so ``result.uri`` and ``result.secret`` are set and ``result.totp()`` gives the
        codes: a service account can enrol with no person scanning anything. Confirm with
        :meth:`set_mfa` and a current code.

        Args:
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The pending secret; ``result.qr_png.reveal()`` is the PNG.

        Raises:
            ResponseDecodeError: The answer holds no PNG image.
        """
        response = await self._requestor.request(
            "GET",
            "profile/2fa/generate",
            headers={"Accept": "application/octet-stream, application/json"},
            idempotent=False,
            options=options,
        )
        import cattrs  # loaded with the converter, not by an import of the package

        from .models import two_factor_from_body, with_decoded_qr

        try:
            result = two_factor_from_body(response.content, response.headers.get("content-type"))
        except (ValueError, TypeError, cattrs.BaseValidationError) as exc:
            raise decode_error(
                response, f"the answer holds no PNG image ({len(response.content)} bytes)"
            ) from exc
        return with_decoded_qr(result)

    async def set_mfa(
        self,
        auth_type: AuthType | str,
        code: str | Secret[str],
        *,
        options: RequestOptions | None = None,
    ) -> ProfileSetMfaResp:
        """``POST /profile/set-mfa``: turn MFA on for the logged-in user.

        Args:
            auth_type: ``"2FA"`` or ``"PIN"``.
            code: For ``"2FA"``, a current code of the secret from :meth:`generate_2fa`; for
                ``"PIN"``, the new PIN.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The ids of the sessions the server closed.
        """
        from .models import ProfileSetMfaReq, ProfileSetMfaResp, converter

        kind = auth_type_of(auth_type)
        body = ProfileSetMfaReq(auth_type=kind, code=protocol.validate_mfa_code(kind, wrap(code)))
        response = await self._requestor.request(
            "POST", "profile/set-mfa", json=converter.unstructure(body), idempotent=False, options=options
        )
        return self._decode(response, ProfileSetMfaResp)

    async def remove_mfa(
        self, auth_type: AuthType | str, *, options: RequestOptions | None = None
    ) -> ProfileRemoveMfaResp:
        """``POST /profile/remove-mfa``: turn MFA off for the logged-in user.

        Refused when an administrator forced it.

        Args:
            auth_type: ``"2FA"`` or ``"PIN"``.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        from .models import ProfileRemoveMfaReq, ProfileRemoveMfaResp, converter

        body = ProfileRemoveMfaReq(auth_type=auth_type_of(auth_type))
        response = await self._requestor.request(
            "POST", "profile/remove-mfa", json=converter.unstructure(body), idempotent=True, options=options
        )
        return self._decode(response, ProfileRemoveMfaResp)
