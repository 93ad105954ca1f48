"""A Quatrix API 1.0 fake that behaves like the real service, as one ASGI app.

What it enforces (each rule from the public API references; invented details are marked):

* ``GET /session/login`` with HTTP Basic. ``200`` + ``{session_id}`` for users without MFA;
  ``207`` + ``{session_id}`` + ``Mfa-Code: 71`` (2FA) or ``73`` (PIN) for users with MFA.
* ``POST /session/login`` with ``X-Auth-Token: <partial session>`` and ``{auth_type, code}``:
  a TOTP code plain, a PIN as base64 of its UTF-8 bytes (Maytech's C# client). By default the
  legacy ``{auth_type, value: {code}}`` / ``{auth_type, value: {pin}}`` shapes and a plain PIN
  are accepted too; ``strict_mfa_body=True`` accepts only the documented flat shape with a
  base64 PIN.
  TOTP codes are checked for real (±1 step of 30 s) and a code whose time step was already
  used is refused (``401``, code 83). A wrong PIN is ``401``, code 84. The session id stays the
  same and is returned again.
* Login is rate limited (CONFIRMED in the v1.0 docs: "Requests / 15-min window (user auth) 15"):
  ``login_budget`` Basic logins per e-mail within ``login_window`` seconds (15 in 900 s by
  default; ``None`` turns it off). The status of a throttled login is UNCONFIRMED; the fake
  answers ``429`` + ``Retry-After`` (seconds until the oldest login leaves the window) and an
  ErrorModel with code -1, the most plausible choice. Right or wrong password, every attempt
  counts; the MFA step does not.
* Sessions die after 15 minutes without an API call (on the injectable clock); any call,
  ``/session/keepalive`` included, refreshes them; ``/session/logout`` ends them. A dead or
  unknown session is ``401`` with code 14 (the real code is UNCONFIRMED).
* CAPTCHA (how the real service signals it is UNCONFIRMED; this is the fake's choice): after
  ``captcha_after`` failed logins in a row (wrong password or wrong code) the next login with the
  right password answers ``207`` + ``Mfa-Code: 61`` and a blocked session id. Unblock it with
  ``GET /session/unblock-captcha?token=...`` (the current contract, CONFIRMED) or the older
  ``POST /session/unblock-captcha {"token": ...}``, carrying that session id; the right token is
  :attr:`QuatrixFake.captcha_token`. A wrong token is ``401`` ``{"valid": false}``. Once
  unblocked, the session continues with the user's MFA step, if any.
* API keys (CONFIRMED first class in the current documentation): ``Authorization: Bearer <key>``
  wherever a session id would do, with no session and no MFA step. Keys belong to one user,
  several per user; :meth:`QuatrixFake.issue_api_key` makes one, :meth:`QuatrixFake.revoke_api_key`
  ends it. An unknown or revoked key is ``401`` code 14, like a dead session (UNCONFIRMED).
  A request with both a key and ``X-Auth-Token`` is judged by the key (the fake's choice).
* Admin calls (``/user/...``) need an administrator (``403``, code 70 otherwise); unknown ids are
  ``400`` code 20 and nothing is applied. ``/user/set-mfa``, ``/user/reset-mfa`` and
  ``/user/remove-mfa`` close every session of the users. ``/user/set-mfa`` with ``PIN`` sets the
  PIN to ``code``; with ``2FA`` it forces 2FA (the meaning of ``code`` there is UNCONFIRMED and
  it is ignored); a user forced to 2FA without a secret logs in with a 207 + 71 whose partial
  session may call ``/profile/2fa/generate`` and ``/profile/set-mfa`` to set it up.
* ``GET /profile/2fa/generate`` answers ``application/octet-stream``: base64 text of a PNG QR code
  of the pending ``otpauth://totp/Quatrix:<email>?secret=...&issuer=Quatrix`` URI, and nothing
  else (CONFIRMED: octet-stream, "Image in base64 with QR code", no secret field; the exact
  encoding is UNCONFIRMED, so ``two_factor_image`` also serves ``"png"`` bytes, a ``"data-uri"``
  or the older ``"json"`` object). Tests learn the pending secret by decoding the image, or
  from ``fake.user(email).pending_totp_secret``.
* Errors are ``{"code", "msg"}`` ErrorModels with the real codes, always sent as
  ``application/json`` (unknown paths and methods included). Every applied write is recorded in
  ``fake.ledger``; latency, rate limiting and faults come from ``fake.controls``
  (:class:`~mfa_common.testing.FaultInjectionMiddleware`).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import random
import secrets
import threading
import uuid
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import attrs
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
    Ledger,
    ReplayRejectingVerifier,
    generate_base32_secret,
    load_json,
)

from .. import _constants as C

__all__ = [
    "FakeSession",
    "FakeUser",
    "MfaKind",
    "QuatrixFake",
    "TwoFactorImage",
]

MfaKind = Literal["none", "2fa", "pin"]
SessionState = Literal["active", "mfa", "captcha"]
#: How ``/profile/2fa/generate`` encodes its PNG (``"base64"`` text is the default).
TwoFactorImage = Literal["base64", "png", "data-uri", "json"]


@attrs.define
class FakeUser:
    """A scriptable account user: e-mail, password, MFA kind (``mfa_kind``: ``"none"``, ``"2fa"``
    with a base32 ``totp_secret``, ``"pin"`` with a ``pin``), admin rights. A ``"2fa"`` user
    without a secret must set one up at the next login. Made by :meth:`QuatrixFake.add_user`."""

    email: str
    password: str = attrs.field(repr=False)
    mfa_kind: MfaKind = "none"
    totp_secret: str | None = attrs.field(default=None, repr=False)
    pin: str | None = attrs.field(default=None, repr=False)
    admin: bool = False
    name: str = ""
    id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    language: str = "eng"
    message_signature: str = ""
    forced_auth: list[str] = attrs.field(factory=list)
    blacklisted: bool = False
    suspended: bool = False
    failed_logins: int = 0
    captcha_required: bool = False
    pending_totp_secret: str | None = attrs.field(default=None, repr=False)
    created: float = 0.0
    modified: float = 0.0
    last_login: float | None = None

    @property
    def mfa(self) -> bool:
        """Whether the user has a second factor (2FA or PIN)."""
        return self.mfa_kind != "none"

    @property
    def auth_methods(self) -> list[str]:
        return {"2fa": ["2FA"], "pin": ["PIN"]}.get(self.mfa_kind, [])


@attrs.define
class FakeSession:
    """A session of the fake: ``state`` is ``"active"``, ``"mfa"`` (waiting for the MFA step) or
    ``"captcha"`` (blocked until a CAPTCHA is solved)."""

    id: str = attrs.field(repr=False)
    user_id: str
    state: SessionState
    last_active: float


class QxError(Exception):
    """An error answer: HTTP ``status`` and the ErrorModel ``{code, msg}``."""

    def __init__(self, status: int, code: int, msg: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = dict(headers or {})


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"code": -1, "msg": message}


def _qr_png(text: str) -> bytes:
    """A PNG of the QR code of ``text``, drawn with segno."""
    import segno

    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=4)
    return buffer.getvalue()


def _b64_text(value: str) -> str | None:
    """``value`` decoded from base64 as UTF-8 text, or None when it is not that."""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


class QuatrixFake:
    """The fake Quatrix server; see the module docstring. It is itself an ASGI app.

    Counters for tests: :attr:`counts` (``basic_login``, ``mfa_step``, ``login_ok``,
    ``keepalive``, ``logout``, ``captcha_unblocked``) and :meth:`logins_of`.

    Args:
        clock: Drives TOTP and session expiry (share a ``FakeClock`` with the client in tests).
        controls: Latency, rate limiting and fault injection (a :class:`~mfa_common.testing.FakeControls`).
        captcha_after: Failed logins in a row that trigger the CAPTCHA.
        captcha_token: The token that solves it.
        session_idle_timeout: Seconds without a call after which a session dies (15 minutes).
        account_forced_2fa: 2FA is forced for the whole account (``remove-mfa`` is refused).
        user_limit: The account's user licences (``/profile/info``).
        two_factor_image: The encoding of the 2FA QR image: ``"base64"``, ``"png"``,
            ``"data-uri"`` or the older ``"json"`` object.
        login_budget: Basic logins allowed per e-mail within ``login_window`` (15 by default;
            None turns the limit off).
        login_window: Seconds the login budget is counted over (900).
        seed: Makes generated ids and secrets reproducible.
        strict_mfa_body: Accept only the documented flat MFA body with a base64 PIN.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        controls: FakeControls | None = None,
        captcha_after: int = 3,
        captcha_token: str = "captcha-solved",
        session_idle_timeout: float = C.SESSION_IDLE_TIMEOUT,
        account_forced_2fa: bool = False,
        user_limit: int = 50,
        two_factor_image: TwoFactorImage = "base64",
        login_budget: int | None = C.LOGIN_RATE_LIMIT,
        login_window: float = C.LOGIN_RATE_WINDOW,
        seed: int | None = None,
        strict_mfa_body: bool = False,
    ) -> None:
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.strict_mfa_body = strict_mfa_body
        self.controls = controls or FakeControls(error_body=_error_body)
        self.captcha_after = captcha_after
        self.captcha_token = captcha_token
        self.session_idle_timeout = session_idle_timeout
        self.account_forced_2fa = account_forced_2fa
        self.user_limit = user_limit
        self.two_factor_image: TwoFactorImage = two_factor_image
        self.login_budget = login_budget
        self.login_window = login_window
        self._login_attempts: dict[str, deque[float]] = {}
        self.verifier = ReplayRejectingVerifier()
        self.counts: Counter[str] = Counter()
        self._logins: Counter[str] = Counter()
        self._rng = random.Random(seed) if seed is not None else None
        self._lock = threading.RLock()
        self._users: dict[str, FakeUser] = {}
        self._sessions: dict[str, FakeSession] = {}
        self._api_keys: dict[str, str] = {}  # key -> user id
        self.account_id = self._new_id()
        routes = [
            Route(C.API_PREFIX + "/session/login", self._login_basic, methods=["GET"]),
            Route(C.API_PREFIX + "/session/login", self._login_mfa, methods=["POST"]),
            Route(C.API_PREFIX + "/session/keepalive", self._keepalive, methods=["GET"]),
            Route(C.API_PREFIX + "/session/logout", self._logout, methods=["GET"]),
            Route(C.API_PREFIX + "/session/unblock-captcha", self._unblock_captcha, methods=["GET", "POST"]),
            Route(C.API_PREFIX + "/profile", self._profile, methods=["GET"]),
            Route(C.API_PREFIX + "/profile/info", self._profile_info, methods=["GET"]),
            Route(C.API_PREFIX + "/profile/set", self._profile_set, methods=["POST"]),
            Route(C.API_PREFIX + "/profile/set-password", self._profile_set_password, methods=["POST"]),
            Route(C.API_PREFIX + "/profile/2fa/generate", self._generate_2fa, methods=["GET"]),
            Route(C.API_PREFIX + "/profile/set-mfa", self._profile_set_mfa, methods=["POST"]),
            Route(C.API_PREFIX + "/profile/remove-mfa", self._profile_remove_mfa, methods=["POST"]),
            Route(C.API_PREFIX + "/user", self._user_list, methods=["GET"]),
            Route(C.API_PREFIX + "/user/metadata/{id}", self._user_metadata, methods=["GET"]),
            Route(C.API_PREFIX + "/user/set-mfa", self._user_set_mfa, methods=["POST"]),
            Route(C.API_PREFIX + "/user/reset-mfa", self._user_reset_mfa, methods=["POST"]),
            Route(C.API_PREFIX + "/user/remove-mfa", self._user_remove_mfa, methods=["POST"]),
        ]
        self.starlette = Starlette(
            routes=routes, exception_handlers={QxError: self._on_error, HTTPException: self._on_http_error}
        )
        self.starlette.state.controls = self.controls
        self._asgi = FaultInjectionMiddleware(self.starlette, self.controls, error_body=_error_body)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._asgi(scope, receive, send)

    # -- scripting -----------------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        """Every write the fake applied (operation, key = user id, details)."""
        return self.controls.ledger

    def _new_id(self) -> str:
        if self._rng is not None:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        return str(uuid.uuid4())

    def add_user(
        self,
        email: str,
        password: str,
        *,
        mfa: bool = False,
        totp_secret: str | None = None,
        pin: str | None = None,
        admin: bool = False,
        name: str = "",
    ) -> FakeUser:
        """Add an account to log in with and return it.

        With ``totp_secret`` (base32) it has 2FA, ``mfa=True`` alone generates the secret (read it
        back from ``user.totp_secret``), with ``pin`` it has a PIN, with none of them no MFA::

            fake = QuatrixFake()
            fake.add_user("ops@acme.example", "ops-password", totp_secret="JBSWY3DPEHPK3PXP", admin=True)
            fake.add_user("bob@acme.example", "bob-password", pin="12345")

        Args:
            email: The login.
            password: Its password.
            mfa: 2FA with a generated secret.
            totp_secret: 2FA with this base32 secret.
            pin: A PIN instead of 2FA.
            admin: May call ``/user/...``.
            name: The display name.

        Raises:
            ValueError: A PIN together with 2FA, or an e-mail in use.
        """
        if pin is not None and (mfa or totp_secret is not None):
            raise ValueError("give totp_secret= (or mfa=True) or pin=, not both")
        if mfa and totp_secret is None:
            totp_secret = generate_base32_secret(20, self._rng)
        kind: MfaKind = "2fa" if totp_secret is not None else "pin" if pin is not None else "none"
        now = self.clock.now()
        user = FakeUser(
            email=email,
            password=password,
            mfa_kind=kind,
            totp_secret=totp_secret,
            pin=pin,
            admin=admin,
            name=name,
            created=now,
            modified=now,
        )
        with self._lock:
            if any(u.email.lower() == email.lower() for u in self._users.values()):
                raise ValueError(f"user {email!r} exists")
            self._users[user.id] = user
        return user

    def __repr__(self) -> str:
        with self._lock:
            accounts, sessions = len(self._users), len(self._sessions)
        return f"QuatrixFake(accounts={accounts}, sessions={sessions}, clock={self.clock!r})"

    def user(self, email: str) -> FakeUser:
        """The user with this e-mail (KeyError if none).

        Args:
            email: The user's e-mail address.
        """
        with self._lock:
            for user in self._users.values():
                if user.email.lower() == email.lower():
                    return user
        raise KeyError(email)

    @property
    def users(self) -> list[FakeUser]:
        with self._lock:
            return list(self._users.values())

    def sessions_of(self, email: str, *, state: SessionState | None = "active") -> list[FakeSession]:
        """Live (unexpired) sessions of a user, by default only the fully logged-in ones.

        Args:
            email: The user's e-mail address.
            state: Only sessions in this state (None: all).
        """
        user = self.user(email)
        now = self.clock.now()
        with self._lock:
            return [
                s
                for s in self._sessions.values()
                if s.user_id == user.id
                and now - s.last_active <= self.session_idle_timeout
                and (state is None or s.state == state)
            ]

    def logins_of(self, email: str) -> int:
        """Completed logins (after any MFA step) of a user.

        Args:
            email: The user's e-mail address.
        """
        return self._logins[email.lower()]

    def issue_api_key(self, email: str) -> str:
        """A new API key for this user (a user may hold several).

        Args:
            email: The user's e-mail address.
        """
        with self._lock:
            user = self.user(email)
            key = "qx_" + secrets.token_urlsafe(30)
            self._api_keys[key] = user.id
            return key

    def revoke_api_key(self, key: str) -> None:
        """End a key at once (unknown keys are ignored).

        Args:
            key: The key.
        """
        with self._lock:
            self._api_keys.pop(key, None)

    def api_keys_of(self, email: str) -> int:
        """How many live keys this user holds.

        Args:
            email: The user's e-mail address.
        """
        user = self.user(email)
        with self._lock:
            return sum(1 for owner in self._api_keys.values() if owner == user.id)

    def open_session(self, email: str) -> str:
        """A fully logged-in session id for this user, made without a login.

        It spends no login budget: for tests that exercise other operations.

        Args:
            email: The user's e-mail address.
        """
        with self._lock:
            return self._new_session(self.user(email), "active").id

    def expire_all_sessions(self) -> None:
        """Forget every session (as a server restart would)."""
        with self._lock:
            self._sessions.clear()

    def block_with_captcha(self, email: str) -> None:
        """Make the user's next login with the right password need a CAPTCHA.

        Args:
            email: The user's e-mail address.
        """
        with self._lock:
            self.user(email).captcha_required = True

    # -- helpers -------------------------------------------------------------------------------

    async def _on_http_error(self, request: Request, exc: Exception) -> Response:
        """Unknown paths and methods answer an ErrorModel too (always ``application/json``)."""
        assert isinstance(exc, HTTPException)
        return JSONResponse(
            {"code": -1, "msg": f"{exc.detail}: {request.method} {request.url.path}"},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    async def _on_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, QxError)
        return JSONResponse({"code": exc.code, "msg": exc.msg}, status_code=exc.status, headers=exc.headers)

    async def _json(self, request: Request, *, required: bool = True) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            if required:
                raise QxError(400, 11, "Missing request body")
            return {}
        try:
            data = load_json(raw)
        except BadJson as exc:
            raise QxError(400, 10, f"Request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise QxError(400, 10, "Request body must be a JSON object")
        return data

    def _session(self, request: Request, *, allow_setup: bool = False) -> tuple[FakeSession, FakeUser]:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return self._api_key_caller(key.strip())
        token = request.headers.get(C.AUTH_TOKEN_HEADER)
        if not token:
            raise QxError(401, 14, "Not authorized: X-Auth-Token is missing")
        now = self.clock.now()
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and now - session.last_active > self.session_idle_timeout:
                del self._sessions[token]
                session = None
            if session is None:
                raise QxError(401, 14, "Not authorized: the session expired or does not exist")
            user = self._users.get(session.user_id)
            if user is None:
                del self._sessions[token]
                raise QxError(401, 14, "Not authorized: the user no longer exists")
            if session.state == "captcha":
                raise QxError(401, 70, "Action is not allowed: solve the CAPTCHA first")
            if session.state == "mfa":
                setup = allow_setup and user.mfa_kind == "2fa" and user.totp_secret is None
                if not setup:
                    code = 73 if user.mfa_kind == "pin" else 71
                    raise QxError(401, code, "Action is not allowed without the MFA step")
            session.last_active = now
            return session, user

    def _api_key_caller(self, key: str) -> tuple[FakeSession, FakeUser]:
        """(a transient session, the user) of an API key; 401 code 14 when it is not live."""
        with self._lock:
            user = self._users.get(self._api_keys.get(key, ""))
            if user is None:
                raise QxError(401, 14, "Not authorized: the API key is not valid")
            self.counts["api_key_call"] += 1
            # Not stored: a key is no session, so closing "other sessions" closes them all.
            return FakeSession("api-key", user.id, "active", self.clock.now()), user

    def _spend_login_budget(self, email: str) -> None:
        """Count one Basic login of ``email``; 429 + ``Retry-After`` once the window is full."""
        if self.login_budget is None:
            return
        now = self.clock.now()
        attempts = self._login_attempts.setdefault(email.lower(), deque())
        while attempts and now - attempts[0] >= self.login_window:
            attempts.popleft()
        if len(attempts) >= self.login_budget:
            self.counts["login_throttled"] += 1
            oldest = attempts[0] if attempts else now  # a budget of 0 refuses every login
            wait = max(1, math.ceil(oldest + self.login_window - now))
            raise QxError(429, -1, "Too many logins: try again later", headers={"Retry-After": str(wait)})
        attempts.append(now)

    def _admin(self, request: Request) -> FakeUser:
        _, user = self._session(request)
        if not user.admin:
            raise QxError(403, 70, "Action is not allowed")
        return user

    def _close_sessions(self, user_id: str, *, keep: str | None = None) -> list[str]:
        closed = [sid for sid, s in self._sessions.items() if s.user_id == user_id and sid != keep]
        for sid in closed:
            del self._sessions[sid]
        return closed

    def _new_session(self, user: FakeUser, state: SessionState) -> FakeSession:
        session = FakeSession(self._new_id(), user.id, state, self.clock.now())
        self._sessions[session.id] = session
        return session

    def _failed(self, user: FakeUser) -> None:
        user.failed_logins += 1
        if user.failed_logins >= self.captcha_after:
            user.captcha_required = True

    def _logged_in(self, user: FakeUser) -> None:
        user.failed_logins = 0
        user.last_login = self.clock.now()
        self.counts["login_ok"] += 1
        self._logins[user.email.lower()] += 1

    def _profile_json(self, user: FakeUser) -> dict[str, Any]:
        return {
            "id": user.id,
            "name": user.name,
            "email": user.email,
            "super_admin": "Y" if user.admin else "N",
            "home_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "home:" + user.id)),
            "operations": 1023 if user.admin else 255,
            "max_file_size": 10 * 2**30,
            "max_files_per_share": 100,
            "plan": "business",
            "is_contact": False,
            "language": user.language,
            "account_id": self.account_id,
            "created": user.created,
            "modified": user.modified,
            "quota": 0,
            "status": "A",
            "has_key": False,
            "pgp_enabled": False,
            "message_signature": user.message_signature,
            "services": [],
            "share_types": {"restricted_share": True, "public_share": True, "tracked_share": True},
            "auth_methods": user.auth_methods,
            "account_status": "S" if user.suspended else "A",
            "forced_auth": list(user.forced_auth),
        }

    def _user_json(self, user: FakeUser) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": user.id,
            "parent_id": self.account_id,
            "home_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "home:" + user.id)),
            "home_name": user.name or user.email,
            "super_admin": "Y" if user.admin else "N",
            "name": user.name,
            "email": user.email,
            "status": "S" if user.suspended else "A",
            "quota": 0,
            "created": user.created,
            "modified": user.modified,
            "groups": [],
            "language": user.language,
            "has_key": False,
            "services": [],
            "readonly": False,
            "auth_methods": user.auth_methods,
            "storage_used": 0,
            "forced_auth": list(user.forced_auth),
        }
        if user.last_login is not None:
            data["last_login"] = user.last_login
        return data

    def _ids(self, body: Mapping[str, Any]) -> list[FakeUser]:
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise QxError(400, 11, "ids must be a non-empty list of user ids")
        with self._lock:
            missing = [i for i in ids if i not in self._users]
            if missing:
                raise QxError(400, 20, f"{len(missing)} user id(s) not found")
            return [self._users[i] for i in dict.fromkeys(ids)]

    @staticmethod
    def _auth_type(body: Mapping[str, Any], allowed: tuple[str, ...] = ("2FA", "PIN")) -> str:
        auth_type = body.get("auth_type")
        if auth_type not in allowed:
            raise QxError(400, 10, f"auth_type must be one of {', '.join(allowed)}")
        return str(auth_type)

    # -- session -------------------------------------------------------------------------------

    async def _login_basic(self, request: Request) -> Response:
        self.counts["basic_login"] += 1
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            if scheme.lower() != "basic":
                raise ValueError
            email, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
            if not sep:
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise QxError(401, 14, "Not authorized: HTTP Basic credentials are required") from None
        with self._lock:
            self._spend_login_budget(email)
            try:
                user = self.user(email)
            except KeyError:
                raise QxError(401, 14, "Wrong e-mail or password") from None
            if user.blacklisted:
                raise QxError(401, 74, "The user is in the blacklist")
            if not _same(password, user.password):
                self._failed(user)
                raise QxError(401, 14, "Wrong e-mail or password")
            if user.suspended:
                raise QxError(401, 13, "The account is suspended")
            if user.captcha_required:
                session = self._new_session(user, "captcha")
                return JSONResponse(
                    {"session_id": session.id},
                    status_code=207,
                    headers={C.MFA_CODE_HEADER: str(C.MFA_CODE_CAPTCHA)},
                )
            if user.mfa_kind == "none":
                session = self._new_session(user, "active")
                self._logged_in(user)
                return JSONResponse({"session_id": session.id})
            session = self._new_session(user, "mfa")
            code = C.MFA_CODE_PIN if user.mfa_kind == "pin" else C.MFA_CODE_2FA
            return JSONResponse(
                {"session_id": session.id}, status_code=207, headers={C.MFA_CODE_HEADER: str(code)}
            )

    async def _login_mfa(self, request: Request) -> Response:
        body = await self._json(request)
        token = request.headers.get(C.AUTH_TOKEN_HEADER, "")
        now = self.clock.now()
        with self._lock:
            self.counts["mfa_step"] += 1
            session = self._sessions.get(token)
            if session is not None and now - session.last_active > self.session_idle_timeout:
                del self._sessions[token]
                session = None
            if session is None or session.state != "mfa":
                raise QxError(401, 14, "Not authorized: no login is waiting for an MFA step")
            user = self._users[session.user_id]
            auth_type = body.get("auth_type")
            code = body.get("code")
            value = body.get("value")
            pins: list[str] = []  # what a PIN may be: base64-decoded always, plain when lenient
            if code is None and isinstance(value, dict) and not self.strict_mfa_body:
                code = value.get("code")  # the legacy 2018 shapes
                if code is None and isinstance(value.get("pin"), str):
                    code = value["pin"]
            if not isinstance(code, str):
                code = ""
            decoded = _b64_text(code)
            if decoded is not None:
                pins.append(decoded)
            if not self.strict_mfa_body:
                pins.append(code)
            expected = "PIN" if user.mfa_kind == "pin" else "2FA"
            if auth_type != expected:
                del self._sessions[token]
                self._failed(user)
                raise QxError(401, 73 if expected == "PIN" else 71, f"This login needs auth_type {expected}")
            if expected == "PIN":
                ok = user.pin is not None and any(_same(pin, user.pin) for pin in pins)
                wrong_code, wrong_msg = 84, "Wrong user PIN"
            else:
                ok = user.totp_secret is not None and (
                    self.verifier.verify(user.id, code, secret_base32=user.totp_secret, now=now, window=1)
                    == "ok"
                )
                wrong_code, wrong_msg = 83, "Wrong authentication code"
            if not ok:
                del self._sessions[token]
                self._failed(user)
                raise QxError(401, wrong_code, wrong_msg)
            session.state = "active"
            session.last_active = now
            self._logged_in(user)
            return JSONResponse({"session_id": session.id})

    async def _keepalive(self, request: Request) -> Response:
        self._session(request)
        self.counts["keepalive"] += 1
        return Response(status_code=200)

    async def _logout(self, request: Request) -> Response:
        token = request.headers.get(C.AUTH_TOKEN_HEADER, "")
        with self._lock:
            self.counts["logout"] += 1
            self._sessions.pop(token, None)
        return Response(status_code=200)

    async def _unblock_captcha(self, request: Request) -> Response:
        if request.method == "GET":
            token_value: Any = request.query_params.get("token")
        else:
            token_value = (await self._json(request)).get("token")
        if not isinstance(token_value, str) or not token_value:
            raise QxError(400, 11, "token is required")
        sid = request.headers.get(C.AUTH_TOKEN_HEADER, "")
        with self._lock:
            session = self._sessions.get(sid)
            if session is None or session.state != "captcha":
                raise QxError(400, 10, "The session is not waiting for a CAPTCHA")
            if not _same(token_value, self.captcha_token):
                return JSONResponse({"valid": False}, status_code=401)
            user = self._users[session.user_id]
            user.captcha_required = False
            user.failed_logins = 0
            session.last_active = self.clock.now()
            if user.mfa_kind == "none":
                session.state = "active"
                self._logged_in(user)
            else:
                session.state = "mfa"
            self.counts["captcha_unblocked"] += 1
            return JSONResponse({"valid": True})

    # -- profile -------------------------------------------------------------------------------

    async def _profile(self, request: Request) -> Response:
        _, user = self._session(request)
        return JSONResponse(self._profile_json(user))

    async def _profile_info(self, request: Request) -> Response:
        self._session(request)
        with self._lock:
            used = len(self._users)
        return JSONResponse(
            {"user_used": used, "user_limit": self.user_limit, "acc_used": 0, "acc_limit": 2**40}
        )

    async def _profile_set(self, request: Request) -> Response:
        _, user = self._session(request)
        body = await self._json(request, required=False)
        changes: dict[str, str] = {}
        for key in ("name", "email", "language", "message_signature"):
            if key in body:
                if not isinstance(body[key], str):
                    raise QxError(400, 10, f"{key} must be a string")
                changes[key] = body[key]
        with self._lock:
            new_email = changes.get("email")
            if new_email is not None:
                if "@" not in new_email:
                    raise QxError(400, 10, "email is not valid")
                if any(u.email.lower() == new_email.lower() and u is not user for u in self._users.values()):
                    raise QxError(400, 31, "Email is already taken")
            for key, value in changes.items():
                setattr(user, key, value)
            user.modified = self.clock.now()
            self.ledger.record("profile.set", user.id, fields=sorted(changes))
            return JSONResponse(
                {
                    "name": user.name,
                    "email": user.email,
                    "language": user.language,
                    "message_signature": user.message_signature,
                }
            )

    async def _profile_set_password(self, request: Request) -> Response:
        _, user = self._session(request)
        body = await self._json(request)
        try:
            current = base64.b64decode(str(body.get("password", "")), validate=True).decode("utf-8")
            new = base64.b64decode(str(body.get("new_password", "")), validate=True).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise QxError(400, 10, "password and new_password must be base64") from None
        with self._lock:
            if not _same(current, user.password):
                raise QxError(400, 10, "The current password is wrong")
            if not C.PASSWORD_MIN_LENGTH <= len(new) <= C.PASSWORD_MAX_LENGTH:
                raise QxError(400, 10, "The new password must be 6 to 64 characters long")
            user.password = new
            user.modified = self.clock.now()
            self.ledger.record("profile.set-password", user.id)
            return JSONResponse({"email": user.email})

    async def _generate_2fa(self, request: Request) -> Response:
        _, user = self._session(request, allow_setup=True)
        secret = generate_base32_secret(20, self._rng)
        uri = f"otpauth://totp/Quatrix:{quote(user.email)}?secret={secret}&issuer=Quatrix"
        with self._lock:
            user.pending_totp_secret = secret
        if self.two_factor_image == "json":
            png_text = base64.b64encode(_qr_png(uri)).decode("ascii")
            return JSONResponse({"qr_code": png_text, "secret": secret, "uri": uri})
        image = _qr_png(uri)
        body = {
            "base64": base64.b64encode(image),
            "png": image,
            "data-uri": b"data:image/png;base64," + base64.b64encode(image),
        }[self.two_factor_image]
        return Response(body, media_type="application/octet-stream")

    async def _profile_set_mfa(self, request: Request) -> Response:
        session, user = self._session(request, allow_setup=True)
        body = await self._json(request)
        auth_type = self._auth_type(body)
        code = body.get("code")
        if not isinstance(code, str) or not code:
            raise QxError(400, 11, "code is required")
        now = self.clock.now()
        with self._lock:
            if auth_type == "2FA":
                secret = user.pending_totp_secret or user.totp_secret
                if secret is None:
                    raise QxError(400, 10, "Generate a 2FA secret first")
                verdict = self.verifier.verify(user.id, code, secret_base32=secret, now=now, window=1)
                if verdict != "ok":
                    raise QxError(400, 83, "Wrong authentication code")
                user.mfa_kind, user.totp_secret, user.pending_totp_secret, user.pin = (
                    "2fa",
                    secret,
                    None,
                    None,
                )
            else:
                user.mfa_kind, user.pin, user.totp_secret = "pin", code, None
            user.modified = now
            closed = self._close_sessions(user.id, keep=session.id)
            if session.state == "mfa":  # finishing a forced 2FA setup logs the session in
                session.state = "active"
                self._logged_in(user)
            self.ledger.record("profile.set-mfa", user.id, auth_type=auth_type, closed=len(closed))
        # The document types session_ids as ONE uuid string: the first closed session, if any.
        return JSONResponse({"session_ids": closed[0]} if closed else {})

    async def _profile_remove_mfa(self, request: Request) -> Response:
        _, user = self._session(request)
        body = await self._json(request)
        auth_type = self._auth_type(body)
        with self._lock:
            if auth_type in user.forced_auth or (auth_type == "2FA" and self.account_forced_2fa):
                raise QxError(400, 70, "Action is not allowed: MFA is forced by the administrator")
            if user.auth_methods != [auth_type]:
                raise QxError(400, 10, f"{auth_type} is not enabled")
            user.mfa_kind, user.totp_secret, user.pin = "none", None, None
            user.modified = self.clock.now()
            self.ledger.record("profile.remove-mfa", user.id, auth_type=auth_type)
        return JSONResponse({"status": "success"})

    # -- admin ---------------------------------------------------------------------------------

    async def _user_list(self, request: Request) -> Response:
        self._admin(request)
        with self._lock:
            return JSONResponse([self._user_json(u) for u in self._users.values()])

    async def _user_metadata(self, request: Request) -> Response:
        _, caller = self._session(request)
        user_id = request.path_params["id"]
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise QxError(404, 20, "User not found")
            if not caller.admin and caller.id != user.id:
                raise QxError(403, 70, "Action is not allowed")
            return JSONResponse(self._user_json(user))

    async def _user_set_mfa(self, request: Request) -> Response:
        self._admin(request)
        body = await self._json(request)
        auth_type = self._auth_type(body)
        code = body.get("code")
        if not isinstance(code, str) or not code:
            raise QxError(400, 11, "code is required")
        users = self._ids(body)
        with self._lock:
            for user in users:
                if auth_type == "PIN":
                    user.mfa_kind, user.pin, user.totp_secret = "pin", code, None
                else:
                    if user.mfa_kind != "2fa":
                        user.mfa_kind, user.totp_secret, user.pin = "2fa", None, None
                    if "2FA" not in user.forced_auth:
                        user.forced_auth.append("2FA")
                user.modified = self.clock.now()
                closed = self._close_sessions(user.id)
                self.ledger.record("user.set-mfa", user.id, auth_type=auth_type, closed=len(closed))
        return JSONResponse({"status": "success"})

    async def _user_reset_mfa(self, request: Request) -> Response:
        self._admin(request)
        body = await self._json(request)
        self._auth_type(body, ("2FA",))
        users = self._ids(body)
        with self._lock:
            for user in users:
                if user.mfa_kind == "2fa":
                    user.totp_secret = None
                    user.pending_totp_secret = None
                    self.verifier.forget(user.id)
                user.modified = self.clock.now()
                closed = self._close_sessions(user.id)
                self.ledger.record("user.reset-mfa", user.id, closed=len(closed))
        return JSONResponse({"status": "success"})

    async def _user_remove_mfa(self, request: Request) -> Response:
        self._admin(request)
        body = await self._json(request)
        auth_type = self._auth_type(body)
        if auth_type == "2FA" and self.account_forced_2fa:
            raise QxError(400, 70, "Action is not allowed: 2FA is forced for the account")
        users = self._ids(body)
        with self._lock:
            for user in users:
                if user.auth_methods == [auth_type]:
                    user.mfa_kind, user.totp_secret, user.pin = "none", None, None
                if auth_type in user.forced_auth:
                    user.forced_auth.remove(auth_type)
                user.modified = self.clock.now()
                closed = self._close_sessions(user.id)
                self.ledger.record("user.remove-mfa", user.id, auth_type=auth_type, closed=len(closed))
        return JSONResponse({"status": "success"})


def _same(given: str, expected: str) -> bool:
    import hmac

    # surrogatepass: a scripted value that is not valid text compares instead of raising.
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
