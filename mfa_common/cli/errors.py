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
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..errors import (
    AccountLockedError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    CaptchaRequiredError,
    ConflictError,
    InsecureTransportError,
    InvalidInputError,
    MfaCodeRejectedError,
    MfaError,
    MfaRequiredError,
    MfaSdkError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitError,
    RedirectError,
    ResponseDecodeError,
    ResponseTooLargeError,
    ServerError,
    StateFileError,
)

if TYPE_CHECKING:
    from ..batch import BatchSummary

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
    "error_details",
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
    from ..batch import JournalLockedError  # loaded when an error is reported, not at start-up

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


def describe_error(exc: BaseException, *, server: str | None = None) -> str:
    """One short, secret-free sentence about ``exc``: what went wrong, with which ``server``
    (the URL the command talks to, when known), and what to do next.

    The error's type and the SDK's own details (method, redacted URL, status, the server's code)
    are for ``--debug`` (:func:`error_details`). Any exception that is not the SDK's is named
    there by its type only, because its text (or a repr of a request) may hold anything.
    """
    where = server or "the server"
    if isinstance(exc, CliError):
        return exc.message
    if isinstance(exc, StateFileError):
        return " ".join(str(exc).split())  # it names the file and what to do
    if isinstance(exc, InsecureTransportError):
        return (
            f"refusing to send credentials over plain http:// to {where}: use https://, or pass "
            "--allow-insecure-http if the network is trusted"
        )
    if isinstance(exc, APIConnectionError):
        return _connection_failure(exc, where)
    if isinstance(exc, APIStatusError):
        return _refusal(exc, where)
    if isinstance(exc, ResponseTooLargeError):
        return f"{where} sent an answer larger than this tool accepts ({exc.limit} bytes)"
    if isinstance(exc, ResponseDecodeError):
        return f"{where} sent an answer this tool cannot read: is the URL that of the API?"
    if isinstance(exc, MfaSdkError):  # bad input: its message says what and is secret-free
        return " ".join(str(exc).split()) or "the SDK refused the input"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return "unexpected error; run again with --debug to see its type"


def error_details(exc: BaseException) -> str:
    """What ``--debug`` adds: the error's type, the SDK's message (secret-free by construction:
    URLs redacted, bodies reduced to the server's code and message) and the types of its causes.
    A tool's own error made from another one tells about that one."""
    if isinstance(exc, CliError) and exc.__cause__ is not None:
        return error_details(exc.__cause__)
    text = " ".join(str(exc).split()) if isinstance(exc, MfaSdkError) else ""
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    causes = [type(cause).__name__ for cause in _causes(exc)[1:]]
    return line + (f" (caused by {' <- '.join(causes)})" if causes else "")


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _host(where: str) -> str:
    return urlsplit(where).hostname or where


def _connection_failure(exc: APIConnectionError, where: str) -> str:
    if isinstance(exc, OutcomeUnknownError):
        return (
            f"the answer from {where} was lost after the change was sent: it may have been "
            "applied; check before repeating it"
        )
    if isinstance(exc, APITimeoutError):
        return f"{where} did not answer in time: is the URL right, and is the server up?"
    import socket
    import ssl

    causes = _causes(exc)
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return (
            f"cannot verify the TLS certificate of {where}: if it is self-signed or from a "
            "private CA, point SSL_CERT_FILE at that CA's certificate"
        )
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return f"the TLS handshake with {where} failed: does the server speak https? (else use http://)"
    if any(isinstance(c, socket.gaierror) for c in causes):
        return f"cannot find {_host(where)} (the name does not resolve): is the URL right?"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return f"cannot reach {where} (connection refused): is the URL right?"
    return f"cannot reach {where}: is the URL right?"


def _refusal(exc: APIStatusError, where: str) -> str:
    said = f" ({exc.server_message})" if exc.server_message else ""
    if isinstance(exc, CaptchaRequiredError):
        return (
            f"{where} wants a CAPTCHA solved before this account logs in again (after failed "
            "logins): log in once in a web browser, or see  auth unblock-captcha --help"
        )
    if isinstance(exc, AccountLockedError):
        until = f" until {_when(exc.locked_until)}" if exc.locked_until is not None else ""
        return f"{where} has locked this account after failed logins{until}: wait, then try again"
    if isinstance(exc, RateLimitError):
        wait = f"in {exc.retry_after:.0f} s" if exc.retry_after is not None else "later"
        return f"{where} is limiting requests{said}: try again {wait}"
    if isinstance(exc, MfaCodeRejectedError):
        return (
            f"{where} did not accept the code{said}: check the authenticator app (or the TOTP "
            "secret) and this computer's clock"
        )
    if isinstance(exc, MfaRequiredError):
        return f"{where} asks for a second factor this tool cannot answer{said}"
    if isinstance(exc, AuthenticationError):
        return f"{where} did not accept the credentials{said}: check the e-mail and password, or the API key"
    if isinstance(exc, PermissionDeniedError):
        return f"{where} refused{said}: this needs an administrator"
    if isinstance(exc, NotFoundError):
        return f"{where} has no such thing{said}: is the URL (or the id) right?"
    if isinstance(exc, (ConflictError, PreconditionFailedError)):
        return f"{where} refused the change{said}: the item changed meanwhile; look at it, then try again"
    if isinstance(exc, RedirectError):
        to = f" to {exc.location}" if exc.location else ""
        return f"{where} redirects{to}: give the address it redirects to as the URL"
    if isinstance(exc, ServerError):
        return f"{where} failed (HTTP {exc.status_code}){said}: try again later"
    return f"{where} refused the request (HTTP {exc.status_code}){said}"


def first_leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups: several tasks failed at once."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if not isinstance(inner, tuple) or not inner or not isinstance(inner[0], BaseException):
            return exc
        exc = inner[0]
