"""Exit codes, the one-line error the tools print, and which exit code an error maps to.

Exit codes (the README documents them): 0 everything done or skipped; 1 some item failed or
its outcome is unknown, or the API failed; 2 wrong usage or credentials (a refused second
factor, a config file others can read, a missing extra, a confirmation refused); 74 the local
state cannot be used (a state file or the state directory: the message names it and the fix);
75 another run holds the journal (try again later); 130 interrupted (Ctrl-C). 74 and 75 mean
the command could not start: nothing was sent, unlike 1.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ..batch import BatchSummary, JournalLockedError
from ..errors import (
    AccountLockedError,
    AuthenticationError,
    CaptchaRequiredError,
    InsecureTransportError,
    InvalidInputError,
    MfaError,
    MfaSdkError,
    PermissionDeniedError,
    RateLimitError,
    StateFileError,
)

__all__ = [
    "EXIT_BUSY",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STATE",
    "EXIT_USAGE",
    "CliError",
    "ConfigFileError",
    "describe_error",
    "exit_code_for",
    "exit_code_for_error",
    "first_leaf",
]

#: Every item done (or skipped), or the command succeeded.
EXIT_OK = 0
#: Some items failed (or their outcome is unknown), or the API call failed.
EXIT_FAILED = 1
#: Wrong usage, missing or refused credentials, a config file with loose permissions.
EXIT_USAGE = 2
#: The local state cannot be used: a state file or directory (the message names it and the
#: fix), or a journal made for another run. Nothing was sent (sysexits' EX_IOERR).
EXIT_STATE = 74
#: Another run holds the journal: nothing was sent; try again later (sysexits' EX_TEMPFAIL).
EXIT_BUSY = 75
#: Ctrl-C (the shell convention 128 + SIGINT).
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure to report as one line (``message`` must be secret-free) with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ConfigFileError(CliError):
    """The config file cannot be used: missing, unreadable, malformed or not owner-only."""


def exit_code_for(summary: BatchSummary) -> int:
    """0 when every item ended done or skipped, else 1 (failed, unknown or stopped early)."""
    return EXIT_OK if summary.ok else EXIT_FAILED


def exit_code_for_error(exc: BaseException) -> int:
    """2 for usage, credential and MFA problems (the command cannot work as invoked), 75 for a
    journal another run holds, 74 for local state that cannot be used, else 1."""
    if isinstance(exc, CliError):
        return exc.exit_code
    if isinstance(exc, JournalLockedError):
        return EXIT_BUSY
    if isinstance(exc, StateFileError):
        return EXIT_STATE
    if isinstance(
        exc,
        (AuthenticationError, PermissionDeniedError, MfaError, CaptchaRequiredError, InvalidInputError),
    ):
        return EXIT_USAGE
    return EXIT_FAILED


def _when(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    local = moment.astimezone()
    return f"{local:%Y-%m-%d %H:%M:%S %Z}".strip()


def describe_error(exc: BaseException) -> str:
    """A one-line, secret-free description of ``exc``, in the words of the command line.

    The SDK's own errors have secret-free messages (URLs redacted, bodies reduced to the
    server's code and message), so their text is shown; any other exception is named by its
    class only, because its text (or a repr of a request) may hold anything. A lockout says
    until when; a refusal of plain http names the flag that allows it.
    """
    if isinstance(exc, CliError):
        return exc.message
    if isinstance(exc, StateFileError):
        return " ".join(str(exc).split())  # it names the file and what to do
    if isinstance(exc, InsecureTransportError):
        text = " ".join(str(exc).split()).replace("allow_insecure_http=True", "--allow-insecure-http")
        return f"{type(exc).__name__}: {text}"
    if isinstance(exc, MfaSdkError):
        text = " ".join(str(exc).split())
        line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        if isinstance(exc, AccountLockedError) and exc.locked_until is not None:
            line += f" (locked until {_when(exc.locked_until)})"
        elif isinstance(exc, RateLimitError) and exc.retry_after is not None:
            line += f" (try again in {exc.retry_after:.0f} s)"
        return line
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"unexpected {type(exc).__name__} (no details are printed, they could contain credentials)"


def first_leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups: several tasks failed at once."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if not isinstance(inner, tuple) or not inner or not isinstance(inner[0], BaseException):
            return exc
        exc = inner[0]
