"""``XMfaClient``: every operation of the X-MFA-Token API (ShellHub ``MfaApi`` plus login).

Two ways to authenticate:

* give ``username=``/``password=`` with ``totp_secret=``, ``code_provider=`` or
  ``recovery_codes=`` (or an ``auth=XMfaTokenAuth(...)`` of your own) and every call logs in by
  itself (password, then the second factor, JWT cached and refreshed; see
  :mod:`mfa_common.xmfa.auth`);
* or drive the steps yourself through ``client.session``: ``login`` → ``auth_mfa`` (or
  ``recover``, or ``reset_mfa``). Without credentials, the JWT of the last such step is used for
  the calls that need one.

The groups: ``client.session`` (login steps), ``client.mfa`` (the caller's MFA: generate, enable,
disable), ``client.user`` (the logged-in user).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .._httpx import URL, Auth, Request, Response
from ..auth import CredentialAuth
from ..auth.deadline import drive_by_hand
from ..client import BaseClient, RequestOptions, parse_json_body, structure
from ..clock import SYSTEM_CLOCK, Clock
from ..code_providers import CodeProvider
from ..errors import InvalidCodeError, InvalidInputError
from ..options import ClientOptions, check_credentials
from ..recovery_codes import RecoveryCodeFormat, RecoveryCodeStore, normalize_recovery_code
from ..secret import Secret, reveal, wrap
from ..totp import Totp, validate_code_format
from . import login_machine
from .auth import XMfaTokenAuth
from .models import (
    LoginResult,
    MfaDisable,
    MfaEnable,
    MfaGenerate,
    MfaReset,
    RecoverResult,
    RequestResetMFA,
    UserAuth,
    converter,
)
from .protocol import (
    LOCKOUT_HEADER,
    XMfaErrorMapper,
    XMfaPaths,
    parse_user_auth,
)

__all__ = ["MfaAPI", "SessionAPI", "SessionTokenAuth", "UserAPI", "XMfaClient", "normalize_email_code"]

if TYPE_CHECKING:
    from typing_extensions import Unpack

_EMAIL_CODE_LENGTH = 5

T = TypeVar("T")


def normalize_email_code(code: str | Secret[str]) -> Secret[str]:
    """An MFA-reset e-mail code in canonical form: 5 upper-case letters or digits (spaces
    removed, case folded). Anything else raises :class:`InvalidCodeError` before sending."""
    text = "".join(reveal(code).split()).upper()
    if len(text) != _EMAIL_CODE_LENGTH or not text.isascii() or not text.isalnum():
        raise InvalidCodeError("an e-mail code must be 5 letters or digits")
    return Secret(text)


def lockout_is_final(response: Response) -> bool:
    """The X-MFA retry rule: an answer carrying ``X-Account-Lockout`` is never retried (each
    retry would feed the lockout counter)."""
    return response.headers.get(LOCKOUT_HEADER) not in (None, "", "0")


class SessionTokenAuth(Auth):
    """The JWT of the last login step, sent as ``Authorization: Bearer`` to one origin only.

    Used by :class:`XMfaClient` when no ``auth=`` is given; empty until a step succeeds."""

    def __init__(self, base_url: URL) -> None:
        self._origin = (base_url.raw_scheme, base_url.raw_host, base_url.port)
        self.token: Secret[str] | None = None

    async def async_auth_flow(self, request: Request) -> Any:
        origin = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        if self.token is not None and origin == self._origin:
            request.headers["Authorization"] = f"Bearer {self.token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return f"SessionTokenAuth(token={'set' if self.token else 'unset'})"


class XMfaClient(BaseClient):
    """Async client of the X-MFA-Token API. Use ``async with XMfaClient(...) as client:``.

    ``paths`` moves operations for servers that differ; ``recovery_code_format`` is the shape
    recovery codes are normalised to (ShellHub: 16 upper-case base32); ``clock`` dates the
    MFA token and the lockout; other keywords go to :class:`~mfa_common.client.BaseClient`.
    """

    api_name: ClassVar[str] = "xmfa"
    login_keywords: ClassVar[str] = "username= and password= (the steps by hand: client.session.login)"

    def __init__(
        self,
        base_url: str | URL,
        *,
        username: str | None = None,
        password: str | Secret[str] | None = None,
        totp_secret: Totp | str | Secret[str] | None = None,
        recovery_codes: RecoveryCodeStore | None = None,
        code_provider: CodeProvider | None = None,
        auth: Auth | None = None,
        paths: XMfaPaths | None = None,
        clock: Clock | None = None,
        recovery_code_format: RecoveryCodeFormat = RecoveryCodeFormat.SHELLHUB,
        **options: Unpack[ClientOptions],
    ) -> None:
        check_credentials(
            given={"username": username, "auth": auth},
            login_only={
                "password": password,
                "totp_secret": totp_secret,
                "recovery_codes": recovery_codes,
                "code_provider": code_provider,
            },
            login_key="username",
        )
        self.paths = paths or XMfaPaths()
        self.clock = clock or SYSTEM_CLOCK
        self.recovery_code_format = recovery_code_format
        self.error_mapper = XMfaErrorMapper(self.paths, clock=self.clock)
        if username is not None:
            if password is None:
                raise InvalidInputError("username= needs password=")
            auth = XMfaTokenAuth(
                username,
                password,
                totp_secret=totp_secret,
                recovery_codes=recovery_codes,
                code_provider=code_provider,
                paths=self.paths,
                clock=clock,
            )
        normalized = URL(str(base_url).rstrip("/") + "/")
        self._session: SessionTokenAuth | None = None
        if auth is None:
            self._session = SessionTokenAuth(normalized)
            auth = self._session
        super().__init__(base_url, auth=auth, error_mapper=self.error_mapper, **options)
        self.retry_policy = self.retry_policy.with_rule(lockout_is_final)
        if isinstance(auth, CredentialAuth):
            auth.bind(base_url=self.base_url, send=self.send_unauthenticated)
        self.session = SessionAPI(self)
        self.mfa = MfaAPI(self)
        self.user = UserAPI(self)

    def _adopt(self, user: UserAuth) -> UserAuth:
        if self._session is not None:
            self._session.token = user.token
        return user

    def _code(self, code: str | Secret[str]) -> Secret[str]:
        return Secret(validate_code_format(reveal(code), digits=6))

    def _recovery_code(self, code: str | Secret[str]) -> Secret[str]:
        return normalize_recovery_code(code, self.recovery_code_format)

    async def _code_step(
        self,
        factor: login_machine.SecondFactor,
        code: Secret[str],
        *,
        identifier: str | None = None,
        token: Secret[str] | None = None,
        options: RequestOptions | None,
    ) -> login_machine.LoginOutcome:
        """The second-factor half of the login machine, by hand, with the caller's code."""
        path = self.paths.recover if factor == "recovery" else self.paths.auth
        return await drive_by_hand(
            self,
            lambda: login_machine.code_flow(
                self.build_request,
                self.paths,
                self.error_mapper,
                factor=factor,
                identifier=identifier,
                mfa_token=token,
            ),
            code=code,
            options=options,
            clock=self.clock,
            what=f"POST {path}",
        )


class SessionAPI:
    """``client.session``: the login steps by hand (password, the second factor, recovery, the
    e-mailed MFA reset). Without an ``auth=`` backend, the client keeps the JWT of the last step
    and sends it on the calls that need one."""

    def __init__(self, client: XMfaClient) -> None:
        self._c = client

    async def login(
        self, username: str, password: str | Secret[str], *, options: RequestOptions | None = None
    ) -> LoginResult:
        """``POST /api/login``: password login. Returns the user (no MFA) or, when MFA is
        required, ``mfa_token`` for :meth:`SessionAPI.auth_mfa` (valid 30 minutes, used once).

        Raises :class:`~mfa_common.errors.AccountLockedError` (with ``locked_until``) while
        locked out, :class:`~mfa_common.errors.AuthenticationError` on a wrong password."""
        result = await drive_by_hand(
            self._c,
            lambda: login_machine.password_flow(
                self._c.build_request, self._c.paths, self._c.error_mapper, username, wrap(password)
            ),
            options=options,
            clock=self._c.clock,
            what=f"POST {self._c.paths.login}",
        )
        if result.user is not None:
            self._c._adopt(result.user)
        return result

    async def auth_mfa(
        self, token: str | Secret[str], code: str | Secret[str], *, options: RequestOptions | None = None
    ) -> UserAuth:
        """``POST /api/user/mfa/auth``: exchange the ``X-MFA-Token`` and a 6-digit TOTP code for
        the JWT. Wrong or reused code (a 500, what the official console was written against, or
        a 401 or 403) → :class:`~mfa_common.errors.MfaCodeRejectedError`; unknown or expired
        token → :class:`~mfa_common.errors.MfaTokenExpiredError` when the answer says so (a 404,
        or a 401/403 about the token; a bare 500 does not, and reads as a rejected code). Use a
        replay-safe code (:func:`mfa_common.next_totp`): servers accept one code per step."""
        outcome = await self._c._code_step("totp", self._c._code(code), token=wrap(token), options=options)
        return self._c._adopt(outcome.user)

    async def recover(
        self, identifier: str, recovery_code: str | Secret[str], *, options: RequestOptions | None = None
    ) -> RecoverResult:
        """``POST /api/user/mfa/recover``: log in with a recovery code (spent for good). The
        result's ``expires_at`` (from ``X-Expires-At``) ends the 10-minute window in which
        :meth:`MfaAPI.disable` needs no code. Used or wrong code →
        :class:`~mfa_common.errors.RecoveryCodeRejectedError`."""
        outcome = await self._c._code_step(
            "recovery", self._c._recovery_code(recovery_code), identifier=identifier, options=options
        )
        user = self._c._adopt(outcome.user)
        return RecoverResult(user=user, expires_at=outcome.recovery_window_expires_at)

    async def request_reset_mfa(
        self, identifier: str, *, options: RequestOptions | None = None
    ) -> Secret[str] | None:
        """``POST /api/user/mfa/reset``: mail one code to the main and one to the recovery
        address. Returns the reset token (current servers) or None (servers before 2026-07
        answer without a body); then call :meth:`SessionAPI.reset_mfa` with the token, or the user id."""
        body = converter.unstructure(RequestResetMFA(identifier))
        response = await self._c.request(
            "POST", self._c.paths.request_reset, json=body, authenticated=False, options=options
        )
        if not response.content.strip():
            return None
        data = parse_json_body(response)
        token = data.get("token") if isinstance(data, Mapping) else None
        return Secret(token) if isinstance(token, str) and token else None

    async def reset_mfa(
        self,
        token_or_user_id: str | Secret[str],
        main_email_code: str | Secret[str],
        recovery_email_code: str | Secret[str],
        *,
        options: RequestOptions | None = None,
    ) -> UserAuth:
        """``PUT /api/user/mfa/reset/{token or user id}``: remove MFA with the two e-mail codes
        and log in. The path segment (a bearer-like token) never appears in logs or errors.
        Wrong codes → :class:`~mfa_common.xmfa.EmailCodeRejectedError`."""
        path = self._c.paths.reset_path(reveal(token_or_user_id))
        body = converter.unstructure(
            MfaReset(normalize_email_code(main_email_code), normalize_email_code(recovery_email_code))
        )
        prefix = self._c.base_url.path.rstrip("/")
        response = await self._c.request(
            "PUT",
            path,
            json=body,
            authenticated=False,
            idempotent=False,
            options=options,
            path_template=prefix + self._c.paths.reset,
        )
        return self._c._adopt(parse_user_auth(response))


class MfaAPI:
    """``client.mfa``: the caller's own MFA (generate a secret, enable, disable)."""

    def __init__(self, client: XMfaClient) -> None:
        self._c = client

    async def generate(self, *, options: RequestOptions | None = None) -> MfaGenerate:
        """``GET /api/user/mfa/generate``: a new secret, its ``otpauth://`` link and recovery
        codes, all Secrets. Nothing is enabled until :meth:`MfaAPI.enable` (or use
        :func:`mfa_common.xmfa.enrol_totp`). 409 → MFA already enabled."""
        response = await self._c.request("GET", self._c.paths.generate, options=options)
        return structure(converter, parse_json_body(response), MfaGenerate, response)

    async def enable(
        self,
        code: str | Secret[str],
        secret: str | Secret[str],
        recovery_codes: Sequence[str | Secret[str]],
        *,
        options: RequestOptions | None = None,
    ) -> None:
        """``PUT /api/user/mfa/enable``: confirm the generated secret with a current code.
        The secret and codes must be those of :meth:`MfaAPI.generate`; wrong code →
        :class:`~mfa_common.errors.MfaCodeRejectedError`."""
        body = converter.unstructure(
            MfaEnable(self._c._code(code), wrap(secret), tuple(wrap(c) for c in recovery_codes))
        )
        # PUT, but not safe to repeat: a replay after a lost answer meets "already enabled".
        await self._c.request("PUT", self._c.paths.enable, json=body, idempotent=False, options=options)

    async def disable(
        self,
        *,
        code: str | Secret[str] | None = None,
        recovery_code: str | Secret[str] | None = None,
        main_email_code: str | Secret[str] | None = None,
        recovery_email_code: str | Secret[str] | None = None,
        options: RequestOptions | None = None,
    ) -> None:
        """``PUT /api/user/mfa/disable`` with exactly one factor: a TOTP ``code``, a
        ``recovery_code``, or both e-mail codes; with none, an empty body, accepted only inside
        the 10-minute window after :meth:`SessionAPI.recover` (else
        :class:`~mfa_common.xmfa.RecoveryWindowClosedError`). Rejections are typed by the factor
        sent (MfaCodeRejectedError, RecoveryCodeRejectedError, EmailCodeRejectedError)."""
        factors = sum(x is not None for x in (code, recovery_code)) + (
            main_email_code is not None or recovery_email_code is not None
        )
        if factors > 1:
            raise InvalidInputError("give one of code, recovery_code or the two e-mail codes")
        if (main_email_code is None) != (recovery_email_code is None):
            raise InvalidInputError("main_email_code and recovery_email_code must come together")
        model = MfaDisable(
            code=self._c._code(code) if code is not None else None,
            recovery_code=self._c._recovery_code(recovery_code) if recovery_code is not None else None,
            main_email_code=normalize_email_code(main_email_code) if main_email_code is not None else None,
            recovery_email_code=(
                normalize_email_code(recovery_email_code) if recovery_email_code is not None else None
            ),
        )
        body = converter.unstructure(model)
        await self._c.request("PUT", self._c.paths.disable, json=body, idempotent=False, options=options)

    async def recovery_disable(self, *, options: RequestOptions | None = None) -> None:
        """``PUT /api/user/mfa/recovery/disable`` (servers since 2026-07): disable MFA inside the
        recovery window, no body. Outside it → :class:`~mfa_common.xmfa.RecoveryWindowClosedError`."""
        await self._c.request("PUT", self._c.paths.recovery_disable, idempotent=False, options=options)


class UserAPI:
    """``client.user``: the logged-in user."""

    def __init__(self, client: XMfaClient) -> None:
        self._c = client

    async def get(self, *, options: RequestOptions | None = None) -> UserAuth:
        """``GET /api/auth/user``: the logged-in user, with a freshly minted JWT whose ``mfa``
        claim is current (CONFIRMED: the server's handler mints one on every call).

        ``mfa.enable`` and ``mfa.disable`` return no JWT and leave the old one valid (CONFIRMED),
        so its ``mfa`` claim goes stale; a client that holds its own session token (no ``auth=``
        backend) adopts the fresh one here. An auth backend refreshes through this call itself._c.
        """
        response = await self._c.request("GET", self._c.paths.current_user, options=options)
        return self._c._adopt(parse_user_auth(response))
