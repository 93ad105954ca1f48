"""A faithful fake of the X-MFA-Token API (ShellHub ``MfaApi`` plus login), as an ASGI app.

Use it in-process (``httpx.ASGITransport(fake)``) or over a real socket
(``mfa_common.testing.serve(fake)``), or from the command line
(``python -m mfa_common.xmfa.testing``). Behaviour, following the public ShellHub sources:

* ``POST /api/login`` (alias ``POST /api/auth/user``) ``{username, password}``; ``username`` may
  be the e-mail. A body that fails validation (not a JSON object, a field missing, empty or not a
  string) is ``400 {"message": "invalid entity"}`` with no ``fields`` and no login headers; no
  length or pattern is checked (CONFIRMED, ShellHub's request validator). Then, in the server's
  order (CONFIRMED, ``AuthLocalUser``): unknown user or no local login → 401
  ``{"message": "auth unauthorized"}``; not confirmed → 403 ``{"message": "user not
  confirmed"}``; awaiting approval → **423** ``{"message": "user awaiting approval"}``; a running
  lockout → **429**, empty body, ``X-Account-Lockout`` **even with the right password**; wrong
  password → 401 ``auth unauthorized`` (or 429 when it starts a lockout); MFA on → **401 with an
  empty body** and a UUID ``X-MFA-Token``, valid 30 minutes and spent by the first successful
  exchange; else 200 ``UserAuth``. Answers after validation carry ``X-MFA-Token`` and
  ``X-Account-Lockout`` (``""``/``0`` when not applicable).
* Lockout per (peer address, user): the address is the connection's (the real gateway writes it
  into ``X-Real-IP`` itself), so a client-sent ``X-Real-IP`` or ``X-Forwarded-For`` changes
  nothing. failed attempts 1-2 give 401; attempt *a* >= 3 gives
  **429** with ``X-Account-Lockout`` = end of a ``min(4^(a-3), M)``-minute lockout (``M`` =
  ``max_lockout_minutes``, default 60; ``<= 0`` disables); the counter lives
  ``max(min(2.5 * lockout, M), 2)`` minutes; a successful login resets it.
* ``POST /api/user/mfa/auth`` ``{token, code}``: TOTP (SHA1, 30 s, +-1 step) with replay
  rejection (one accepted code per user per step). A wrong or reused code is
  ``500 {"message": "internal server error"}`` by default, what the official console was written
  against (CORROBORATED: it reads a 500 as "invalid code", its test mocks one, and on a 401 its
  global handler logs the user out); ``auth_failure_status=401`` (``--auth-failure-status 401``)
  answers 401 ``{"message": "invalid MFA code"}`` instead. An unknown or expired token gets the
  same status (UNCONFIRMED; with 401 the message is ``"MFA token is invalid or expired"``); a
  token lives ``mfa_token_ttl`` seconds (30 minutes; ``--mfa-token-ttl``); after
  ``max_code_failures`` (3) wrong codes the token is dropped (INVENTED).
* ``POST /api/user/mfa/recover`` ``{identifier, recovery_code}``: a wrong or used code is 403;
  single-use codes; opens a
  10-minute recovery window (``X-Expires-At``) in which ``PUT /api/user/mfa/disable`` accepts the
  same code or an empty body, and ``PUT /api/user/mfa/recovery/disable`` works (single use).
* ``POST /api/user/mfa/reset`` ``{identifier}`` mails two 5-character upper-case codes (read them
  from :attr:`XMfaFake.outbox`) and answers ``{token}`` (no body with ``legacy_reset=True``);
  ``PUT /api/user/mfa/reset/{token or user id}`` with both codes removes MFA and logs in.
* ``GET /api/user/mfa/generate``, ``PUT /api/user/mfa/enable``, ``PUT /api/user/mfa/disable``,
  ``PUT /api/user/mfa/recovery/disable``, ``GET /api/auth/user`` need ``Authorization: Bearer
  <jwt>`` (HS256 here; ``exp`` an integer and honoured; the ``Bearer `` prefix is optional, as on
  the server). No, an invalid or an expired credential → **401 with an empty body**. An
  ``X-API-Key`` header is judged first, whatever ``Authorization`` says: a live key is a
  namespace credential these user-only routes block with **403 and an empty body**, any other
  key is a 401 (all CONFIRMED, ShellHub's middleware). Wrong codes: enable 401, disable 403,
  reset 403, an unknown reset id or token 404 (CORROBORATED by the official console). Enable and
  disable return no JWT and the caller's JWT stays valid; ``GET /api/auth/user`` mints one whose
  ``mfa`` claim is current (CONFIRMED).
* Errors are ``{"message": ...}`` (``fields`` only on service-level data errors); every 5xx is
  ``{"message": "internal server error"}``; a field of the wrong JSON type is a 400, never an
  action. Applied writes (enable, disable, recover,
  reset) go to the ledger; all time comes from the injected clock; latency, rate limit and
  faults come from :class:`~mfa_common.testing.FakeControls` via the shared middleware.
"""

from __future__ import annotations

import math
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mfa_common.clock import SYSTEM_CLOCK, Clock
from mfa_common.testing._controls import FakeControls, FaultInjectionMiddleware, Ledger
from mfa_common.testing._jwt import JwtInvalid, decode_jwt, encode_jwt
from mfa_common.testing._request_parsing import BadJson, load_json
from mfa_common.testing.totp_verifier import (
    ReplayRejectingVerifier,
    generate_base32_secret,
    generate_recovery_codes,
)

UserStatus = Literal["confirmed", "not-confirmed", "pending"]

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
EMAIL_CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ISSUER = "shellhub-enterprise"
LOGIN_FAILED = "auth unauthorized"

#: Accounts the command-line fake starts with (secrets are fixed so a person can try them).
DEMO_ACCOUNTS: tuple[dict[str, Any], ...] = (
    {"username": "alice", "password": "alice-password", "email": "alice@example.com"},
    {
        "username": "bob",
        "password": "bob-password",
        "email": "bob@example.com",
        "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        "recovery_codes": [
            "MLNSPOB2L2ZRO2D5",
            "35QBUON4JAA4V6KP",
            "UYH34OY5RNDRRSUS",
            "IBWGL3IN42LTS3PP",
            "6DIGYYGM3JM7GXC4",
            "6UIHAIN3CYUEFY5X",
        ],
    },
    {
        "username": "carol",
        "password": "carol-password",
        "email": "carol@example.com",
        "totp_secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        "recovery_codes": ["KRSXG5CTMVRXEZLU", "ONSWG4TFOQYTEMZU"],
    },
)


@dataclass
class FakeUser:
    """One account. ``totp_secret`` (base32) set means MFA is enabled. Made by
    :meth:`XMfaFake.add_user`."""

    username: str
    password: str
    email: str
    id: str
    recovery_email: str
    name: str
    tenant: str
    role: str = "owner"
    admin: bool = False
    max_namespaces: int = -1
    totp_secret: str | None = None
    recovery_codes: list[str] = field(default_factory=list)
    #: The secret and recovery codes ``GET /api/user/mfa/generate`` offered, until enabled.
    pending_totp_secret: str | None = None
    pending_recovery_codes: tuple[str, ...] = ()
    #: ``"confirmed"``, ``"not-confirmed"`` (login 403) or ``"pending"`` (awaiting approval: 423).
    status: UserStatus = "confirmed"
    #: False for service accounts and users without the local login method (login 401).
    local_auth: bool = True

    @property
    def mfa(self) -> bool:
        return self.totp_secret is not None


@dataclass(frozen=True)
class SentEmail:
    """A message the fake "sent": an MFA-reset code to the main or the recovery address."""

    to: str
    user_id: str
    kind: str
    code: str
    token: str
    sent_at: float


@dataclass
class _MfaToken:
    user_id: str
    expires: float
    failures: int = 0


@dataclass
class _RecoverySession:
    code: str
    expires: float


@dataclass
class _Reset:
    token: str
    user_id: str
    main_code: str
    recovery_code: str
    expires: float
    failures: int = 0


@dataclass
class _Attempts:
    count: int
    expires: float
    locked_until: float = 0.0


INVALID_ENTITY = "invalid entity"


class _Problem(Exception):
    """An error answer; ``message=None`` sends no body at all."""

    def __init__(self, status: int, message: str | None, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = dict(fields or {})


def _error(status: int, message: str | None, fields: Mapping[str, str] | None = None) -> Response:
    if message is None:
        return Response(status_code=status)
    if status >= 500:
        return JSONResponse({"message": "internal server error"}, status_code=status)
    body: dict[str, Any] = {"message": message}
    if fields:
        body["fields"] = dict(fields)
    return JSONResponse(body, status_code=status)


async def _route_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods: ``{"message": "Not Found"}`` and the like, as the server's
    framework answers."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"message": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"message": "internal server error" if status >= 500 else message.lower()}


class XMfaFake:
    """The fake server; the object itself is the ASGI app (wrapped in fault injection).

    Script users with :meth:`add_user`; read :attr:`outbox`, :attr:`ledger`, :attr:`counts`
    (``login``, ``mfa_challenge``, ``exchange``, ...), and :attr:`controls` for
    latency/faults.

    Args:
        clock: Share one :class:`~mfa_common.clock.FakeClock` with the client to make waits
            instant.
        controls: Latency, rate limiting and fault injection (a :class:`~mfa_common.testing.FakeControls`).
        jwt_key: The key JWTs are signed with (default: a random one).
        jwt_ttl: A JWT's lifetime in seconds (72 hours).
        mfa_token_ttl: An ``X-MFA-Token``'s lifetime in seconds (30 minutes; 0: born expired).
        recovery_window: Seconds after a recovery-code login in which MFA can be disabled
            with no code (10 minutes).
        reset_code_ttl: Lifetime of the e-mailed reset codes in seconds (24 hours).
        max_lockout_minutes: The longest lockout; ``<= 0`` disables lockouts.
        max_code_failures: Wrong codes after which an MFA token is dropped (INVENTED).
        recovery_code_count: Recovery codes generated per user.
        legacy_reset: ``POST /api/user/mfa/reset`` answers without a body (servers before
            2026-07).
        totp_window: Steps either side of now a TOTP code may match.
        auth_failure_status: The status of a wrong code on ``/mfa/auth``: 500 (what the
            official console was written against) or 401.
        seed: Makes generated ids, secrets and codes reproducible.
        on_mail: Called with each e-mail the fake "sends" (they are kept in :attr:`outbox`
            too).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        controls: FakeControls | None = None,
        jwt_key: bytes | None = None,
        jwt_ttl: float = 72 * 3600.0,
        mfa_token_ttl: float = 30 * 60.0,
        recovery_window: float = 10 * 60.0,
        reset_code_ttl: float = 24 * 3600.0,
        max_lockout_minutes: float = 60.0,
        max_code_failures: int = 3,
        recovery_code_count: int = 6,
        legacy_reset: bool = False,
        totp_window: int = 1,
        auth_failure_status: Literal[401, 500] = 500,
        seed: int | None = None,
        on_mail: Callable[[SentEmail], None] | None = None,
    ) -> None:
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.controls = controls or FakeControls()
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._jwt_key = jwt_key or self._rng.randbytes(32)
        self.jwt_ttl = jwt_ttl
        self.mfa_token_ttl = mfa_token_ttl
        self.recovery_window = recovery_window
        self.reset_code_ttl = reset_code_ttl
        self.max_lockout_minutes = max_lockout_minutes
        self.max_code_failures = max_code_failures
        self.recovery_code_count = recovery_code_count
        self.legacy_reset = legacy_reset
        self.totp_window = totp_window
        self.auth_failure_status: int = auth_failure_status
        self._api_keys: set[str] = set()
        self.verifier = ReplayRejectingVerifier()
        self.outbox: list[SentEmail] = []
        self.on_mail = on_mail
        self.counts: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._users: dict[str, FakeUser] = {}
        self._mfa_tokens: dict[str, _MfaToken] = {}
        self._recovery: dict[str, _RecoverySession] = {}
        self._resets: dict[str, _Reset] = {}
        self._attempts: dict[tuple[str, str], _Attempts] = {}
        self._revoked: set[str] = set()
        self._issued: dict[str, set[str]] = {}
        routes = [
            Route("/api/login", self._login, methods=["POST"]),
            Route("/api/auth/user", self._login, methods=["POST"]),
            Route("/api/auth/user", self._current_user, methods=["GET"]),
            Route("/api/user/mfa/auth", self._auth, methods=["POST"]),
            Route("/api/user/mfa/generate", self._generate, methods=["GET"]),
            Route("/api/user/mfa/enable", self._enable, methods=["PUT"]),
            Route("/api/user/mfa/disable", self._disable, methods=["PUT"]),
            Route("/api/user/mfa/recovery/disable", self._recovery_disable, methods=["PUT"]),
            Route("/api/user/mfa/recover", self._recover, methods=["POST"]),
            Route("/api/user/mfa/reset", self._request_reset, methods=["POST"]),
            Route("/api/user/mfa/reset/{user_id}", self._reset, methods=["PUT"]),
        ]
        self.starlette = Starlette(routes=routes, exception_handlers={HTTPException: _route_error})
        self.starlette.state.controls = self.controls
        self._asgi = FaultInjectionMiddleware(self.starlette, self.controls, error_body=_error_body)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._asgi(scope, receive, send)

    def __repr__(self) -> str:
        with self._lock:
            accounts = len(self._users)
        return f"XMfaFake(accounts={accounts}, clock={self.clock!r})"

    # ------------------------------------------------------------------ scripting

    @property
    def ledger(self) -> Ledger:
        """Applied writes: ``enable``, ``disable``, ``recover``, ``reset`` keyed by user id."""
        return self.controls.ledger

    def add_user(
        self,
        username: str,
        password: str,
        *,
        email: str | None = None,
        recovery_email: str | None = None,
        mfa: bool = False,
        totp_secret: str | None = None,
        recovery_codes: Iterable[str] | None = None,
        name: str | None = None,
        user_id: str | None = None,
        admin: bool = False,
        status: UserStatus = "confirmed",
        local_auth: bool = True,
    ) -> FakeUser:
        """Create an account and return it.

        Args:
            username: The login.
            password: Its password.
            email: Its address (default: ``<username>@example.com``).
            recovery_email: The recovery address (``""`` leaves it unset: enabling MFA then fails).
            mfa: MFA on, with a generated secret.
            totp_secret: MFA on with this base32 secret.
            recovery_codes: The recovery codes (default: generated when MFA is on).
            name: The display name.
            user_id: The id (default: a random UUID).
            admin: An administrator.
            status: ``confirmed``, ``not-confirmed`` or ``pending`` (awaiting approval).
            local_auth: Whether the user may log in with a password.
        """
        with self._lock:
            if mfa and totp_secret is None:
                totp_secret = generate_base32_secret(20, rng=self._random())
            codes = list(recovery_codes) if recovery_codes is not None else []
            if totp_secret is not None and recovery_codes is None:
                codes = self._new_recovery_codes()
            user = FakeUser(
                username=username,
                password=password,
                email=email or f"{username}@example.com",
                id=user_id or self._uuid(),
                recovery_email=(
                    recovery_email if recovery_email is not None else f"{username}.recovery@example.org"
                ),
                name=name or username,
                tenant=self._uuid(),
                admin=admin,
                totp_secret=totp_secret,
                recovery_codes=codes,
                status=status,
                local_auth=local_auth,
            )
            self._users[user.id] = user
            return user

    @property
    def users(self) -> list[FakeUser]:
        """Every account (a snapshot list; the users themselves are live)."""
        with self._lock:
            return list(self._users.values())

    def user(self, identifier: str) -> FakeUser:
        """The account with this username, e-mail or id (KeyError if none).

        Args:
            identifier: The username, e-mail address or id.
        """
        found = self._find(identifier) or self._users.get(identifier)
        if found is None:
            raise KeyError(identifier)
        return found

    def reset_codes(self, identifier: str) -> tuple[str, str]:
        """The (main, recovery) codes of the last reset mailed to this user.

        Args:
            identifier: The username, e-mail address or id.
        """
        user = self.user(identifier)
        mails = [m for m in self.outbox if m.user_id == user.id]
        main = next(m.code for m in reversed(mails) if m.kind == "main")
        recovery = next(m.code for m in reversed(mails) if m.kind == "recovery")
        return main, recovery

    def revoke_jwts(self, identifier: str) -> None:
        """Make every JWT issued so far to this user invalid (the next call gets 401).

        Args:
            identifier: The username, e-mail address or id.
        """
        user = self.user(identifier)
        with self._lock:
            self._revoked |= self._issued.pop(user.id, set())

    def lockout_until(self, identifier: str, source: str = "127.0.0.1") -> float | None:
        """End of a running lockout for (source, user), or None.

        Args:
            identifier: The username, e-mail address or id.
            source: The peer address the lockout counts for.
        """
        user = self.user(identifier)
        with self._lock:
            state = self._attempts.get((source, user.id))
            if state and state.locked_until > self.clock.now():
                return state.locked_until
            return None

    def issue_api_key(self) -> str:
        """A live namespace API key (the MFA routes refuse it with a bodiless 403)."""
        with self._lock:
            key = self._uuid()
            self._api_keys.add(key)
            return key

    def revoke_api_key(self, key: str) -> None:
        """End an API key (it then gets a bodiless 401, like any unknown key).

        Args:
            key: The key.
        """
        with self._lock:
            self._api_keys.discard(key)

    def issue_jwt(self, user: FakeUser | str, *, ttl: float | None = None) -> str:
        """A valid JWT for ``user``, to test calls without logging in.

        Args:
            user: A :class:`FakeUser`, or its username, e-mail or id.
            ttl: Its lifetime in seconds (default: ``jwt_ttl``).
        """
        with self._lock:
            return self._jwt(user if isinstance(user, FakeUser) else self.user(user), ttl=ttl)

    # ------------------------------------------------------------------ helpers

    def _random(self) -> random.Random | None:
        return None if isinstance(self._rng, random.SystemRandom) else self._rng

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _new_recovery_codes(self) -> list[str]:
        return generate_recovery_codes(self.recovery_code_count, BASE32, 16, rng=self._random())

    def _find(self, identifier: str) -> FakeUser | None:
        wanted = identifier.strip().lower()
        for user in self._users.values():
            if user.username.lower() == wanted or user.email.lower() == wanted:
                return user
        return None

    def _jwt(self, user: FakeUser, *, ttl: float | None = None) -> str:
        now = math.floor(self.clock.now())
        jti = self._uuid()
        claims = {
            "claims": "user",
            "id": user.id,
            "origin": "local",
            "tenant": user.tenant,
            "name": user.username,
            "mfa": user.mfa,
            "admin": user.admin,
            "jti": jti,
            "iat": now,
            "nbf": now,
            "exp": math.floor(now + (self.jwt_ttl if ttl is None else ttl)),
        }
        self._issued.setdefault(user.id, set()).add(jti)
        return encode_jwt(claims, self._jwt_key)

    def _user_auth(self, user: FakeUser) -> dict[str, Any]:
        return {
            "token": self._jwt(user),
            "id": user.id,
            "origin": "local",
            "user": user.username,
            "name": user.name,
            "email": user.email,
            "recovery_email": user.recovery_email or user.email,
            "tenant": user.tenant,
            "role": user.role,
            "mfa": user.mfa,
            "admin": user.admin,
            "max_namespaces": user.max_namespaces,
            "auth_methods": ["local"],
        }

    def _bearer_user(self, request: Request) -> FakeUser:
        """The user of the request's JWT. ``X-API-Key`` is judged first: a live key is refused
        on these user-only routes (bodiless 403), any other key is no identity (bodiless 401)."""
        api_key = request.headers.get("x-api-key")
        if api_key is not None:
            raise _Problem(403 if api_key in self._api_keys else 401, None)
        # As the server does: every "Bearer " is removed (case-sensitive), so a bare JWT works too.
        token = request.headers.get("authorization", "").replace("Bearer ", "").strip()
        if not token:
            raise _Problem(401, None)
        try:
            claims = decode_jwt(token, self._jwt_key, now=self.clock.now())
        except JwtInvalid:
            raise _Problem(401, None) from None
        user = self._users.get(str(claims.get("id")))
        if user is None or claims.get("jti") in self._revoked:
            raise _Problem(401, None)
        return user

    @staticmethod
    async def _body(
        request: Request,
        *,
        required: Iterable[str] = (),
        strings: Iterable[str] = (),
        optional: bool = False,
    ) -> dict[str, Any]:
        """The JSON object body, validated as the server's request binder does: each of
        ``required`` a non-empty string, each of ``strings`` a string when present (``null`` is
        absent). Anything else is ``400 {"message": "invalid entity"}`` with no ``fields``."""
        raw = await request.body()
        if not raw.strip():
            if optional:
                return {}
            raise _Problem(400, INVALID_ENTITY)
        try:
            # Go's decoder turns an unpaired surrogate escape into U+FFFD; so does the fake.
            data = load_json(raw, lone_surrogates="replace")
        except BadJson:
            raise _Problem(400, INVALID_ENTITY) from None
        if not isinstance(data, dict):
            raise _Problem(400, INVALID_ENTITY)
        if any(not isinstance(data.get(name), str) or not data[name] for name in required):
            raise _Problem(400, INVALID_ENTITY)
        if any(data.get(name) is not None and not isinstance(data[name], str) for name in strings):
            raise _Problem(400, INVALID_ENTITY)
        return data

    def _disable_mfa(self, user: FakeUser, via: str) -> None:
        user.totp_secret = None
        user.recovery_codes = []
        user.pending_totp_secret, user.pending_recovery_codes = None, ()
        self._recovery.pop(user.id, None)
        for token in [t for t, r in self._resets.items() if r.user_id == user.id]:
            del self._resets[token]
        self.verifier.forget(user.id)
        self.ledger.record("disable" if via != "reset" else "reset", user.id, via=via)

    def _verify_totp(self, user: FakeUser, code: str, secret: str) -> bool:
        verdict = self.verifier.verify(
            user.id, code, secret_base32=secret, now=self.clock.now(), window=self.totp_window
        )
        self.counts[f"totp_{verdict}"] += 1
        return verdict == "ok"

    # ------------------------------------------------------------------ handlers

    async def _handle(self, request: Request, handler: Any) -> Response:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except _Problem as problem:
            return _error(problem.status, problem.message, problem.fields)

    async def _login(self, request: Request) -> Response:
        return await self._handle(request, self._do_login)

    async def _do_login(self, request: Request) -> Response:
        body = await self._body(request, required=("username", "password"))
        source = request.client.host if request.client else "unknown"
        headers = {"X-MFA-Token": "", "X-Account-Lockout": "0"}
        with self._lock:
            now = self.clock.now()
            self.counts["login_attempt"] += 1
            user = self._find(body["username"])
            if user is None or not user.local_auth:
                return JSONResponse({"message": LOGIN_FAILED}, status_code=401, headers=headers)
            # Account state is told before the password is checked, as the server does.
            if user.status == "not-confirmed":
                return JSONResponse({"message": "user not confirmed"}, status_code=403, headers=headers)
            if user.status == "pending":
                return JSONResponse({"message": "user awaiting approval"}, status_code=423, headers=headers)
            key = (source, user.id)
            state = self._attempts.get(key)
            if state is not None and state.locked_until > now:
                headers["X-Account-Lockout"] = str(math.ceil(state.locked_until))
                self.counts["login_locked"] += 1
                return Response(status_code=429, headers=headers)
            if body["password"] != user.password:
                return self._failed_login(key, state, now, headers)
            self._attempts.pop(key, None)
            if user.mfa:
                token = str(uuid.uuid4())
                self._mfa_tokens[token] = _MfaToken(user.id, now + self.mfa_token_ttl)
                headers["X-MFA-Token"] = token
                self.counts["mfa_challenge"] += 1
                return Response(status_code=401, headers=headers)
            self.counts["login"] += 1
            return JSONResponse(self._user_auth(user), headers=headers)

    def _failed_login(
        self, key: tuple[str, str], state: _Attempts | None, now: float, headers: dict[str, str]
    ) -> Response:
        self.counts["login_failed"] += 1
        if state is None or state.expires <= now:
            state = _Attempts(0, now)
        state.count += 1
        limit = self.max_lockout_minutes
        lockout = 0.0
        if limit > 0 and state.count >= 3:
            lockout = min(4.0 ** (state.count - 3), limit)
            state.locked_until = now + lockout * 60
        ttl = max(min(2.5 * lockout, limit), 2.0) if limit > 0 else 2.0
        state.expires = now + ttl * 60
        self._attempts[key] = state
        if lockout:
            headers["X-Account-Lockout"] = str(math.ceil(state.locked_until))
            return Response(status_code=429, headers=headers)
        return JSONResponse({"message": LOGIN_FAILED}, status_code=401, headers=headers)

    async def _current_user(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            with self._lock:
                user = self._bearer_user(request)
                self.counts["current_user"] += 1
                return JSONResponse(self._user_auth(user))

        return await self._handle(request, run)

    async def _auth(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            body = await self._body(request, required=("token", "code"))
            with self._lock:
                self.counts["auth_attempt"] += 1
                pending = self._mfa_tokens.get(body["token"])
                now = self.clock.now()
                status = self.auth_failure_status
                if pending is None or pending.expires <= now:
                    self._mfa_tokens.pop(body["token"], None)
                    raise _Problem(status, "MFA token is invalid or expired")
                user = self._users.get(pending.user_id)
                if user is None or user.totp_secret is None:
                    self._mfa_tokens.pop(body["token"], None)
                    raise _Problem(status, "MFA token is invalid or expired")
                if not self._verify_totp(user, body["code"], user.totp_secret):
                    pending.failures += 1
                    if pending.failures >= self.max_code_failures:
                        del self._mfa_tokens[body["token"]]
                    raise _Problem(status, "invalid MFA code")
                del self._mfa_tokens[body["token"]]
                self.counts["exchange"] += 1
                return JSONResponse(self._user_auth(user))

        return await self._handle(request, run)

    async def _generate(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            with self._lock:
                user = self._bearer_user(request)
                if user.mfa:
                    raise _Problem(409, "MFA is already enabled")
                secret = generate_base32_secret(20, rng=self._random())
                codes = tuple(self._new_recovery_codes())
                user.pending_totp_secret, user.pending_recovery_codes = secret, codes
                link = f"otpauth://totp/{ISSUER}:{user.id}?issuer={ISSUER}&secret={secret}"
                self.counts["generate"] += 1
                return JSONResponse({"link": link, "secret": secret, "recovery_codes": list(codes)})

        return await self._handle(request, run)

    async def _enable(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            with self._lock:
                self._bearer_user(request)  # credentials are judged before the body
            body = await self._body(request, required=("code", "secret"))
            codes = body.get("recovery_codes")
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise _Problem(400, INVALID_ENTITY)
            with self._lock:
                user = self._bearer_user(request)
                if user.mfa:
                    raise _Problem(400, "MFA is already enabled")
                if not user.recovery_email:
                    raise _Problem(400, "invalid entity", {"recovery_email": "required to enable MFA"})
                secret, generated = user.pending_totp_secret, user.pending_recovery_codes
                if secret is None or (body["secret"], tuple(codes)) != (secret, generated):
                    raise _Problem(400, "invalid entity", {"secret": "does not match the generated one"})
                if not self._verify_totp(user, body["code"], secret):
                    raise _Problem(401, "invalid MFA code")
                user.totp_secret = secret
                user.recovery_codes = list(generated)
                user.pending_totp_secret, user.pending_recovery_codes = None, ()
                self.ledger.record("enable", user.id)
                return Response(status_code=200)

        return await self._handle(request, run)

    async def _disable(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            with self._lock:
                self._bearer_user(request)  # credentials are judged before the body
            body = await self._body(
                request,
                strings=("code", "recovery_code", "main_email_code", "recovery_email_code"),
                optional=True,
            )
            with self._lock:
                user = self._bearer_user(request)
                if not user.mfa:
                    raise _Problem(400, "MFA is not enabled")
                now = self.clock.now()
                code = body.get("code")
                recovery_code = body.get("recovery_code")
                main, rec = body.get("main_email_code"), body.get("recovery_email_code")
                session = self._recovery.get(user.id)
                if code:
                    if not self._verify_totp(user, str(code), str(user.totp_secret)):
                        raise _Problem(403, "invalid MFA code")
                    via = "code"
                elif recovery_code:
                    if recovery_code in user.recovery_codes:
                        user.recovery_codes.remove(recovery_code)
                    elif not (session and session.expires > now and session.code == recovery_code):
                        raise _Problem(403, "invalid recovery code")
                    via = "recovery_code"
                elif main or rec:
                    if not (main and rec):
                        raise _Problem(
                            400, "invalid entity", {"main_email_code": "must come with recovery_email_code"}
                        )
                    if not self._match_reset(user, str(main), str(rec), now):
                        raise _Problem(403, "invalid e-mail codes")
                    via = "email_codes"
                else:
                    if not (session and session.expires > now):
                        raise _Problem(403, "no valid recovery session")
                    via = "recovery_window"
                self._disable_mfa(user, via)
                return Response(status_code=200)

        return await self._handle(request, run)

    async def _recovery_disable(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            with self._lock:
                user = self._bearer_user(request)
                session = self._recovery.get(user.id)
                if not user.mfa or not (session and session.expires > self.clock.now()):
                    raise _Problem(403, "no valid recovery session")
                self._disable_mfa(user, "recovery_window")
                return Response(status_code=200)

        return await self._handle(request, run)

    async def _recover(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            body = await self._body(request, required=("identifier", "recovery_code"))
            with self._lock:
                user = self._find(body["identifier"])
                code = body["recovery_code"]
                if user is None or not user.mfa or code not in user.recovery_codes:
                    self.counts["recover_rejected"] += 1
                    raise _Problem(403, "invalid recovery code")
                user.recovery_codes.remove(code)
                expires = self.clock.now() + self.recovery_window
                self._recovery[user.id] = _RecoverySession(code, expires)
                self.ledger.record("recover", user.id)
                self.counts["recover"] += 1
                return JSONResponse(self._user_auth(user), headers={"X-Expires-At": str(math.floor(expires))})

        return await self._handle(request, run)

    async def _request_reset(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            body = await self._body(request, required=("identifier",))
            with self._lock:
                user = self._find(body["identifier"])
                if user is None:
                    raise _Problem(404, "not found")
                if not user.mfa:
                    raise _Problem(400, "MFA is not enabled")
                now = self.clock.now()
                token = self._uuid()
                reset = _Reset(
                    token, user.id, self._email_code(), self._email_code(), now + self.reset_code_ttl
                )
                self._resets[token] = reset
                self.outbox.append(SentEmail(user.email, user.id, "main", reset.main_code, token, now))
                self.outbox.append(
                    SentEmail(user.recovery_email, user.id, "recovery", reset.recovery_code, token, now)
                )
                self.counts["request_reset"] += 1
                if self.on_mail is not None:
                    for mail in self.outbox[-2:]:
                        self.on_mail(mail)
                if self.legacy_reset:
                    return Response(status_code=200)
                return JSONResponse({"token": token})

        return await self._handle(request, run)

    def _email_code(self) -> str:
        return "".join(self._rng.choice(EMAIL_CODE_ALPHABET) for _ in range(5))

    def _match_reset(self, user: FakeUser, main: str, rec: str, now: float) -> bool:
        for reset in list(self._resets.values()):
            if reset.user_id == user.id and reset.expires > now:
                if reset.main_code == main and reset.recovery_code == rec:
                    return True
                self._count_reset_failure(reset)
        return False

    def _count_reset_failure(self, reset: _Reset) -> None:
        reset.failures += 1
        if reset.failures >= self.max_code_failures:
            self._resets.pop(reset.token, None)

    async def _reset(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            body = await self._body(request, required=("main_email_code", "recovery_email_code"))
            segment = str(request.path_params["user_id"])
            with self._lock:
                now = self.clock.now()
                reset = self._resets.get(segment)
                if reset is None:
                    mine = [r for r in self._resets.values() if r.user_id == segment]
                    reset = mine[-1] if mine else None
                if reset is None or reset.expires <= now:
                    raise _Problem(404, "not found")
                user = self._users[reset.user_id]
                if (body["main_email_code"], body["recovery_email_code"]) != (
                    reset.main_code,
                    reset.recovery_code,
                ):
                    self._count_reset_failure(reset)
                    raise _Problem(403, "invalid e-mail codes")
                self._disable_mfa(user, "reset")
                self.counts["reset"] += 1
                return JSONResponse(self._user_auth(user))

        return await self._handle(request, run)
