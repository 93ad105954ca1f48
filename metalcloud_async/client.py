"""The MetalCloud v2 client: ``client.user`` (the caller's account), ``client.users`` (user
administration, with the sub-groups ``limits``, ``delegates``, ``permissions`` and ``ssh_keys``;
the administration calls are in :mod:`~metalcloud_async.api_users_admin` and the ``api_*``
modules) and ``client.auth`` (login, login-2fa, logout, the authentication-provider lookup and
completing a forced 2FA re-enrolment).

Optimistic concurrency: every write takes ``revision``: a number (sent as ``If-Match: <n>``,
the bare decimal revision as the official CLI sends it), :data:`~metalcloud_async.protocol.LATEST`
(the default: read the current revision first, as the official CLI does) or ``None`` (send no
``If-Match``; the real server then answers 428). A stale revision raises
:class:`~mfa_common.errors.PreconditionFailedError` (412), a missing one
:class:`~mfa_common.errors.PreconditionRequiredError` (428). With ``retry_on_stale=True`` a
write that met 412 re-reads the revision and is sent once more; it is never retried silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mfa_common._httpx import URL, Auth, Response
from mfa_common.auth import ApiKeyAuth, CredentialAuth
from mfa_common.client import BaseClient, RequestOptions, build_status_error, parse_json_body, structure
from mfa_common.clock import Clock
from mfa_common.code_providers import (
    CodeProvider,
    IssuedCode,
    MfaChallenge,
    TotpCodeProvider,
)
from mfa_common.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    PreconditionFailedError,
)
from mfa_common.options import ClientOptions, check_credentials
from mfa_common.secret import Secret, wrap
from mfa_common.totp import Totp, validate_code_format

from . import _constants as C
from ._results import check_revision as _check_revision
from ._results import user_from as _user
from .api_delegates import UserDelegatesAPI
from .api_limits import UserLimitsAPI
from .api_permissions import UserPermissionsAPI
from .api_ssh_keys import UserSshKeysAPI
from .api_users_admin import UsersAdminMixin
from .auth import (
    LoginStep,
    MetalCloudApiKeyAuth,
    MetalCloudLoginAuth,
    logout_request,
    password_step,
    second_factor_step,
    status_error,
)
from .enrolment import EnrolmentCode, enrol_with_login_session, pending_step, send_enable_code
from .errors import (
    TwoFactorAlreadyDisabledError,
    TwoFactorEnrolmentRequiredError,
    map_error,
)
from .models import (
    ApiKeyRegeneration,
    AuthenticationUserProvider,
    ChangeUserEmail,
    LogoutResponse,
    PasswordReset,
    SuspendReasonType,
    TwoFactorAuthenticationSecret,
    User,
    UserApiKey,
    UserInfo,
    UserPaginatedList,
    UserSuspend,
    UserSuspendReason,
    UserUpdatePassword,
    converter,
)
from .protocol import LATEST, FilterValue, ListQuery, Revision, if_match_value, next_page, user_path

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["MetalCloudClient", "SessionAPI", "UserAPI", "UsersAPI"]

P = C.API_PREFIX
CodeSource = str | Secret[str] | CodeProvider | Totp | TwoFactorAuthenticationSecret


class MetalCloudClient(BaseClient):
    """Async client of the MetalCloud v2 API.

    Credentials, one of: ``api_key`` (``Authorization: Bearer <key>``, what the official CLI
    uses); ``email`` + ``password`` (JWT session by login; a 2FA account also needs
    ``code_provider`` or ``totp_secret``); or any ``auth`` (an ``httpx.Auth``, e.g. a
    :class:`~mfa_common.auth.CredentialAuth` obtaining the JWT by the X-MFA-Token exchange,
    which is bound to this client's connection pool).

    ``clock`` drives TOTP codes and JWT refresh (share a FakeClock with the fake in tests). Other
    keywords go to :class:`~mfa_common.client.BaseClient` (timeouts, deadline, retries, transport).
    Use as ``async with MetalCloudClient(...) as client:``; closing logs a JWT session out.
    """

    api_name: ClassVar[str] = "metalcloud"
    login_keywords: ClassVar[str] = "email= and password="

    def __init__(
        self,
        base_url: str | URL,
        *,
        api_key: str | Secret[str] | None = None,
        email: str | None = None,
        password: str | Secret[str] | None = None,
        code_provider: CodeProvider | None = None,
        totp_secret: str | Secret[str] | Totp | None = None,
        auth: Auth | None = None,
        clock: Clock | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        check_credentials(
            given={"api_key": api_key, "email": email, "auth": auth},
            login_only={"password": password, "totp_secret": totp_secret, "code_provider": code_provider},
            login_key="email",
        )
        if api_key is not None:
            auth = MetalCloudApiKeyAuth(api_key)
        elif email is not None:
            if password is None:
                raise InvalidInputError("email= needs password=")
            auth = MetalCloudLoginAuth(
                email, password, code_provider=code_provider, totp_secret=totp_secret, clock=clock
            )
        super().__init__(base_url, auth=auth, error_mapper=map_error, **options)
        self.clock = clock
        if isinstance(auth, CredentialAuth):
            auth.bind(base_url=self.base_url, send=self.send_unauthenticated)
        self.user = UserAPI(self)
        self.users = UsersAPI(self)
        self.session = SessionAPI(self)

    # -- shared helpers ------------------------------------------------------------------------

    async def _json(
        self,
        method: str,
        path: str,
        *,
        options: RequestOptions | None,
        json: Any = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> tuple[Any, Response]:
        response = await self.request(
            method, path, json=json, params=params, headers=headers, options=options, idempotent=idempotent
        )
        return parse_json_body(response), response

    async def _get_user(self, path: str, recursion: int | None, options: RequestOptions | None) -> User:
        params = {"recursion": str(recursion)} if recursion is not None else None
        body, response = await self._json("GET", path, params=params, options=options)
        return _user(body, response)

    async def _write(
        self,
        path: str,
        *,
        revision: Revision,
        read_revision: Callable[[], Awaitable[int]],
        retry_on_stale: bool,
        options: RequestOptions | None,
        json: Any = None,
        method: str = "POST",
    ) -> Response:
        """A conditional write: If-Match from ``revision``, one re-read and resend on 412 when
        ``retry_on_stale``."""
        if revision == LATEST:
            revision = await read_revision()
        elif isinstance(revision, str):
            revision = if_match_value(revision)
        for attempt in (1, 2):
            headers = {"If-Match": if_match_value(revision)} if revision is not None else None
            try:
                return await self.request(method, path, json=json, headers=headers, options=options)
            except PreconditionFailedError:
                if not retry_on_stale or attempt == 2:
                    raise
                revision = await read_revision()
        raise AssertionError("unreachable")  # pragma: no cover


class UserAPI:
    """The caller's own account (``/api/v2/user/...``): profile, 2FA, API key, JWT salt,
    password and e-mail."""

    def __init__(self, client: MetalCloudClient) -> None:
        self._c = client

    async def get(self, *, recursion: int | None = None, options: RequestOptions | None = None) -> User:
        """``GET /api/v2/user``: the caller, with ``revision`` and the ``ETag`` header."""
        return await self._c._get_user(f"{P}/user", recursion, options)

    async def revision(self, *, options: RequestOptions | None = None) -> int:
        """The caller's current revision (what ``revision=LATEST`` reads)."""
        return (await self.get(options=options)).revision

    async def generate_2fa(self, *, options: RequestOptions | None = None) -> TwoFactorAuthenticationSecret:
        """``POST /api/v2/user/actions/2fa-generate``: a new secret (``secret2FA``) and its QR code
        (PNG data URI, decoded by ``.qr_png``). 2FA is on only after :meth:`enable_2fa`."""
        body, response = await self._c._json("POST", f"{P}/user/actions/2fa-generate", options=options)
        return structure(converter, body, TwoFactorAuthenticationSecret, response)

    async def enable_2fa(
        self,
        code: CodeSource,
        *,
        revision: Revision = LATEST,
        options: RequestOptions | None = None,
    ) -> None:
        """``POST /api/v2/user/actions/2fa-enable`` with a TOTP code proving enrolment.

        ``code`` is a 6-digit code, a code provider, or the secret itself (the
        :class:`TwoFactorAuthenticationSecret` from :meth:`generate_2fa`, or a
        :class:`~mfa_common.totp.Totp`): a fresh, replay-safe code is then computed (waiting for
        the next time step if this process already used the current one). The spec lists 428 but
        no 412 here. Raises :class:`TwoFactorAlreadyEnabledError` (409) and
        :class:`TwoFactorCodeRejectedError` (400: wrong or reused code).
        """
        _check_revision(revision)
        provider = self._provider(code)
        if revision == LATEST:
            revision = await self.revision(options=options)
        issued = await provider.issue(MfaChallenge(kind="totp"))
        headers = {"If-Match": if_match_value(revision)} if revision is not None else None
        await send_enable_code(self._c, issued, headers, options=options)

    def _provider(self, code: CodeSource) -> CodeProvider:
        if isinstance(code, TwoFactorAuthenticationSecret):
            return TotpCodeProvider(code.totp(), clock=self._c.clock)
        if isinstance(code, Totp):
            return TotpCodeProvider(code, clock=self._c.clock)
        if isinstance(code, (str, Secret)):
            value = Secret(validate_code_format(wrap(code).reveal(), digits=6))
            return _FixedCode(value)
        return code

    async def disable_2fa(
        self, *, revision: Revision = LATEST, options: RequestOptions | None = None
    ) -> None:
        """``POST /api/v2/user/actions/2fa-disable``. Raises :class:`TwoFactorAlreadyDisabledError`
        (409) when 2FA is off."""
        try:
            await self._c._write(
                f"{P}/user/actions/2fa-disable",
                revision=revision,
                read_revision=self.revision,
                retry_on_stale=False,
                options=options,
            )
        except ConflictError as exc:
            if exc.response is None:
                raise
            raise status_error(exc.response, TwoFactorAlreadyDisabledError) from None

    async def get_api_key(self, *, options: RequestOptions | None = None) -> UserApiKey:
        """``GET /api/v2/user/api-key``: the caller's API key (a Secret)."""
        body, response = await self._c._json("GET", f"{P}/user/api-key", options=options)
        return structure(converter, body, UserApiKey, response)

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
        ``GET /api/v2/user/api-key``: the old key cannot be kept, since it dies at once. On a
        JWT session that read works; a client authenticated by the old key gets an
        :class:`~mfa_common.errors.AuthenticationError` saying so at once (never a wait).
        A client authenticated by API key switches to the new key immediately
        (``switched=True``); requests in flight with the old key are replayed once with it.
        """
        backend = self._c.auth
        rotating = isinstance(backend, MetalCloudApiKeyAuth)
        if isinstance(backend, MetalCloudApiKeyAuth):
            backend.begin_rotation()
        try:
            response = await self._c._write(
                f"{P}/user/actions/regenerate-api-key",
                revision=revision,
                read_revision=self.revision,
                retry_on_stale=retry_on_stale,
                options=options,
            )
            body = parse_json_body(response)
            user = _user(body, response)
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
        """``POST /api/v2/user/actions/regenerate-jwt-salt``: invalidates every JWT of the caller
        (all sessions are logged out). A client on a JWT session drops it and logs in again on
        its next request."""
        response = await self._c._write(
            f"{P}/user/actions/regenerate-jwt-salt",
            revision=revision,
            read_revision=self.revision,
            retry_on_stale=retry_on_stale,
            options=options,
        )
        backend = self._c.auth
        if isinstance(backend, CredentialAuth):
            current = backend.credential
            if current is not None:
                backend.invalidate(current)
        return _user(parse_json_body(response), response)

    async def change_password(
        self,
        new_password: str | Secret[str],
        *,
        old_password: str | Secret[str] | None = None,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> User:
        """``POST /api/v2/user/actions/change-password``. A client logged in by password keeps
        the new one for its next login."""
        if not wrap(new_password).reveal():
            raise InvalidInputError("the new password is empty")
        payload = converter.unstructure(
            UserUpdatePassword(
                new_password=wrap(new_password),
                old_password=wrap(old_password) if old_password is not None else None,
            )
        )
        response = await self._c._write(
            f"{P}/user/actions/change-password",
            revision=revision,
            read_revision=self.revision,
            retry_on_stale=retry_on_stale,
            options=options,
            json=payload,
        )
        backend = self._c.auth
        if isinstance(backend, MetalCloudLoginAuth):
            backend.set_password(new_password)
        return _user(parse_json_body(response), response)

    async def initiate_email_change(
        self, email: str, *, redirect_url: str | None = None, options: RequestOptions | None = None
    ) -> User:
        """``POST /api/v2/user/actions/initiate-email-change``: the server mails a verification
        link to ``email``; the address changes when :meth:`verify_email` gets its token."""
        payload = converter.unstructure(ChangeUserEmail(email=email, redirect_url=redirect_url))
        body, response = await self._c._json(
            "POST", f"{P}/user/actions/initiate-email-change", json=payload, options=options
        )
        return _user(body, response)

    async def initiate_password_reset(
        self, email: str, *, redirect_url: str | None = None, options: RequestOptions | None = None
    ) -> None:
        """``POST /api/v2/user/actions/initiate-password-reset``: mails a reset link to ``email``
        (authenticated, oddly, per the spec)."""
        payload = converter.unstructure(PasswordReset(email=email, redirect_url=redirect_url))
        await self._c.request(
            "POST", f"{P}/user/actions/initiate-password-reset", json=payload, options=options
        )

    async def verify_email(self, token: str | Secret[str], *, options: RequestOptions | None = None) -> None:
        """``GET /api/v2/user/actions/verify-email?token=``: applies an e-mail verification
        token. Not retried (a single-use token: a blind replay could only fail)."""
        await self._token_action("verify-email", token, options)

    async def reset_password(
        self, token: str | Secret[str], *, options: RequestOptions | None = None
    ) -> None:
        """``GET /api/v2/user/actions/reset-password?token=``: applies a password reset token.
        Not retried (single-use token)."""
        await self._token_action("reset-password", token, options)

    async def _token_action(
        self, action: str, token: str | Secret[str], options: RequestOptions | None
    ) -> None:
        value = wrap(token).reveal()
        if not value:
            raise InvalidInputError("the token is empty")
        await self._c.request(
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


class UsersAPI(UsersAdminMixin):
    """User administration (``/api/v2/users``); needs an administrator's credentials.

    Listing, reading, suspension and archiving are here; creation, configuration (and forced
    2FA re-enrolment), meta and account changes come from
    :class:`~metalcloud_async.api_users_admin.UsersAdminMixin`; the sub-groups ``limits``,
    ``delegates``, ``permissions`` and ``ssh_keys`` from their own modules.
    """

    def __init__(self, client: MetalCloudClient) -> None:
        self._c = client
        self.limits = UserLimitsAPI(client)
        self.delegates = UserDelegatesAPI(client)
        self.permissions = UserPermissionsAPI(client)
        self.ssh_keys = UserSshKeysAPI(client)

    async def list_page(
        self, query: ListQuery, *, options: RequestOptions | None = None
    ) -> UserPaginatedList:
        """One page of ``GET /api/v2/users``."""
        body, response = await self._c._json("GET", f"{P}/users", params=query.params(), options=options)
        return structure(converter, body, UserPaginatedList, response)

    async def list(
        self,
        *,
        filters: Mapping[str, FilterValue] | None = None,
        sort_by: Sequence[str] = ("id:ASC",),
        search: str | None = None,
        search_by: Sequence[str] = (),
        page_size: int = C.ITERATOR_PAGE_SIZE,
        start_page: int = 1,
        options: RequestOptions | None = None,
    ) -> AsyncIterator[UserInfo]:
        """Every matching user, fetching pages lazily (one request per ``page_size`` users, at
        most 100). ``filters`` maps a field (``archived``, ``accessLevel``, ``email``, ...) to a
        value (``$eq``), an operation string (``filter_in([...])``) or a list of either.
        A stable ``sort_by`` (default ``id:ASC``) keeps pages consistent."""
        query = ListQuery(
            page=start_page,
            limit=page_size,
            filters=dict(filters or {}),
            sort_by=tuple(sort_by),
            search=search,
            search_by=tuple(search_by),
        )
        page: int | None = start_page
        while page is not None:
            result = await self.list_page(query.with_page(page), options=options)
            for item in result.data:
                yield item
            page = next_page(
                page=page,
                limit=query.page_size,
                received=len(result.data),
                total_pages=result.meta.total_pages,
                total_items=result.meta.total_items,
            )

    async def get(
        self, user_id: int, *, recursion: int | None = None, options: RequestOptions | None = None
    ) -> User:
        """``GET /api/v2/users/{id}`` with ``revision`` and ``ETag``."""
        return await self._c._get_user(user_path(user_id), recursion, options)

    async def suspend(
        self,
        user_id: int,
        *,
        public_comment: str,
        reason: SuspendReasonType | str = SuspendReasonType.CUSTOM,
        private_comment: str | None = None,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> UserSuspendReason:
        """``POST /api/v2/users/{id}/actions/suspend`` (reason ``unpaid`` or ``custom``)."""
        reason_value = reason.value if isinstance(reason, SuspendReasonType) else reason
        if reason_value not in ("unpaid", "custom"):
            raise InvalidInputError("reason must be 'unpaid' or 'custom'")
        _check_revision(revision)
        payload = converter.unstructure(
            UserSuspend(
                suspend_reason=reason_value,
                suspend_reason_public_comment=public_comment,
                suspend_reason_private_comment=private_comment,
            )
        )
        response = await self._c._write(
            user_path(user_id, "suspend"),
            revision=revision,
            read_revision=self._reader(user_id, options),
            retry_on_stale=retry_on_stale,
            options=options,
            json=payload,
        )
        return structure(converter, parse_json_body(response), UserSuspendReason, response)

    async def unsuspend(
        self,
        user_id: int,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> None:
        """``POST /api/v2/users/{id}/actions/unsuspend``."""
        _check_revision(revision)
        await self._c._write(
            user_path(user_id, "unsuspend"),
            revision=revision,
            read_revision=self._reader(user_id, options),
            retry_on_stale=retry_on_stale,
            options=options,
        )

    async def archive(
        self,
        user_id: int,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> User:
        """``POST /api/v2/users/{id}/actions/archive``: the updated user (new revision, ETag)."""
        return await self._archive(user_id, "archive", revision, retry_on_stale, options)

    async def unarchive(
        self,
        user_id: int,
        *,
        revision: Revision = LATEST,
        retry_on_stale: bool = False,
        options: RequestOptions | None = None,
    ) -> User:
        """``POST /api/v2/users/{id}/actions/unarchive``."""
        return await self._archive(user_id, "unarchive", revision, retry_on_stale, options)

    async def _archive(
        self,
        user_id: int,
        action: str,
        revision: Revision,
        retry_on_stale: bool,
        options: RequestOptions | None,
    ) -> User:
        _check_revision(revision)
        response = await self._c._write(
            user_path(user_id, action),
            revision=revision,
            read_revision=self._reader(user_id, options),
            retry_on_stale=retry_on_stale,
            options=options,
        )
        return _user(parse_json_body(response), response)


class SessionAPI:
    """``POST /api/v2/login``, ``/login-2fa`` and ``/logout``.

    Without arguments, :meth:`login` and :meth:`logout` act on the client's own JWT session
    (a client built with ``email=``/``password=``). With ``email``/``password``, :meth:`login`
    performs the raw password step and returns a :class:`~metalcloud_async.auth.LoginStep` to
    finish with :meth:`login_2fa` when ``two_factor_required``; its ``token`` is a Secret usable
    with :class:`~mfa_common.auth.BearerTokenAuth`.
    """

    def __init__(self, client: MetalCloudClient) -> None:
        self._c = client

    def _backend(self) -> MetalCloudLoginAuth:
        backend = self._c.auth
        if not isinstance(backend, MetalCloudLoginAuth):
            raise InvalidInputError("this client has no login session: pass email= and password=")
        return backend

    async def login(
        self,
        email: str | None = None,
        password: str | Secret[str] | None = None,
        *,
        provider: str = C.DEFAULT_PROVIDER,
    ) -> LoginStep:
        """Log in: the client's session (no arguments; replaces the current JWT, completing 2FA
        through the client's code provider) or a raw password step for ``email``/``password``."""
        if email is None:
            backend = self._backend()
            session = await self._c.within_deadline(backend.login, what="MetalCloud login")
            return LoginStep(session.user, session.token, {}, False, session.source)
        if password is None:
            raise InvalidInputError("login(email, password) needs the password")
        return await self._c.within_deadline(
            lambda: password_step(
                self._c.send_unauthenticated, self._c.build_request, email, password, provider=provider
            ),
            what="MetalCloud password login step",
        )

    async def login_2fa(self, pending: LoginStep, code: CodeSource) -> LoginStep:
        """Finish a raw login with the second factor (a code, a provider or the TOTP secret)."""
        if not pending.two_factor_required:
            raise InvalidInputError("this login step does not need a second factor")
        provider = self._c.user._provider(code)
        email = pending.user.email if pending.user is not None else None
        return await self._c.within_deadline(
            lambda: second_factor_step(
                self._c.send_unauthenticated, self._c.build_request, pending, provider, email=email
            ),
            what="MetalCloud second-factor login step",
        )

    @property
    def password_change_required(self) -> bool | None:
        """Whether the last login of the client's session said the password must be changed
        (``User.passwordChangeRequired``); None before any login or without a login session.
        ``MetalCloudLoginAuth(on_password_change_required=...)`` is called when it is."""
        backend = self._c.auth
        if not isinstance(backend, MetalCloudLoginAuth) or backend.user is None:
            return None
        return backend.user.password_change_required

    async def provider(
        self, email: str, *, options: RequestOptions | None = None
    ) -> AuthenticationUserProvider:
        """``GET /api/v2/authentication-provider?email=``: how that address logs in (``mysql``,
        ``ldap``, or ``saml`` with its SSO entry point). 404 when the address is unknown."""
        if not isinstance(email, str) or "@" not in email:
            raise InvalidInputError("email must be an e-mail address")
        body, response = await self._c._json(
            "GET", f"{P}/authentication-provider", params={"email": email}, options=options
        )
        return structure(converter, body, AuthenticationUserProvider, response)

    async def complete_reenrolment(
        self, pending: LoginStep | TwoFactorEnrolmentRequiredError, code: EnrolmentCode = None
    ) -> TwoFactorAuthenticationSecret:
        """Enrol the new authenticator an administrator forced (``force_2fa_reenrolment``).

        ``pending`` is the login step (``login(email, password)`` with ``enrolment_required``) or
        the :class:`~metalcloud_async.errors.TwoFactorEnrolmentRequiredError` a session login
        raised. ``code``: None uses the new secret itself; else a code, a provider, or an async
        callable given the new secret. When the client logs itself in, it adopts the new
        secret, so its next request logs in with it; otherwise log in again yourself.
        """
        secret = await enrol_with_login_session(self._c, pending_step(pending), code)
        backend = self._c.auth
        if isinstance(backend, MetalCloudLoginAuth):
            backend.code_provider = TotpCodeProvider(secret.totp(), clock=self._c.clock)
        return secret

    async def logout(self, token: str | Secret[str] | None = None) -> LogoutResponse:
        """``POST /api/v2/logout``: the client's session (no argument) or the session ``token``."""
        if token is None:
            return await self._backend().logout()
        response = await self._c.send_unauthenticated(logout_request(self._c.build_request, wrap(token)))
        if response.status_code >= 400:
            raise self._c.map_error(response)
        body = parse_json_body(response)
        return structure(converter, body or {}, LogoutResponse, response)
