"""Asking the person at the terminal, never on the event loop.

A prompt waits for a person, for seconds or minutes. Run on the event loop it would freeze every
connection the client holds: the server closes an idle keep-alive connection, the frozen client
does not notice, and the next request fails on a dead socket. So every prompt made while a
client is open goes through :func:`ask_off_loop`, which waits for the answer in a worker thread.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import typer

from .errors import EXIT_USAGE, CliError

if TYPE_CHECKING:
    from ..clock import Clock
    from ..code_providers import CodeProvider, IssuedCode, MfaChallenge
    from ..replay_guard import StepRegistry
    from ..secret import Secret

__all__ = ["InteractiveCodeProvider", "Prompter", "ask_off_loop", "confirm_off_loop"]


class Prompter:
    """Asks the person at the terminal (prompts on stderr, so stdout stays machine-readable).

    End of input (a script with nothing on stdin) raises :class:`CliError` naming where the
    value could have come from, instead of hanging or printing a traceback.
    """

    def ask(self, text: str, *, hide: bool, hint: str = "") -> str:
        """One line of input; ``hide`` suppresses the echo (passwords, codes). Without a terminal
        the line is read from stdin as it comes (a script's pipe has no echo to hide, and
        Python's warning that it cannot hide it would only be noise)."""
        try:
            if hide and not self.interactive():
                value = self._read_line(text)
            else:
                value = typer.prompt(text, hide_input=hide, err=True, default=None, show_default=False)
        except (typer.Abort, EOFError):
            raise CliError(f"no value for {text.lower()}{hint}") from None
        result = str(value).strip() if not hide else str(value)
        if not result:
            raise CliError(f"an empty value was given for {text.lower()}")
        return result

    @staticmethod
    def _read_line(text: str) -> str:
        sys.stderr.write(f"{text}: ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        sys.stderr.write("\n")
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    def interactive(self) -> bool:
        """Whether a person can answer (stdin is a terminal)."""
        return sys.stdin.isatty()

    def confirm(self, text: str) -> bool:
        """A yes/no question, "no" by default."""
        try:
            return bool(typer.confirm(text, default=False, err=True))
        except (typer.Abort, EOFError):
            return False


async def ask_off_loop(prompter: Prompter, text: str, *, hide: bool, hint: str = "") -> str:
    """:meth:`Prompter.ask` in a worker thread, so the event loop keeps serving connections."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(lambda: prompter.ask(text, hide=hide, hint=hint))


async def confirm_off_loop(prompter: Prompter, text: str, *, yes: bool) -> None:
    """Ask before a bulk destructive action; ``yes`` (``--yes``) skips the question.

    Without a terminal and without ``--yes`` the action is refused (exit 2): a script must say
    so explicitly, it cannot be asked.
    """
    if yes:
        return
    import anyio.to_thread

    if not prompter.interactive():
        raise CliError(f"{text} Refused: no terminal to confirm on; pass --yes to proceed", EXIT_USAGE)
    if not await anyio.to_thread.run_sync(lambda: prompter.confirm(f"{text} Continue?")):
        raise CliError("cancelled: nothing was changed", EXIT_USAGE)


class InteractiveCodeProvider:
    """Answers MFA challenges for a command-line login and remembers which kind it used.

    ``totp`` challenges use the configured TOTP secret (replay-safe codes, through
    ``registry`` when given) or, without one, ask for a code with hidden input (off the event
    loop; :class:`~mfa_common.code_providers.CallbackCodeProvider` checks the 6-digit shape
    before anything is sent). ``pin`` challenges use the configured PIN or ask for it.
    :attr:`used` lists what answered, e.g. ``["totp (typed)"]``.
    """

    def __init__(
        self,
        *,
        totp_secret: Secret[str] | None = None,
        pin: Secret[str] | None = None,
        prompter: Prompter | None = None,
        clock: Clock | None = None,
        registry: StepRegistry | None = None,
    ) -> None:
        from ..code_providers import StaticCodeProvider, TotpCodeProvider

        self.prompter = prompter or Prompter()
        self._totp = (
            TotpCodeProvider(totp_secret, clock=clock, registry=registry) if totp_secret is not None else None
        )
        self._pin = StaticCodeProvider(pin, kind="pin") if pin is not None else None
        self.used: list[str] = []

    def _typed(self, text: str, hint: str) -> Callable[[MfaChallenge], Awaitable[str]]:
        async def callback(challenge: MfaChallenge) -> str:
            return await ask_off_loop(self.prompter, text, hide=True, hint=hint)

        return callback

    async def issue(self, challenge: MfaChallenge) -> IssuedCode:
        """A code for ``challenge`` (see the class docstring)."""
        from ..code_providers import CallbackCodeProvider

        provider: CodeProvider
        if challenge.kind == "pin":
            if self._pin is not None:
                provider, label = self._pin, "pin (configured)"
            else:
                provider = CallbackCodeProvider(
                    self._typed("PIN", ": set the PIN in the environment or config file"),
                    kind="pin",
                    digits=None,
                )
                label = "pin (typed)"
        elif self._totp is not None:
            provider, label = self._totp, "totp (from the configured secret)"
        else:
            provider = CallbackCodeProvider(
                self._typed(
                    "Authentication code",
                    ": set the TOTP secret in the environment or config file, or run interactively",
                ),
                kind="totp",
                digits=6,
            )
            label = "totp (typed)"
        issued = await provider.issue(challenge)
        self.used.append(label)
        return issued

    def asks(self, challenge: MfaChallenge) -> bool:
        """Whether a person types the code for ``challenge`` (nothing configured answers it), so
        that a mistyped one is worth asking again."""
        return (self._pin is None) if challenge.kind == "pin" else (self._totp is None)

    def describe(self) -> str:
        """What answered the second factor, or ``"none"``."""
        return ", ".join(dict.fromkeys(self.used)) if self.used else "none"

    def __repr__(self) -> str:
        return f"InteractiveCodeProvider(totp={self._totp is not None}, pin={self._pin is not None})"
