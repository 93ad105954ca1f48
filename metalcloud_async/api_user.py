"""``client.user``: the caller's own account: profile, 2FA, API key, JWT salt, password and
e-mail (``/api/v2/user/...``)."""

from __future__ import annotations

from typing import Any

from mfa_common._httpx import Response
from mfa_common.auth import ApiKeyAuth, CredentialAuth
from mfa_common.clock import Clock
from mfa_common.code_providers import CodeProvider, IssuedCode, MfaChallenge, TotpCodeProvider
from mfa_common.errors import AuthenticationError, ConflictError, InvalidInputError
from mfa_common.options import RequestOptions
from mfa_common.requestor import Requestor
from mfa_common.secret import Secret, wrap
from mfa_common.totp import Totp, validate_code_format
from mfa_common.wire import build_status_error, parse_json_body

from . import _constants as C
from ._base import MetalCloudAPIGroup
from .auth import MetalCloudApiKeyAuth, MetalCloudLoginAuth
from .enrolment import send_enable_code
from .errors import TwoFactorAlreadyDisabledError, refined
from .models import (
    ApiKeyRegeneration,
    ChangeUserEmail,
    PasswordReset,
    TwoFactorAuthenticationSecret,
    User,
    UserApiKey,
    UserUpdatePassword,
    converter,
)
from .protocol import LATEST, Revision, check_revision, if_match_value

__all__ = ["CodeSource", "UserAPI", "code_provider_of"]

P = C.API_PREFIX
#: What a 2FA code may be given as: a code, a provider, or the secret itself (a fresh code).
CodeSource = str | Secret[str] | CodeProvider | Totp | TwoFactorAuthenticationSecret


def code_provider_of(code: CodeSource, *, clock: Clock | None = None) -> CodeProvider:
    """A code provider for ``code``: a secret (a :class:`TwoFactorAuthenticationSecret` or a
    :class:`~mfa_common.totp.Totp`) gives fresh replay-safe codes; a typed code is offered once
    (checked before anything is sent); a provider is itself."""
    if isinstance(code, TwoFactorAuthenticationSecret):
        return TotpCodeProvider(code.totp(), clock=clock)
    if isinstance(code, Totp):
        return TotpCodeProvider(code, clock=clock)
    if isinstance(code, (str, Secret)):
        return _FixedCode(Secret(validate_code_format(wrap(code).reveal(), digits=6)))
    return code


class UserAPI(MetalCloudAPIGroup):
    """``client.user``: the caller's own account (``/api/v2/user/...``): profile, 2FA, API key,
    JWT salt, password and e-mail."""

    def __init__(self, requestor: Requestor, *, clock: Clock | None = None) -> None:
        super().__init__(requestor)
        self._clock = clock

    async def get(self, *, recursion: int | None = None, options: RequestOptions | None = None) -> User:
        """``GET /api/v2/user``: the caller, with ``revision`` and the ``ETag`` header.

        Args:
            recursion: How deep the server expands related objects (its ``recursion`` query).
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return await self._get_user(f"{P}/user", recursion=recursion, options=options)

    async def revision(self, *, options: RequestOptions | None = None) -> int:
        """The caller's current revision (what ``revision=LATEST`` reads).

        Args:
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return (await self.get(options=options)).revision

    async def generate_2fa(self, *, options: RequestOptions | None = None) -> TwoFactorAuthenticationSecret:
        """``POST /api/v2/user/actions/2fa-generate``: a new secret and its QR code.

        2FA is on only after :meth:`enable_2fa`.

        Args:
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The secret (``secret2FA``) and its QR code (PNG data URI, decoded by ``.qr_png``).
        """
        response = await self._requestor.request("POST", f"{P}/user/actions/2fa-generate", options=options)
        return self._decode(response, TwoFactorAuthenticationSecret)

    async def enable_2fa(
        self,
        code: CodeSource,
        *,
        revision: Revision = LATEST,
        options: RequestOptions | None = None,
    ) -> None:
        """``POST /api/v2/user/actions/2fa-enable`` with a TOTP code proving enrolment.

        The spec lists 428 but no 412 here.

        Args:
            code: A 6-digit code, a code provider, or the secret itself (the
                :class:`TwoFactorAuthenticationSecret` from :meth:`generate_2fa`, or a
                :class:`~mfa_common.totp.Totp`): a fresh, replay-safe code is then computed
                (waiting for the next time step if this process already used the current one).
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            TwoFactorAlreadyEnabledError: 2FA is on already (409).
            TwoFactorCodeRejectedError: A wrong or reused code (400).
        """
        check_revision(revision)
        provider = code_provider_of(code, clock=self._clock)
        if revision == LATEST:
            revision = await self.revision(options=options)
        issued = await provider.issue(MfaChallenge(kind="totp"))
        headers = {"If-Match": if_match_value(revision)} if revision is not None else None
        await send_enable_code(self._requestor, issued, headers, options=options)

    async def disable_2fa(
        self, *, revision: Revision = LATEST, options: RequestOptions | None = None
    ) -> None:
        """``POST /api/v2/user/actions/2fa-disable``.

        Args:
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Raises:
            TwoFactorAlreadyDisabledError: 2FA is off (409).
        """
        with refined(ConflictError, TwoFactorAlreadyDisabledError):
            await self._write_own("2fa-disable", revision=revision, retry_on_stale=False, options=options)

    async def get_api_key(self, *, options: RequestOptions | None = None) -> UserApiKey:
        """``GET /api/v2/user/api-key``: the caller's API key (a Secret).

        Args:
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        return await self._get(f"{P}/user/api-key", UserApiKey, options=options)

    async def regenerate_api_key(
        self,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> ApiKeyRegeneration:
        """``POST /api/v2/user/actions/regenerate-api-key``: a new key; the old one dies at once.

        The new key is read from the answer's ``apiKey`` field when present (the fake's way;
        UNCONFIRMED on the real server, whose spec returns a plain ``User``), else re-read with
        ``GET /api/v2/user/api-key``: the old key cannot be kept, since it dies at once. On a JWT
        session that read works. A client authenticated by API key switches to the new key
        immediately (``switched=True``); requests in flight with the old key are replayed once
        with it.

        Args:
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            retry_on_stale: On 412 (a stale revision), re-read it and send the write once more.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The user, the new key and whether the client switched to it.

        Raises:
            AuthenticationError: A client authenticated by the old key could not read the new one
                (the answer did not carry it): said at once, never a wait.
        """
        backend = self._requestor.auth
        rotating = isinstance(backend, MetalCloudApiKeyAuth)
        if isinstance(backend, MetalCloudApiKeyAuth):
            backend.begin_rotation()
        try:
            response = await self._write_own(
                "regenerate-api-key", revision=revision, retry_on_stale=retry_on_stale, options=options
            )
            body = parse_json_body(response)
            user = self._user(response)
            raw = body.get("apiKey") if isinstance(body, dict) else None
            key = Secret(raw) if isinstance(raw, str) and raw else None
            if key is None:
                # The spec's plain User answer: re-read the key. The rotation is over, so a 401
                # now fails at once instead of waiting on itself; with an API-key client the old
                # key is already dead and the read fails with a typed error saying so.
                if rotating and isinstance(backend, MetalCloudApiKeyAuth):
                    backend.end_rotation()
                try:
                    key = (await self.get_api_key(options=options)).api_key
                except AuthenticationError as exc:
                    if not rotating or exc.response is None:
                        raise
                    raise build_status_error(
                        exc.response,
                        server_message="the API key was regenerated but the answer did not carry it, and "
                        "the old key is dead: read the new one with a JWT session (GET /api/v2/user/api-key)",
                        cls=AuthenticationError,
                    ) from None
            switched = False
            if isinstance(backend, ApiKeyAuth):
                backend.set_key(key)
                switched = True
        finally:
            if rotating and isinstance(backend, MetalCloudApiKeyAuth):
                backend.end_rotation()
        return ApiKeyRegeneration(user=user, api_key=key, switched=switched)

    async def regenerate_jwt_salt(
        self,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> User:
        """``POST /api/v2/user/actions/regenerate-jwt-salt``: invalidates every JWT of the caller.

        All sessions are logged out. A client on a JWT session drops it and logs in again on its
        next request.

        Args:
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            retry_on_stale: On 412 (a stale revision), re-read it and send the write once more.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The user, with its new revision.
        """
        response = await self._write_own(
            "regenerate-jwt-salt",
            revision=revision,
            retry_on_stale=retry_on_stale,
            options=options,
        )
        backend = self._requestor.auth
        if isinstance(backend, CredentialAuth):
            current = backend.credential
            if current is not None:
                backend.invalidate(current)
        return self._user(response)

    async def change_password(
        self,
        new_password: str | Secret[str],
        *,
        old_password: str | Secret[str] | None = None,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> User:
        """``POST /api/v2/user/actions/change-password``.

        A client logged in by password keeps the new one for its next login.

        Args:
            new_password: The new password (not empty).
            old_password: The current password, when the server asks for it.
            revision: The user's revision, sent as ``If-Match``: a number, ``LATEST`` (default: read
                first, as the official CLI does) or None (no ``If-Match``; the real server answers
                428).
            retry_on_stale: On 412 (a stale revision), re-read it and send the write once more.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The user, with its new revision.
        """
        if not wrap(new_password).reveal():
            raise InvalidInputError("the new password is empty")
        payload = converter.unstructure(
            UserUpdatePassword(
                new_password=wrap(new_password),
                old_password=wrap(old_password) if old_password is not None else None,
            )
        )
        response = await self._write_own(
            "change-password",
            revision=revision,
            retry_on_stale=retry_on_stale,
            options=options,
            json=payload,
        )
        backend = self._requestor.auth
        if isinstance(backend, MetalCloudLoginAuth):
            backend.set_password(new_password)
        return self._user(response)

    async def initiate_email_change(
        self, email: str, *, redirect_url: str | None = None, options: RequestOptions | None = None
    ) -> User:
        """``POST /api/v2/user/actions/initiate-email-change``: mail a verification link to ``email``.

        The address changes when :meth:`verify_email` gets its token.

        Args:
            email: The new address.
            redirect_url: Where the link in the mail leads.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        payload = converter.unstructure(ChangeUserEmail(email=email, redirect_url=redirect_url))
        response = await self._requestor.request(
            "POST", f"{P}/user/actions/initiate-email-change", json=payload, options=options
        )
        return self._user(response)

    async def initiate_password_reset(
        self, email: str, *, redirect_url: str | None = None, options: RequestOptions | None = None
    ) -> None:
        """``POST /api/v2/user/actions/initiate-password-reset``: mail a reset link to ``email``.

        Authenticated, oddly, per the spec.

        Args:
            email: The address.
            redirect_url: Where the link in the mail leads.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        payload = converter.unstructure(PasswordReset(email=email, redirect_url=redirect_url))
        await self._requestor.request(
            "POST", f"{P}/user/actions/initiate-password-reset", json=payload, options=options
        )

    async def verify_email(self, token: str | Secret[str], *, options: RequestOptions | None = None) -> None:
        """``GET /api/v2/user/actions/verify-email?token=``: apply an e-mail verification token.

        Not retried (a single-use token: a blind replay could only fail).

        Args:
            token: The token of the mail.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        await self._token_action("verify-email", token, options)

    async def reset_password(
        self, token: str | Secret[str], *, options: RequestOptions | None = None
    ) -> None:
        """``GET /api/v2/user/actions/reset-password?token=``: apply a password reset token.

        Not retried (single-use token).

        Args:
            token: The token of the mail.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        await self._token_action("reset-password", token, options)

    async def _write_own(
        self,
        action: str,
        *,
        revision: Revision,
        retry_on_stale: bool,
        options: RequestOptions | None,
        json: Any = None,
    ) -> Response:
        """A conditional write to ``/api/v2/user/actions/<action>`` with the caller's revision
        (read first for ``LATEST``, re-read on 412 when ``retry_on_stale``)."""
        return await self._write(
            f"{P}/user/actions/{action}",
            revision=revision,
            read_revision=self.revision,
            retry_on_stale=retry_on_stale,
            options=options,
            json=json,
        )

    async def _token_action(
        self, action: str, token: str | Secret[str], options: RequestOptions | None
    ) -> None:
        value = wrap(token).reveal()
        if not value:
            raise InvalidInputError("the token is empty")
        await self._requestor.request(
            "GET",
            f"{P}/user/actions/{action}",
            params={"token": value},
            options=options,
            idempotent=False,
        )


class _FixedCode:
    """A code the caller typed, offered once."""

    def __init__(self, value: Secret[str]) -> None:
        self._value = value

    async def issue(self, challenge: MfaChallenge) -> IssuedCode:
        return IssuedCode(self._value, "totp")
