"""``QuatrixSessionAuth``: the Quatrix session login as an ``httpx.Auth`` backend.

Built on :class:`mfa_common.auth.CredentialAuth`, so logins are single-flight (a thousand
concurrent calls on a cold client cause one Basic login and one MFA step), a rejected session is
cleared only if it is still the one that failed, the call is replayed once with the new session,
and a cancelled login leaves nothing half-made.

The login: ``GET /session/login`` with HTTP Basic; on ``207`` read ``Mfa-Code`` (71 → a TOTP code,
73 → the PIN) and send it with ``POST /session/login`` using the partial session id; adopt the
returned ``session_id``; send it as ``X-Auth-Token`` on every call.

Session upkeep without timers per request: the backend records when the session was last used.
A session idle for longer than 15 minutes minus a margin is replaced by a fresh login *before*
the next call (the server would have dropped it). :meth:`QuatrixSessionAuth.keepalive_if_idle`
sends ``GET /session/keepalive`` only when the session has been idle long enough to need one;
``QuatrixClient.keepalive_in_background()`` runs it periodically for long-lived idle clients.
On close the session is logged out (best effort, bounded in time).

Failures: a wrong code (Quatrix 83 / 84) raises :class:`~mfa_common.errors.MfaCodeRejectedError`
and is never retried blindly (TOTP codes are replay-safe: a second login within one 30-second step
waits for the next step instead of reusing a code); a CAPTCHA block (207 + ``Mfa-Code: 61``, this
SDK's reading of an UNCONFIRMED value) raises :class:`~mfa_common.errors.CaptchaRequiredError`
whose ``session_id`` is the blocked session to pass to ``client.session.unblock_captcha``.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from mfa_common._httpx import URL, Request, Response
from mfa_common.auth import CredentialAuth
from mfa_common.auth.machine import LoginFlow
from mfa_common.clock import Clock
from mfa_common.code_providers import CodeProvider, MfaChallenge, StaticCodeProvider, TotpCodeProvider
from mfa_common.errors import APIError
from mfa_common.secret import Secret, wrap
from mfa_common.totp import Totp

from . import _constants as C
from . import login_machine
from .errors import MFA_CODE_ERRORS, QuatrixErrorCode, map_error, parse_error_body
from .login_machine import QuatrixSession
from .protocol import PinEncoding

__all__ = ["QuatrixSession", "QuatrixSessionAuth"]

logger = logging.getLogger("quatrix_async")


class QuatrixSessionAuth(CredentialAuth[QuatrixSession]):
    """Session auth for Quatrix (see the module docstring).

    When both a TOTP source and a PIN are configured, the one matching the server's challenge is
    used. Without a matching provider an MFA login raises
    :class:`~mfa_common.errors.MfaRequiredError`. ``QuatrixClient(email=..., password=...)``
    builds one; build it yourself for the tunables below.

    Args:
        email: The login's e-mail address.
        password: Its password.
        code_provider: The second factor: any :class:`~mfa_common.CodeProvider`, e.g. a
            :class:`~mfa_common.CallbackCodeProvider` asking a person.
        totp_secret: Shortcut for a replay-safe TOTP provider: base32 or an ``otpauth://`` URI
            (or a :class:`~mfa_common.totp.Totp`).
        pin: Shortcut for a PIN.
        base_url: The only origin the session is sent to (default: the client's).
        clock: The clock of codes and idle times.
        idle_timeout: Seconds of idleness after which the server drops a session (15 minutes).
        idle_margin: A session idle for ``idle_timeout`` minus this is replaced by a fresh
            login before the next call.
        keepalive_after: Idle seconds after which :meth:`keepalive_if_idle` sends a keepalive
            (5 minutes).
        logout_on_close: Log the session out when the client closes.
        pin_encoding: How the PIN travels: base64 of its UTF-8 bytes (default) or ``"plain"``.
    """

    api_name: ClassVar[str] = "quatrix"

    def __init__(
        self,
        email: str,
        password: str | Secret[str],
        *,
        code_provider: CodeProvider | None = None,
        totp_secret: str | Secret[str] | Totp | None = None,
        pin: str | Secret[str] | None = None,
        base_url: str | URL | None = None,
        clock: Clock | None = None,
        idle_timeout: float = C.SESSION_IDLE_TIMEOUT,
        idle_margin: float = C.SESSION_IDLE_MARGIN,
        keepalive_after: float = C.KEEPALIVE_AFTER_IDLE,
        logout_on_close: bool = True,
        pin_encoding: PinEncoding = "base64",
    ) -> None:
        super().__init__(base_url=base_url, clock=clock)
        self.email = email
        self._password = wrap(password)
        self._providers: dict[str, CodeProvider] = {}
        if totp_secret is not None:
            self._providers["totp"] = TotpCodeProvider(totp_secret, clock=self.clock)
        if pin is not None:
            self._providers["pin"] = StaticCodeProvider(pin, kind="pin")
        self.code_provider = code_provider
        self.idle_timeout = idle_timeout
        self.idle_margin = idle_margin
        self.keepalive_after = keepalive_after
        self.logout_on_close = logout_on_close
        #: How the PIN travels: base64 of its UTF-8 bytes (default) or ``"plain"``.
        self.pin_encoding: PinEncoding = pin_encoding

    def __repr__(self) -> str:
        return f"QuatrixSessionAuth(email={self.email!r}, password=Secret('***'))"

    # -- the login -----------------------------------------------------------------------------

    def provider_for(self, challenge: MfaChallenge) -> CodeProvider | None:
        """The provider matching the challenge (TOTP secret or PIN), else ``code_provider``."""
        return self._providers.get(challenge.kind) or self.code_provider

    def login_flow(self, stale: QuatrixSession | None) -> LoginFlow[QuatrixSession]:
        """The login machine: Basic, then the MFA step when the server answers 207."""
        return login_machine.login_flow(
            self.requestor.build,
            self.email,
            self._password,
            can_answer=lambda challenge: self.provider_for(challenge) is not None,
            pin_encoding=self.pin_encoding,
        )

    @property
    def mfa_steps(self) -> int:
        """MFA steps sent so far (each costs one code)."""
        return self.code_steps

    # -- CredentialAuth hooks -------------------------------------------------------------------

    def apply(self, request: Request, credential: QuatrixSession) -> None:
        """Send the session id as ``X-Auth-Token``."""
        request.headers[C.AUTH_TOKEN_HEADER] = credential.session_id.reveal()

    def is_expired(self, credential: QuatrixSession) -> bool:
        """True once the session has been idle for the timeout minus the margin."""
        return credential.idle_for(self.clock.now()) >= self.idle_timeout - self.idle_margin

    def used(self, credential: QuatrixSession) -> None:
        """Record the time of use: the server counts idle time from each call."""
        credential.last_used = max(credential.last_used, self.clock.now())

    def is_rejection(self, response: Response) -> bool:
        """A 401 means the session is gone, unless it reports a refused second factor (83/84) or
        a blacklisted user (74), which a new session would not fix."""
        if response.status_code != 401:
            return False
        code = parse_error_body(response).code
        return code not in MFA_CODE_ERRORS and code != QuatrixErrorCode.USER_BLACKLISTED

    async def release(self, credential: QuatrixSession) -> None:
        """Log the session out (``GET /session/logout``); on close the driver's rule makes it
        shielded, bounded and best effort."""
        if not self.logout_on_close:
            return
        await self._logout(credential.session_id)

    async def _logout(self, session_id: Secret[str]) -> None:
        requestor = self.requestor
        await requestor.send(requestor.build("GET", "session/logout", headers=_session_header(session_id)))

    # -- session upkeep --------------------------------------------------------------------------

    async def logout(self) -> None:
        """Log the current session out now and forget it; the next call logs in again. Errors
        of the logout itself are not raised (the server may already have dropped it)."""
        credential = self._credential
        if credential is None:
            return
        self.invalidate(credential)
        try:
            await self._logout(credential.session_id)
        except APIError as exc:
            logger.debug("logout failed: %s", type(exc).__name__)

    def adopt_session(self, session_id: str | Secret[str]) -> QuatrixSession:
        """Use an existing, fully logged-in session (e.g. one unblocked by a CAPTCHA).

        Args:
            session_id: The session's id (its ``X-Auth-Token``).

        Returns:
            The session now in use.
        """
        now = self.clock.now()
        session = QuatrixSession(session_id=wrap(session_id), created_at=now, last_used=now)
        self._credential = session
        return session

    async def keepalive_if_idle(self, *, min_idle: float | None = None) -> bool:
        """Send ``GET /session/keepalive`` if the session has been idle long enough to need one.

        A session already past its idle limit is dropped instead (the next call logs in again); a
        401 answer drops it too.

        Args:
            min_idle: Idle seconds that call for a keepalive (default ``keepalive_after``,
                5 minutes).

        Returns:
            Whether a keepalive was sent and accepted.

        Raises:
            APIError: Any other error of the keepalive.
        """
        credential = self._credential
        if credential is None:
            return False
        if self.is_expired(credential):
            self.invalidate(credential)
            return False
        threshold = self.keepalive_after if min_idle is None else min_idle
        if credential.idle_for(self.clock.now()) < threshold:
            return False
        requestor = self.requestor
        request = requestor.build("GET", "session/keepalive", headers=_session_header(credential.session_id))
        response = await requestor.send(request)
        if response.status_code == 200:
            self.used(credential)
            return True
        if self.is_rejection(response):
            self.invalidate(credential)
            return False
        raise map_error(response)


def _session_header(session_id: Secret[str]) -> dict[str, str]:
    return {C.AUTH_TOKEN_HEADER: session_id.reveal()}
