"""A password login as a person at a terminal needs it, step by step.

Logins are scarce (Quatrix allows about 15 per user per 15 minutes, MetalCloud locks an address
out after 5 failed ones), so an adapter drives its API's login steps through
:class:`LoginSteps`, which

* counts a password step as a login (for its server and user) once the server may have seen
  it, and warns as the server's budget nears (a refused connection spends nothing);
* reads a refused password step in the words of a login (wrong password, too many logins);
* asks a mistyped code again while the pending login is alive, up to :data:`CODE_ATTEMPTS`
  codes: a code the server rejects, or one of the wrong shape (which is never sent). A code
  made from a configured secret is not asked again: a rejection there means a wrong secret or
  clock, which another try would not fix.

The server and every local precondition are checked before the first password step (see
:func:`mfa_common.cli.session.prepare`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import attrs

from ..errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    InvalidCodeError,
    MfaCodeRejectedError,
    PermissionDeniedError,
    RateLimitError,
)
from .errors import CliError, describe_error, exit_code_for_error
from .output import stderr_console

if TYPE_CHECKING:
    from ..code_providers import MfaChallenge
    from ..secret import Secret
    from .app import State
    from .prompts import InteractiveCodeProvider

__all__ = ["CODE_ATTEMPTS", "LoginSteps"]

T = TypeVar("T")

#: Codes a person may type for one login (a wrong one, or one of the wrong shape, is asked
#: again). Quatrix asks for a CAPTCHA after three failed logins in a row, wrong codes included.
CODE_ATTEMPTS = 3


@attrs.define
class LoginSteps:
    """What an adapter's password login goes through (see the module docstring).

    ``captcha_token`` is given when the command solves a CAPTCHA on the way (``auth
    unblock-captcha``); ``count`` records one login of ``user`` at ``url``.
    """

    state: State
    url: str
    user: str
    provider: InteractiveCodeProvider
    count: Callable[[], None]
    captcha_token: Secret[str] | None = None
    #: Password steps this login sent.
    sent: int = 0

    @property
    def tool(self) -> str:
        return self.state.spec.name

    def say(self, text: str) -> None:
        """A line for the person logging in (stderr)."""
        stderr_console().print(text, markup=False)

    async def password(self, send: Callable[[], Awaitable[T]]) -> T:
        """Send a password step (``send()``): a login once the server may have seen it."""
        try:
            result = await send()
        except APIConnectionError as exc:
            if exc.request_sent:
                self._sent()
            raise
        except APIStatusError as exc:
            self._sent()
            raise CliError(self._refusal(exc), exit_code_for_error(exc)) from exc
        self._sent()
        return result

    def _sent(self) -> None:
        self.sent += 1
        self.count()

    def _refusal(self, exc: APIStatusError) -> str:
        said = f" ({exc.server_message})" if exc.server_message else ""
        if isinstance(exc, RateLimitError):
            wait = f"in {exc.retry_after:.0f} s" if exc.retry_after is not None else "later"
            return (
                f"{self.url} refuses more logins of {self.user} for now{said}: try again {wait}, then "
                f"run  {self.tool} auth login  once and later commands reuse its session"
            )
        if isinstance(exc, AuthenticationError) and not isinstance(exc, MfaCodeRejectedError):
            return f"{self.url} did not accept the e-mail and password of {self.user}{said}: check them"
        if isinstance(exc, PermissionDeniedError):
            return f"{self.url} refused the login of {self.user}{said}"
        return describe_error(exc, server=self.url)

    async def code(self, challenge: MfaChallenge, send: Callable[[Secret[str]], Awaitable[T]]) -> T:
        """A code for ``challenge`` sent with ``send(code)``; a typed code the server rejects
        (:class:`~mfa_common.errors.MfaCodeRejectedError`) or of the wrong shape is asked again.
        ``send`` keeps the pending login alive or starts a new one itself (and says so)."""
        from ..code_providers import asettled_if_send_fails

        typed = self.provider.asks(challenge)
        for attempt in range(1, CODE_ATTEMPTS + 1):
            last = attempt == CODE_ATTEMPTS or not typed
            try:
                issued = await self.provider.issue(challenge)
            except InvalidCodeError:
                if last:
                    raise
                self.say("That is not a code from the app (6 digits); try again.")
                continue
            refused: MfaCodeRejectedError | InvalidCodeError | None = None
            # Any other failure settles the code as the SDK's own login steps do.
            async with asettled_if_send_fails(issued):
                try:
                    result = await send(issued.value)
                except MfaCodeRejectedError as exc:
                    await issued.asettle("rejected")
                    refused = exc
                except InvalidCodeError as exc:  # refused before anything was sent
                    await issued.asettle("not_sent")
                    refused = exc
            if refused is None:
                await issued.asettle("accepted")
                return result
            if last:
                raise refused
            if isinstance(refused, MfaCodeRejectedError):
                self.say("That code was not accepted; type the next one from the app.")
            else:
                self.say("That is not a code of the right shape; try again.")
        raise AssertionError("unreachable")  # pragma: no cover
