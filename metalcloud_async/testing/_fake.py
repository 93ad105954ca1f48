"""A MetalCloud v2 server in memory: users, API keys, JWT sessions, 2FA and optimistic locking.

What it does, operation by operation, follows ``tests/specs/metalcloud-v2.yaml`` and the wire facts
of the real server; where those are silent (marked UNCONFIRMED) it makes the choice the client
documents:

* **Auth**: ``Authorization: Bearer <API key | JWT>``; the JWT is also accepted from the ``jwt``
  cookie. API keys are ``"<userId>:<63 random alphanumerics>"``; regenerating one invalidates
  the old key at once. JWTs are HS256, carry ``exp`` and are signed with a per-user salt, so
  regenerating the salt invalidates every JWT of that user; logout revokes one JWT.
* **Login**: ``POST /api/v2/login`` answers 200 ``User`` + ``ETag`` and sets the ``jwt`` cookie
  (UNCONFIRMED on the real server). For a user with 2FA the cookie holds a short-lived *pending*
  JWT that only ``POST /api/v2/login-2fa`` accepts (sent back as cookie or bearer); a correct,
  not yet used TOTP code there sets the full session cookie. Replayed steps are rejected.
* **Optimistic locking**: every read of an object whose write takes ``If-Match`` sends
  ``ETag: <revision>`` (bare number; the official Terraform provider sends it back verbatim);
  writes need
  ``If-Match`` (428 when missing, 412 when stale; ``2fa-enable``/``2fa-disable`` only check
  presence, as their spec lists no 412); every applied write bumps the revision and is recorded
  in the controls' ledger.
* **Lockout**: ``max_failed_logins`` wrong passwords for one address within
  ``failed_login_window`` seconds (the real server's documented defaults, 5 and 300) lock it
  out: ``/login`` answers 403 "Too many failed login attempts" even with the right password
  (the real status is undocumented) until the oldest failure leaves the window.
* **Forced re-enrolment**: for a user whose ``authenticatorMustChange`` is set, ``/login``
  skips the old second factor and sets a session good only for ``GET /user``,
  ``2fa-generate``, ``2fa-enable`` and logout (403 elsewhere); enabling a new authenticator
  clears the flag and ends that session, so the next login uses the new code.
* **Administration**: the other user operations live in :mod:`._admin`. A user and its
  ``users/{id}/config`` are one stored row with one revision (the ``User`` JSON spreads the
  configuration's fields): the official CLI sends the user's ``revision`` as ``If-Match`` on
  ``PATCH .../config``, and a configuration write bumps the user's revision.
* **Errors**: NestJS bodies ``{"statusCode", "message", "error"}`` (``message`` a list for
  validation errors).
* **Listing**: nestjs-paginate query syntax and the ``data/meta/links`` envelope.
"""

from __future__ import annotations

import base64
import math
import secrets
import string
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mfa_common.clock import SYSTEM_CLOCK, Clock
from mfa_common.testing import (
    BadJson,
    FakeControls,
    FaultInjectionMiddleware,
    JwtInvalid,
    ReplayRejectingVerifier,
    decode_jwt,
    encode_jwt,
    generate_base32_secret,
    load_json,
    parse_int,
)

from ._admin import AdminHandlers
from ._wire import Fail, check_if_match, iso, nest_error_body

ADMIN_LEVELS = frozenset({"root", "admin", "full_admin"})
DEFAULT_MAX_FAILED_LOGINS = 5
DEFAULT_FAILED_LOGIN_WINDOW = 300.0
MAX_TRACKED_ADDRESSES = 10_000
API_KEY_ALPHABET = string.ascii_letters + string.digits
API_KEY_RANDOM_LENGTH = 63
PENDING_2FA_TTL = 300.0
JWT_COOKIE = "jwt"


@dataclass
class FakeUser:
    """One scripted user of the fake. Mutate through :class:`MetalCloudFake` helpers."""

    id: int
    email: str
    password: str
    display_name: str
    access_level: str = "user"
    revision: int = 1
    totp_secret: str | None = None
    pending_totp_secret: str | None = None
    suspended: bool = False
    archived: bool = False
    api_key: str = ""
    jwt_salt: str = ""
    email_verified: bool = True
    account_id: int | None = None
    infrastructure_id_default: int | None = None
    is_billable: bool = True
    password_change_required: bool = False
    created_at: float = 0.0
    last_login_at: float = 0.0
    password_changed_at: float = 0.0
    authenticator_created_at: float | None = None
    suspend_reasons: list[dict[str, Any]] = field(default_factory=list)
    #: Set by an administrator: the next login must enrol a new authenticator first.
    authenticator_must_change: bool = False
    #: Other configuration fields set through ``PATCH /users/{id}/config`` (wire names).
    config_extra: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    permissions: dict[str, Any] = field(default_factory=dict)
    #: Ids of the users this user delegated to (its child delegates).
    delegates: set[int] = field(default_factory=set)

    @property
    def mfa(self) -> bool:
        """Whether 2FA is on (a ``totp_secret`` is set)."""
        return self.totp_secret is not None

    @property
    def is_admin(self) -> bool:
        return self.access_level in ADMIN_LEVELS


@dataclass
class SentEmail:
    """An e-mail the fake would have sent: ``kind`` is ``verify-email`` or ``reset-password``
    (``token`` to pass to the matching action) or ``temporary-password``."""

    kind: str
    to: str
    token: str
    user_id: int


def _png(width: int, height: int, pixels: Callable[[int, int], bool]) -> bytes:
    """A 1-bit grey PNG (stdlib only; used when segno is not installed)."""
    rows = []
    for y in range(height):
        bits = 0
        row = bytearray([0])
        for x in range(width):
            bits = (bits << 1) | (0 if pixels(x, y) else 1)
            if x % 8 == 7:
                row.append(bits)
                bits = 0
        if width % 8:
            row.append(bits << (8 - width % 8))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def qr_data_uri(text: str) -> str:
    """A PNG data URI of a QR code of ``text`` (segno when available, else a placeholder PNG)."""
    try:
        import segno

        return str(segno.make(text, error="m").png_data_uri(scale=4))
    except ImportError:  # pragma: no cover - depends on the optional extra
        seed = zlib.crc32(text.encode())
        png = _png(29, 29, lambda x, y: bool((seed >> ((x * 7 + y * 13) % 31)) & 1))
        return "data:image/png;base64," + base64.b64encode(png).decode()


class MetalCloudFake:
    """The fake server; the object itself is the ASGI app. Thread-safe (one lock around state).

    Args:
        clock: Drives JWT expiry, TOTP verification and timestamps (share a
            :class:`~mfa_common.clock.FakeClock` with the client to make TOTP waits instant).
        controls: Latency, rate limiting and fault injection (a :class:`~mfa_common.testing.FakeControls`).
        jwt_ttl: The session lifetime in seconds.
        jwt_key: The key JWTs are signed with (default: a random one).
        seed: Makes generated data reproducible.
        max_failed_logins: Failed password logins per e-mail within ``failed_login_window``
            seconds that lock the address out (the real server's documented default: 5).
        failed_login_window: Seconds the failed logins are counted over (300).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        controls: FakeControls | None = None,
        jwt_ttl: float = 3600.0,
        jwt_key: bytes | None = None,
        seed: int | None = None,
        max_failed_logins: int = DEFAULT_MAX_FAILED_LOGINS,
        failed_login_window: float = DEFAULT_FAILED_LOGIN_WINDOW,
    ) -> None:
        self.clock: Clock = clock or SYSTEM_CLOCK
        #: Failed password logins per e-mail within ``failed_login_window`` seconds that lock
        #: the address out (the real server's documented defaults: 5 within 300 s).
        self.max_failed_logins = max_failed_logins
        self.failed_login_window = failed_login_window
        self._failed_logins: dict[str, list[float]] = {}
        self.controls = controls or FakeControls(error_body=nest_error_body, seed=seed)
        self.jwt_ttl = jwt_ttl
        self._key = jwt_key or secrets.token_bytes(32)
        self._lock = threading.RLock()
        self._users: dict[int, FakeUser] = {}
        self._by_key: dict[str, int] = {}
        self._revoked: set[str] = set()
        self._tokens: dict[str, tuple[str, int, str | None, bool]] = {}
        self._next_id = 1
        self._next_reason = 1
        self.verifier = ReplayRejectingVerifier()
        self.outbox: list[SentEmail] = []
        #: What happened: ``login`` (completed: password, plus the second factor when the user
        #: has 2FA), ``password_login`` (each ``POST /login`` with the right password),
        #: ``logout``, ``lockout`` (logins refused because the address was locked out).
        self.counts: Counter[str] = Counter()
        self.admin = AdminHandlers(self)
        self.starlette = self._build_app()
        self._asgi = FaultInjectionMiddleware(self.starlette, self.controls, error_body=nest_error_body)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._asgi(scope, receive, send)

    def __repr__(self) -> str:
        with self._lock:
            accounts = len(self._users)
        return f"MetalCloudFake(accounts={accounts}, logins={self.counts['login']}, clock={self.clock!r})"

    # -- scripting -----------------------------------------------------------------------------

    @property
    def ledger(self) -> Any:
        """The controls' ledger of applied writes (operation, key = user id)."""
        return self.controls.ledger

    def add_user(
        self,
        email: str,
        password: str,
        *,
        display_name: str | None = None,
        access_level: str = "user",
        user_id: int | None = None,
        revision: int = 1,
        totp_secret: str | None = None,
        mfa: bool = False,
        suspended: bool = False,
        archived: bool = False,
        api_key: str | None = None,
        account_id: int | None = None,
        infrastructure_id_default: int | None = None,
        is_billable: bool = True,
        email_verified: bool = True,
    ) -> FakeUser:
        """Create a user and return it.

        Args:
            email: The login.
            password: Its password.
            display_name: The name shown (default: the e-mail's local part).
            access_level: ``user``, ``admin`` or ``root``.
            user_id: An integer id (default: the next free one).
            revision: The user's starting revision.
            totp_secret: A base32 secret: 2FA on.
            mfa: 2FA on with a generated secret (read it back from ``user.totp_secret``).
            suspended: The user starts suspended.
            archived: The user starts archived.
            api_key: The user's API key (default: a random ``"<id>:<63 alphanumerics>"``).
            account_id: The user's account.
            infrastructure_id_default: The user's default infrastructure.
            is_billable: Whether the user is billed.
            email_verified: Whether the address is verified.

        Raises:
            ValueError: An id or e-mail in use.
        """
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1):
            raise ValueError(f"user_id must be a positive integer, not {user_id!r}")
        if mfa and totp_secret is None:
            totp_secret = generate_base32_secret(20)
        with self._lock:
            uid = user_id if user_id is not None else self._next_id
            if uid in self._users:
                raise ValueError(f"user id {uid} already exists")
            if self.find_user(email) is not None:
                raise ValueError(f"e-mail {email!r} already exists")
            self._next_id = max(self._next_id, uid + 1)
            now = self.clock.now()
            user = FakeUser(
                id=uid,
                email=email,
                password=password,
                display_name=display_name or email.split("@")[0],
                access_level=access_level,
                revision=revision,
                totp_secret=totp_secret,
                suspended=suspended,
                archived=archived,
                api_key=api_key or self._new_api_key(uid),
                jwt_salt=secrets.token_hex(16),
                email_verified=email_verified,
                account_id=account_id,
                infrastructure_id_default=infrastructure_id_default,
                is_billable=is_billable,
                created_at=now,
                password_changed_at=now,
                authenticator_created_at=now if totp_secret else None,
            )
            self._users[uid] = user
            self._by_key[user.api_key] = uid
            return user

    def seed_users(self, count: int, *, domain: str = "example.test", start: int | None = None) -> None:
        """Add ``count`` plain users ``user00001@domain`` ... for listing tests and demos.

        Every 10th is archived, every 7th billable-free, access levels cycle.

        Args:
            count: How many.
            domain: Their e-mail domain.
            start: The first id (default: the next free one).
        """
        levels = ("user", "user", "user", "admin")
        with self._lock:
            first = start if start is not None else self._next_id
            for i in range(count):
                n = first + i
                self.add_user(
                    f"user{n:05d}@{domain}",
                    secrets.token_urlsafe(12),
                    display_name=f"User {n:05d}",
                    access_level=levels[n % len(levels)],
                    archived=n % 10 == 0,
                    is_billable=n % 7 != 0,
                    account_id=100 + n % 5,
                    user_id=n,
                )

    def find_user(self, email_or_id: str | int) -> FakeUser | None:
        """A user by id or e-mail (case-insensitive), or None.

        Args:
            email_or_id: The user's e-mail address or id.
        """
        with self._lock:
            if isinstance(email_or_id, int):
                return self._users.get(email_or_id)
            wanted = email_or_id.lower()
            return next((u for u in self._users.values() if u.email.lower() == wanted), None)

    def user(self, email_or_id: str | int) -> FakeUser:
        """A user by id or e-mail (KeyError if none).

        Args:
            email_or_id: The user's e-mail address or id.
        """
        found = self.find_user(email_or_id)
        if found is None:
            raise KeyError(email_or_id)
        return found

    @property
    def users(self) -> list[FakeUser]:
        with self._lock:
            return list(self._users.values())

    def _remember_failures(self, address: str, times: list[float]) -> None:
        """Keep an address's recent failures; the table holds at most MAX_TRACKED_ADDRESSES
        (the oldest entry goes first), so random addresses cannot grow it without bound."""
        self._failed_logins[address] = times
        while len(self._failed_logins) > MAX_TRACKED_ADDRESSES:
            self._failed_logins.pop(next(iter(self._failed_logins)))

    def bump(self, user: FakeUser, operation: str, **details: Any) -> None:
        """Apply a write: bump the revision and record it in the ledger."""
        user.revision += 1
        self.controls.ledger.record(operation, str(user.id), revision=user.revision, **details)

    def force_reenrolment(self, email_or_id: str | int) -> FakeUser:
        """What ``PATCH /users/{id}/config {"authenticatorMustChange": true}`` does, for scripting.

        Args:
            email_or_id: The user's e-mail address or id.
        """
        with self._lock:
            user = self.user(email_or_id)
            user.authenticator_must_change = True
            user.revision += 1
            return user

    def issue_jwt(
        self,
        user: FakeUser | str | int,
        *,
        ttl: float | None = None,
        pending: bool = False,
        enrol: bool = False,
    ) -> str:
        """A session JWT for ``user``, to test calls without logging in.

        Args:
            user: A :class:`FakeUser`, or its e-mail or id.
            ttl: Its lifetime in seconds (default: ``jwt_ttl``).
            pending: Only good for ``/login-2fa``.
            enrol: Only good for enrolling a new authenticator, ``GET /user`` and logout.
        """
        if not isinstance(user, FakeUser):
            user = self.user(user)
        now = self.clock.now()
        short = pending or enrol
        lifetime = PENDING_2FA_TTL if short else (ttl if ttl is not None else self.jwt_ttl)
        claims: dict[str, Any] = {
            "sub": str(user.id),
            "iat": int(now),
            "exp": int(now + lifetime),
            "jti": secrets.token_hex(12),
        }
        if pending:
            claims["2fa"] = "pending"
        elif enrol:
            claims["2fa"] = "enrol"
        return encode_jwt(claims, self._key + user.jwt_salt.encode())

    def _new_api_key(self, uid: int) -> str:
        random_part = "".join(secrets.choice(API_KEY_ALPHABET) for _ in range(API_KEY_RANDOM_LENGTH))
        return f"{uid}:{random_part}"

    # -- authentication ------------------------------------------------------------------------

    def _decode_session(self, token: str) -> tuple[FakeUser, dict[str, Any]]:
        parts = token.split(".")
        if len(parts) != 3:
            raise Fail(401, "Unauthorized")
        try:
            padded = parts[1] + "=" * (-len(parts[1]) % 4)
            sub = load_json(base64.urlsafe_b64decode(padded)).get("sub")
            user = self._users.get(sub if isinstance(sub, int) else parse_int(str(sub)) or 0)
        except (ValueError, TypeError, AttributeError):
            raise Fail(401, "Unauthorized") from None
        if user is None:
            raise Fail(401, "Unauthorized")
        try:
            claims = decode_jwt(token, self._key + user.jwt_salt.encode(), now=self.clock.now())
        except JwtInvalid:
            raise Fail(401, "Unauthorized") from None
        if claims.get("jti") in self._revoked:
            raise Fail(401, "Unauthorized")
        return user, claims

    @staticmethod
    def _bearer(request: Request) -> str | None:
        header = request.headers.get("authorization")
        if header and header[:7].lower() == "bearer ":
            return header[7:].strip() or None
        return None

    def _authenticate(
        self, request: Request, *, allow_api_key: bool = True, allow_enrolment: bool = False
    ) -> tuple[FakeUser, str, Any]:
        """(user, "apiKey" | "jwt", claims) of the caller, or 401. An enrolment-only session
        (a login whose authenticator must change) passes only where ``allow_enrolment``."""
        token = self._bearer(request) or request.cookies.get(JWT_COOKIE)
        if not token:
            raise Fail(401, "Unauthorized")
        if ":" in token and "." not in token:
            uid = self._by_key.get(token)
            user = self._users.get(uid) if uid is not None else None
            if user is None or not allow_api_key:
                raise Fail(401, "Unauthorized")
            kind, claims = "apiKey", None
        else:
            user, claims = self._decode_session(token)
            if claims.get("2fa") == "pending":
                raise Fail(401, "Unauthorized")
            if claims.get("2fa") == "enrol" and not allow_enrolment:
                raise Fail(
                    403, "Two-factor authentication must be enrolled again before this session can be used"
                )
            kind = "jwt"
        if user.suspended or user.archived:
            raise Fail(403, "Forbidden")
        return user, kind, claims

    def _require_admin(self, user: FakeUser) -> None:
        if not user.is_admin:
            raise Fail(403, "Forbidden resource")

    @staticmethod
    def _check_if_match(request: Request, user: FakeUser, *, compare: bool = True) -> None:
        check_if_match(request, user.revision, compare=compare)

    # -- representations -----------------------------------------------------------------------

    def user_json(self, user: FakeUser) -> dict[str, Any]:
        """The ``User`` representation."""
        config = self.config_json(user)
        # A User carries every field of its UserConfiguration, plus its own.
        body: dict[str, Any] = {
            **config,
            "revision": user.revision,
            "id": user.id,
            "email": user.email,
            "authenticatorEnabled": user.mfa,
            "isSuspended": user.suspended,
            "franchise": "metalsoft",
            "createdTimestamp": iso(user.created_at),
            "planType": "vanilla",
            "parentDelegates": [u.email for u in self._users.values() if user.id in u.delegates],
            "childDelegates": [self._users[i].email for i in sorted(user.delegates) if i in self._users],
            "config": config,
            "meta": dict(user.meta),
            "links": [{"rel": "self", "href": f"/api/v2/users/{user.id}"}],
        }
        return body  # accountId / infrastructureIdDefault come with the configuration

    def config_json(self, user: FakeUser) -> dict[str, Any]:
        """The ``UserConfiguration`` representation (its ``revision`` is the user's)."""
        config: dict[str, Any] = {
            "revision": user.revision,
            "displayName": user.display_name,
            "emailStatus": "verified" if user.email_verified else "not_verified",
            "language": "en",
            "brand": "default",
            "isBrandManager": False,
            "lastLoginTimestamp": iso(user.last_login_at or user.created_at),
            "lastLoginType": "md5",
            "isBlocked": False,
            "passwordChangeRequired": user.password_change_required,
            "accessLevel": user.access_level,
            "isBillable": user.is_billable,
            "isTestingMode": False,
            "authenticatorMustChange": user.authenticator_must_change,
            "authenticatorCreatedTimestamp": iso(user.authenticator_created_at or user.created_at),
            "excludeFromReports": False,
            "isTestAccount": False,
            "isArchived": user.archived,
            "isDatastorePublisher": False,
            "provider": "mysql",
            "passwordLastChangedTimestamp": iso(user.password_changed_at),
            **user.config_extra,
        }
        if user.account_id is not None:
            config["accountId"] = user.account_id
        if user.infrastructure_id_default is not None:
            config["infrastructureIdDefault"] = user.infrastructure_id_default
        return config

    def user_info_json(self, user: FakeUser) -> dict[str, Any]:
        """The ``UserInfo`` list item."""
        body: dict[str, Any] = {
            "id": user.id,
            "revision": user.revision,
            "displayName": user.display_name,
            "email": user.email,
            "emailStatus": "verified" if user.email_verified else "not_verified",
            "language": "en",
            "lastLoginTimestamp": iso(user.last_login_at or user.created_at),
            "accessLevel": user.access_level,
            "isArchived": user.archived,
            "createdTimestamp": iso(user.created_at),
            "links": [{"rel": "self", "href": f"/api/v2/users/{user.id}"}],
        }
        if user.account_id is not None:
            body["accountId"] = user.account_id
        return body

    def _user_response(self, user: FakeUser, *, extra: Mapping[str, Any] | None = None) -> JSONResponse:
        body = self.user_json(user)
        if extra:
            body.update(extra)
        return JSONResponse(body, headers={"ETag": str(user.revision)})

    def _session_response(self, user: FakeUser, token: str, *, max_age: int) -> JSONResponse:
        """A login answer: the ``User`` with its ``ETag``, and the session cookie."""
        response = self._user_response(user)
        response.set_cookie(JWT_COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="strict")
        return response

    # -- the app ---------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        def route(path: str, handler: Callable[[Request, Any], Response], method: str) -> Route:
            async def endpoint(request: Request) -> Response:
                try:
                    body: Any = None
                    if method in ("POST", "PATCH", "PUT"):
                        raw = await request.body()
                        if raw:
                            try:
                                body = load_json(raw)
                            except BadJson as exc:
                                raise Fail(400, f"Invalid JSON body: {exc}") from None
                    with self._lock:
                        result: Response = handler(request, body)
                    return result
                except Fail as fail:
                    return JSONResponse(nest_error_body(fail.status, fail.message), status_code=fail.status)

            return Route(path, endpoint, methods=[method])

        p = "/api/v2"
        routes = [
            route(f"{p}/login", self._login, "POST"),
            route(f"{p}/login-2fa", self._login_2fa, "POST"),
            route(f"{p}/logout", self._logout, "POST"),
            route(f"{p}/user", self._get_current_user, "GET"),
            route(f"{p}/user/api-key", self._get_api_key, "GET"),
            route(f"{p}/user/actions/2fa-generate", self._2fa_generate, "POST"),
            route(f"{p}/user/actions/2fa-enable", self._2fa_enable, "POST"),
            route(f"{p}/user/actions/2fa-disable", self._2fa_disable, "POST"),
            route(f"{p}/user/actions/regenerate-api-key", self._regenerate_api_key, "POST"),
            route(f"{p}/user/actions/regenerate-jwt-salt", self._regenerate_jwt_salt, "POST"),
            route(f"{p}/user/actions/change-password", self._change_password, "POST"),
            route(f"{p}/user/actions/initiate-email-change", self._initiate_email_change, "POST"),
            route(f"{p}/user/actions/initiate-password-reset", self._initiate_password_reset, "POST"),
            route(f"{p}/user/actions/verify-email", self._verify_email, "GET"),
            route(f"{p}/user/actions/reset-password", self._reset_password, "GET"),
            route(f"{p}/users", self._list_users, "GET"),
            route(p + "/users/{user_id:int}", self._get_user, "GET"),
            route(p + "/users/{user_id:int}/actions/archive", self._archive, "POST"),
            route(p + "/users/{user_id:int}/actions/unarchive", self._unarchive, "POST"),
            route(p + "/users/{user_id:int}/actions/suspend", self._suspend, "POST"),
            route(p + "/users/{user_id:int}/actions/unsuspend", self._unsuspend, "POST"),
            *(route(p + path, handler, method) for method, path, handler in self.admin.routes()),
        ]

        async def not_found(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 500
            message = f"Cannot {request.method} {request.url.path}" if status in (404, 405) else "Error"
            return JSONResponse(nest_error_body(404 if status == 405 else status, message), status_code=404)

        app = Starlette(routes=routes, exception_handlers={HTTPException: not_found})
        app.state.fake = self
        app.state.controls = self.controls
        return app

    # -- handlers: authentication ----------------------------------------------------------------

    def _login(self, request: Request, body: Any) -> Response:
        errors: list[str] = []
        if not isinstance(body, dict):
            raise Fail(400, ["provider must be one of the following values: mysql, ldap"])
        provider = body.get("provider", "mysql")
        if provider not in ("mysql", "ldap"):
            errors.append("provider must be one of the following values: mysql, ldap")
        props = body.get("properties")
        if not isinstance(props, dict):
            errors.append("properties must be an object")
            props = {}
        email, password = props.get("email"), props.get("password")
        if not isinstance(email, str) or not email:
            errors.append("properties.email must be a string")
        if not isinstance(password, str) or not password:
            errors.append("properties.password must be a string")
        if errors:
            raise Fail(400, errors)
        address = str(email).lower()
        now = self.clock.now()
        recent = [t for t in self._failed_logins.pop(address, []) if now - t < self.failed_login_window]
        if len(recent) >= self.max_failed_logins:
            # The real server's status for a throttled login is undocumented: 403 with a message.
            self._remember_failures(address, recent)
            self.counts["lockout"] += 1
            raise Fail(403, "Too many failed login attempts: try again later")
        user = self.find_user(str(email))
        if user is None or not secrets.compare_digest(user.password.encode(), str(password).encode()):
            recent.append(now)
            self._remember_failures(address, recent[-self.max_failed_logins :])
            raise Fail(401, "Invalid credentials")
        # A right password before the lockout clears the count (it stays popped).
        if user.suspended or user.archived:
            raise Fail(403, "User is suspended or archived")
        self.counts["password_login"] += 1
        if user.authenticator_must_change:
            # Forced re-enrolment: no second factor with the old authenticator; the session only
            # serves 2fa-generate / 2fa-enable until a new authenticator is enabled.
            token = self.issue_jwt(user, enrol=True)
            return self._session_response(user, token, max_age=int(PENDING_2FA_TTL))
        if user.mfa:
            token = self.issue_jwt(user, pending=True)
            return self._session_response(user, token, max_age=int(PENDING_2FA_TTL))
        return self._complete_login(user)

    def _complete_login(self, user: FakeUser) -> Response:
        user.last_login_at = self.clock.now()
        self.counts["login"] += 1
        token = self.issue_jwt(user)
        return self._session_response(user, token, max_age=int(self.jwt_ttl))

    def _login_2fa(self, request: Request, body: Any) -> Response:
        token = self._bearer(request) or request.cookies.get(JWT_COOKIE)
        if not token:
            raise Fail(401, "No pending 2FA login")
        user, claims = self._decode_session(token)
        if claims.get("2fa") != "pending":
            raise Fail(401, "No pending 2FA login")
        code = body.get("token") if isinstance(body, dict) else None
        if not isinstance(code, str) or not code:
            raise Fail(400, ["token must be a string"])
        if user.totp_secret is None:
            raise Fail(404, "User not found")
        if user.suspended or user.archived:
            raise Fail(403, "User is suspended or archived")
        verdict = self.verifier.verify(
            str(user.id), code, secret_base32=user.totp_secret, now=self.clock.now()
        )
        if verdict != "ok":
            raise Fail(401, "Invalid 2FA token" if verdict == "wrong" else "2FA token already used")
        self._revoked.add(str(claims.get("jti")))
        return self._complete_login(user)

    def _logout(self, request: Request, body: Any) -> Response:
        _, kind, claims = self._authenticate(request, allow_enrolment=True)
        if kind != "jwt":
            raise Fail(401, "Logout needs a JWT session")
        self._revoked.add(str(claims.get("jti")))
        self.counts["logout"] += 1
        response = JSONResponse({})
        response.delete_cookie(JWT_COOKIE, path="/")
        return response

    # -- handlers: current user ------------------------------------------------------------------

    def _get_current_user(self, request: Request, body: Any) -> Response:
        user, _, _ = self._authenticate(request, allow_enrolment=True)
        return self._user_response(user)

    def _get_api_key(self, request: Request, body: Any) -> Response:
        user, _, _ = self._authenticate(request)
        return JSONResponse({"apiKey": user.api_key})

    def _2fa_generate(self, request: Request, body: Any) -> Response:
        user, _, _ = self._authenticate(request, allow_enrolment=True)
        secret = generate_base32_secret(20)
        user.pending_totp_secret = secret
        uri = f"otpauth://totp/MetalCloud:{quote(user.email)}?secret={secret}&issuer=MetalCloud"
        return JSONResponse({"qrCode": qr_data_uri(uri), "secret2FA": secret})

    def _2fa_enable(self, request: Request, body: Any) -> Response:
        user, _, claims = self._authenticate(request, allow_enrolment=True)
        code = body.get("token") if isinstance(body, dict) else None
        if not isinstance(code, str) or not code:
            raise Fail(400, ["token must be a string"])
        self._check_if_match(request, user, compare=False)
        if user.mfa and not user.authenticator_must_change:
            raise Fail(409, "2FA already enabled")
        if user.pending_totp_secret is None:
            raise Fail(400, "Invalid user ID or token")
        verdict = self.verifier.verify(
            str(user.id), code, secret_base32=user.pending_totp_secret, now=self.clock.now()
        )
        if verdict != "ok":
            raise Fail(400, "Invalid user ID or token")
        user.totp_secret, user.pending_totp_secret = user.pending_totp_secret, None
        user.authenticator_created_at = self.clock.now()
        if user.authenticator_must_change:
            user.authenticator_must_change = False
            if claims is not None and claims.get("2fa") == "enrol":
                # The enrolment session has served its purpose: the next login uses the new code.
                self._revoked.add(str(claims.get("jti")))
        self.bump(user, "2fa-enable")
        return Response(status_code=200)

    def _2fa_disable(self, request: Request, body: Any) -> Response:
        user, _, _ = self._authenticate(request)
        self._check_if_match(request, user, compare=False)
        if not user.mfa:
            raise Fail(409, "2FA already disabled")
        user.totp_secret = None
        self.verifier.forget(str(user.id))
        self.bump(user, "2fa-disable")
        return Response(status_code=200)

    def _regenerate_api_key(self, request: Request, body: Any) -> Response:
        user, _, _ = self._authenticate(request)
        self._check_if_match(request, user)
        self._by_key.pop(user.api_key, None)
        user.api_key = self._new_api_key(user.id)
        self._by_key[user.api_key] = user.id
        self.bump(user, "regenerate-api-key")
        # The new key rides along in the body (UNCONFIRMED on the real server; the User schema
        # allows extra properties): a caller authenticated by the old key could not fetch it.
        return self._user_response(user, extra={"apiKey": user.api_key})

    def _regenerate_jwt_salt(self, request: Request, body: Any) -> Response:
        user, _, _ = self._authenticate(request)
        self._check_if_match(request, user)
        user.jwt_salt = secrets.token_hex(16)
        self.bump(user, "regenerate-jwt-salt")
        return self._user_response(user)

    def _change_password(self, request: Request, body: Any) -> Response:
        user, _, _ = self._authenticate(request)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("newPassword"), str)
            or not body["newPassword"]
        ):
            raise Fail(400, ["newPassword must be a string"])
        old = body.get("oldPassword")
        if old is not None and not isinstance(old, str):
            raise Fail(400, ["oldPassword must be a string"])
        self._check_if_match(request, user)
        if old is not None and not secrets.compare_digest(old.encode(), user.password.encode()):
            raise Fail(400, "Invalid old password")
        if body["newPassword"] == user.password:
            raise Fail(409, "The new password must differ from the current one")
        user.password = body["newPassword"]
        user.password_changed_at = self.clock.now()
        user.password_change_required = False
        self.bump(user, "change-password")
        return self._user_response(user)

    def _initiate_email_change(self, request: Request, body: Any) -> Response:
        user, _, _ = self._authenticate(request)
        email = body.get("email") if isinstance(body, dict) else None
        if not isinstance(email, str) or "@" not in email:
            raise Fail(400, ["email must be an email"])
        other = self.find_user(email)
        if other is not None and other.id != user.id:
            raise Fail(400, "Email address already in use")
        token = secrets.token_urlsafe(24)
        self._tokens[token] = ("verify-email", user.id, email, False)
        self.outbox.append(SentEmail("verify-email", email, token, user.id))
        return self._user_response(user)

    def _initiate_password_reset(self, request: Request, body: Any) -> Response:
        self._authenticate(request)
        email = body.get("email") if isinstance(body, dict) else None
        if not isinstance(email, str) or not email:
            raise Fail(400, ["email must be a string"])
        target = self.find_user(email)
        if target is not None:  # unknown addresses get the same answer (no enumeration)
            token = secrets.token_urlsafe(24)
            self._tokens[token] = ("reset-password", target.id, None, False)
            self.outbox.append(SentEmail("reset-password", target.email, token, target.id))
        return Response(status_code=200)

    def _use_token(self, request: Request, kind: str) -> tuple[FakeUser, str | None]:
        self._authenticate(request)
        token = request.query_params.get("token")
        if not token:
            raise Fail(400, ["token must be a string"])
        entry = self._tokens.get(token)
        if entry is None or entry[0] != kind:
            raise Fail(400, "Invalid or expired token")
        _, uid, value, used = entry
        if used:
            raise Fail(409, "Token already used")
        user = self._users.get(uid)
        if user is None:
            raise Fail(404, "User not found")
        self._tokens[token] = (kind, uid, value, True)
        return user, value

    def _verify_email(self, request: Request, body: Any) -> Response:
        user, new_email = self._use_token(request, "verify-email")
        if new_email:
            user.email = new_email
        user.email_verified = True
        self.bump(user, "verify-email", email=user.email)
        return Response(status_code=200)

    def _reset_password(self, request: Request, body: Any) -> Response:
        user, _ = self._use_token(request, "reset-password")
        temporary = secrets.token_urlsafe(12)
        user.password = temporary
        user.password_change_required = True
        user.password_changed_at = self.clock.now()
        self.outbox.append(SentEmail("temporary-password", user.email, temporary, user.id))
        self.bump(user, "reset-password")
        return Response(status_code=200)

    # -- handlers: administration ----------------------------------------------------------------

    def _target(self, request: Request) -> tuple[FakeUser, FakeUser]:
        caller, _, _ = self._authenticate(request)
        uid = int(request.path_params["user_id"])
        if uid != caller.id:
            self._require_admin(caller)
        target = self._users.get(uid)
        if target is None:
            raise Fail(404, "User not found")
        return caller, target

    def _get_user(self, request: Request, body: Any) -> Response:
        _, target = self._target(request)
        return self._user_response(target)

    def _archive(self, request: Request, body: Any) -> Response:
        return self._set_archived(request, True)

    def _unarchive(self, request: Request, body: Any) -> Response:
        return self._set_archived(request, False)

    def _set_archived(self, request: Request, archived: bool) -> Response:
        caller, target = self._target(request)
        self._require_admin(caller)
        self._check_if_match(request, target)
        if target.archived == archived:
            raise Fail(409, "User already archived" if archived else "User is not archived")
        target.archived = archived
        self.bump(target, "archive" if archived else "unarchive")
        return self._user_response(target)

    def _suspend(self, request: Request, body: Any) -> Response:
        caller, target = self._target(request)
        self._require_admin(caller)
        errors = []
        if not isinstance(body, dict):
            body = {}
        if body.get("suspendReason") not in ("unpaid", "custom"):
            errors.append("suspendReason must be one of the following values: unpaid, custom")
        if not isinstance(body.get("suspendReasonPublicComment"), str):
            errors.append("suspendReasonPublicComment must be a string")
        private = body.get("suspendReasonPrivateComment")
        if private is not None and not isinstance(private, str):
            errors.append("suspendReasonPrivateComment must be a string")
        if errors:
            raise Fail(400, errors)
        self._check_if_match(request, target)
        if target.suspended:
            raise Fail(409, "User already suspended")
        target.suspended = True
        reason: dict[str, Any] = {
            "id": self._next_reason,
            "userId": target.id,
            "type": body["suspendReason"],
            "createdTimestamp": iso(self.clock.now()),
            "publicComment": body["suspendReasonPublicComment"],
        }
        if private is not None:
            reason["privateComment"] = private
        self._next_reason += 1
        target.suspend_reasons.append(reason)
        self.bump(target, "suspend", reason=body["suspendReason"])
        return JSONResponse(reason)

    def _unsuspend(self, request: Request, body: Any) -> Response:
        caller, target = self._target(request)
        self._require_admin(caller)
        self._check_if_match(request, target)
        if not target.suspended:
            raise Fail(409, "User is not suspended")
        target.suspended = False
        if target.suspend_reasons:
            target.suspend_reasons[-1]["endTimestamp"] = iso(self.clock.now())
        self.bump(target, "unsuspend")
        return Response(status_code=200)

    # -- listing -----------------------------------------------------------------------------------

    def _list_users(self, request: Request, body: Any) -> Response:
        caller, _, _ = self._authenticate(request)
        self._require_admin(caller)
        query = request.query_params
        page = _positive_int(query.get("page"), 1)
        limit = min(_positive_int(query.get("limit"), 20), 100)
        users = list(self._users.values())
        filters: dict[str, list[str]] = {}
        for name in _FILTER_GETTERS:
            values = query.getlist(f"filter.{name}")
            if values:
                filters[name] = values
                users = [u for u in users if _matches(_FILTER_GETTERS[name](u), values)]
        search = query.get("search") or None
        search_by = [f for f in query.getlist("searchBy") if f in ("displayName", "email")] or [
            "displayName",
            "email",
        ]
        if search:
            needle = search.lower()
            users = [
                u
                for u in users
                if ("displayName" in search_by and needle in u.display_name.lower())
                or ("email" in search_by and needle in u.email.lower())
            ]
        sort_by: list[list[str]] = []
        for item in query.getlist("sortBy"):
            fname, _, direction = item.partition(":")
            if fname in ("id", "displayName") and direction.upper() in ("ASC", "DESC"):
                sort_by.append([fname, direction.upper()])
        if not sort_by:
            sort_by = [["displayName", "DESC"]]
        for fname, direction in reversed(sort_by):
            key: Callable[[FakeUser], Any] = (
                (lambda u: u.id) if fname == "id" else (lambda u: u.display_name.lower())
            )
            users.sort(key=key, reverse=direction == "DESC")
        total = len(users)
        total_pages = math.ceil(total / limit)
        chunk = users[(page - 1) * limit : page * limit]
        meta: dict[str, Any] = {
            "itemsPerPage": limit,
            "totalItems": total,
            "currentPage": page,
            "totalPages": total_pages,
            "sortBy": sort_by,
            "searchBy": search_by,
        }
        if search:
            meta["search"] = search
        # nestjs-paginate also echoes ``filter``; the spec declares it an object with no allowed
        # properties, so it is left out to keep every answer valid against the contract.
        base = str(request.url.replace(query=""))
        common: list[tuple[str, str]] = [("limit", str(limit))]
        common += [("sortBy", f"{f}:{d}") for f, d in sort_by]
        if search:
            common.append(("search", search))
        for name, values in filters.items():
            common += [(f"filter.{name}", v) for v in values]

        def link(n: int) -> str:
            return base + "?" + urlencode([("page", str(n)), *common])

        links: dict[str, str] = {"current": link(page)}
        if total_pages:
            links["first"] = link(1)
            links["last"] = link(total_pages)
        if 1 < page <= total_pages + 1:
            links["previous"] = link(page - 1)
        if page < total_pages:
            links["next"] = link(page + 1)
        return JSONResponse({"data": [self.user_info_json(u) for u in chunk], "meta": meta, "links": links})


def _positive_int(value: str | None, default: int) -> int:
    """A page or limit: a plain decimal integer >= 1, else ``default`` (``inf``, ``1e400`` and
    ``1.5`` included: the fake's choice; nestjs-paginate's ``parseInt`` would read a prefix)."""
    number = parse_int(value)
    return number if number is not None and number >= 1 else default


_FILTER_GETTERS: dict[str, Callable[[FakeUser], Any]] = {
    "id": lambda u: u.id,
    "displayName": lambda u: u.display_name,
    "email": lambda u: u.email,
    "accountId": lambda u: u.account_id,
    "archived": lambda u: u.archived,
    "infrastructureIdDefault": lambda u: u.infrastructure_id_default,
    "accessLevel": lambda u: u.access_level,
    "isBillable": lambda u: u.is_billable,
}


def _coerce(actual: Any, text: str) -> Any:
    if isinstance(actual, bool):
        return text.lower() in ("1", "true")
    if isinstance(actual, int):
        return parse_int(text)
    return text


def _condition(actual: Any, expression: str) -> bool:
    negate = False
    if expression.startswith("$not:"):
        negate, expression = True, expression[5:]
    op, value = "$eq", expression
    if expression.startswith("$"):
        op, _, value = expression.partition(":")
    if op == "$null":
        result = actual is None
    elif actual is None:
        result = False
    elif op == "$eq":
        result = actual == _coerce(actual, value)
    elif op == "$in":
        result = actual in {_coerce(actual, v) for v in value.split(",")}
    elif op in ("$gt", "$gte", "$lt", "$lte"):
        other = _coerce(actual, value)
        if other is None:
            result = False
        else:
            result = {
                "$gt": actual > other,
                "$gte": actual >= other,
                "$lt": actual < other,
                "$lte": actual <= other,
            }[op]
    elif op == "$ilike":
        result = value.lower() in str(actual).lower()
    elif op == "$sw":
        result = str(actual).lower().startswith(value.lower())
    else:
        result = False
    return not result if negate else result


def _matches(actual: Any, expressions: Iterable[str]) -> bool:
    """nestjs-paginate: conditions on one field combine left to right, ``$or:`` / ``$and:``
    prefixes choosing the connective (AND by default)."""
    result: bool | None = None
    for expression in expressions:
        connective = "$and"
        if expression.startswith(("$or:", "$and:")):
            connective, _, expression = expression.partition(":")
        value = _condition(actual, expression)
        if result is None:
            result = value
        elif connective == "$or":
            result = result or value
        else:
            result = result and value
    return True if result is None else result
