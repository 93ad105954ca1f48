"""SessionAPI: the session operations (login steps, keepalive, logout, CAPTCHA unblock).

Most programs never call the login steps themselves: a client built with credentials logs in,
completes the MFA step and keeps the session alive on its own. They are here for tools that
drive the protocol by hand.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Literal, TypeVar

from mfa_common.auth.deadline import drive_by_hand
from mfa_common.code_providers import MfaChallenge
from mfa_common.errors import ResponseDecodeError
from mfa_common.options import RequestOptions
from mfa_common.secret import Secret, reveal, wrap
from mfa_common.wire import build_status_error, parse_json_body

from . import _constants as C
from . import login_machine, protocol
from ._base import QuatrixAPIGroup
from .auth import QuatrixSessionAuth
from .errors import CaptchaRejectedError
from .protocol import auth_type_of

if TYPE_CHECKING:
    # The models load with the first call (see quatrix_async/__init__.py).
    from .models import AuthType, LoginResult, SessionLoginResp, SessionUnblockCaptchaResp

__all__ = ["SessionAPI"]

T = TypeVar("T")


class SessionAPI(QuatrixAPIGroup):
    """``client.session``: ``/session/*``.

    Most programs never call the login steps themselves: a client built with credentials logs
    in, completes the MFA step and keeps the session alive on its own. They are here for tools
    that drive the protocol by hand.
    """

    async def login(
        self, email: str, password: str | Secret[str], *, options: RequestOptions | None = None
    ) -> LoginResult:
        """``GET /session/login`` with HTTP Basic: the first login step.

        Runs the first half of the login machine under the client's deadline.

        Args:
            email: The user's e-mail address.
            password: The user's password.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            A :class:`~quatrix_async.models.LoginResult`: ``kind == "logged_in"`` (200) or, on a
            207, ``"mfa"`` with the ``challenge`` (71 → totp, 73 → pin), ``"captcha"`` (61) or
            ``"unknown_mfa"`` (its ``mfa_code``); ``session_id`` is the (partial) session, from the
            body or an ``X-Auth-Token`` header.

        Raises:
            AuthenticationError: Bad credentials (the Quatrix code in ``error_code``).
        """
        flow = partial(
            login_machine.password_flow, self._requestor.build, email, wrap(password), known_only=False
        )
        step, _ = await drive_by_hand(self._requestor, flow, options=options, what="GET /session/login")
        return step

    async def login_mfa(
        self,
        session_id: str | Secret[str],
        auth_type: AuthType | str,
        code: str | Secret[str],
        *,
        options: RequestOptions | None = None,
    ) -> SessionLoginResp:
        """``POST /session/login``: the MFA step of a login whose first step answered 207.

        Never retried: a code is single-use. Runs the second half of the login machine.

        Args:
            session_id: The partial session of :meth:`login`.
            auth_type: ``"2FA"`` or ``"PIN"``.
            code: The TOTP code or the PIN (5 characters, sent as base64 unless the client's
                session backend says ``pin_encoding="plain"``); checked before anything is sent.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The session (``session_id``).

        Raises:
            MfaCodeRejectedError: A wrong code (``error_code`` 83 or 84).
        """
        from .models import AuthType, SessionLoginResp

        kind = auth_type_of(auth_type)
        protocol.validate_mfa_code(kind, code)  # refused before anything is sent
        challenge = MfaChallenge(kind="pin" if kind == AuthType.PIN else "totp")
        backend = self._requestor.auth
        encoding = backend.pin_encoding if isinstance(backend, QuatrixSessionAuth) else "base64"
        flow = partial(
            login_machine.code_flow,
            self._requestor.build,
            wrap(session_id),
            challenge,
            pin_encoding=encoding,
        )
        session = await drive_by_hand(
            self._requestor, flow, code=wrap(code), options=options, what="POST /session/login"
        )
        return SessionLoginResp(session_id=session.session_id)

    async def keepalive(self, *, options: RequestOptions | None = None) -> None:
        """``GET /session/keepalive``: refresh the session's 15-minute idle timer.

        Any call refreshes it as well; see ``client.auth.keepalive_if_idle()`` and
        ``client.keepalive_in_background()`` for sending one only when needed.

        Args:
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        await self._requestor.request("GET", "session/keepalive", options=options)

    async def logout(
        self, *, session_id: str | Secret[str] | None = None, options: RequestOptions | None = None
    ) -> None:
        """``GET /session/logout``: close a session.

        Errors of the logout itself are not raised for the client's own session (the server may
        already have dropped it).

        Args:
            session_id: The session to close; None (default) closes the client's own session (the
                next call logs in again).
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        auth = self._requestor.auth
        if session_id is None and isinstance(auth, QuatrixSessionAuth):
            await auth.logout()
            return
        if session_id is None:
            await self._requestor.request("GET", "session/logout", options=options)
            return
        await self._requestor.request(
            "GET",
            "session/logout",
            headers={C.AUTH_TOKEN_HEADER: reveal(session_id)},
            authenticated=False,
            options=options,
        )

    async def unblock_captcha(
        self,
        token: str | Secret[str],
        *,
        session_id: str | Secret[str],
        method: Literal["GET", "POST"] = "GET",
        options: RequestOptions | None = None,
    ) -> SessionUnblockCaptchaResp:
        """Unblock a CAPTCHA-blocked session with the solved CAPTCHA's ``token``.

        The token never appears in a log line, whichever method. After a successful unblock the
        next call of a client with credentials logs in normally.

        Args:
            token: The token of the solved CAPTCHA.
            session_id: The blocked session (``CaptchaRequiredError.session_id``).
            method: ``"GET"`` (default) sends ``GET /session/unblock-captcha?token=...``: CONFIRMED
                as the current contract (Maytech's clients since API v1.0-121). ``"POST"`` sends
                ``{"token": ...}``, the older published form, for servers that still want it.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The server's answer.

        Raises:
            CaptchaRejectedError: A wrong token (401 ``{"valid": false}``).
        """
        from .models import SessionUnblockCaptchaResp, UnblockCaptchaReq, converter

        headers = {C.AUTH_TOKEN_HEADER: reveal(session_id)}
        secret_token = wrap(token)
        if method == "POST":
            response = await self._requestor.request(
                "POST",
                "session/unblock-captcha",
                json=converter.unstructure(UnblockCaptchaReq(token=secret_token)),
                headers=headers,
                authenticated=False,
                idempotent=True,
                options=options,
                raise_for_status=False,
            )
        else:
            response = await self._requestor.request(
                "GET",
                "session/unblock-captcha",
                params={"token": secret_token.reveal()},
                headers=headers,
                authenticated=False,
                options=options,
                path_template="session/unblock-captcha?token=***",
                raise_for_status=False,
            )
        if response.status_code == 401:
            try:
                body = parse_json_body(response)
            except ResponseDecodeError:
                body = None
            if isinstance(body, dict) and "valid" in body:
                raise build_status_error(
                    response,
                    server_message="the CAPTCHA token was not accepted",
                    body=body,
                    cls=CaptchaRejectedError,
                    valid=bool(body.get("valid")),
                )
        if response.status_code >= 400:
            raise self._requestor.map_error(response)
        return self._decode(response, SessionUnblockCaptchaResp)
