"""The vocabulary of the sans-I/O login machines.

A login machine is a generator: it yields what it needs, receives what happened, and returns
the credential. It performs no I/O and reads no clock; the driver
(:func:`mfa_common.auth.driver.drive`) sends its requests, asks code providers for codes and
passes the time along with each answer.

* :class:`SendStep` — send this request (it carries no one-time code); the machine receives
  the :class:`Answer`.
* :class:`SendCode` — a one-time code is needed for ``challenge``: the driver issues one, builds
  the request with ``build(issued)``, sends it *without* transport retries and settles the code
  by the API's ``settle`` table; the machine receives the :class:`Answer` of the final attempt.
  A code-bearing request the server did not process (``NOT_SENT`` with a retryable answer) is
  repeated by the driver, always with a freshly issued code.
* the generator's return value is the credential (the login is done); a failure is a typed
  error raised by the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from enum import Enum
from typing import TypeVar

import attrs

from .. import _constants as C
from .._httpx import Headers, Request, Response
from ..code_providers import IssuedCode, MfaChallenge

__all__ = [
    "Answer",
    "LoginFlow",
    "SendCode",
    "SendStep",
    "Settlement",
    "SettlementTable",
]

T = TypeVar("T")


class Settlement(str, Enum):
    """What the server did with a code it was sent (see :mod:`mfa_common.code_providers`)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    #: The server refused the request before looking at the code: the code is still good.
    NOT_SENT = "not_sent"
    UNKNOWN = "unknown"


#: One API's settlement table: (status, headers, body) of a code-bearing answer → settlement.
SettlementTable = Callable[[int, Headers, bytes], Settlement]


@attrs.frozen
class Answer:
    """An answer handed to a machine: the response and when it arrived (``now``, seconds)."""

    response: Response
    now: float


@attrs.frozen
class SendStep:
    """Send ``request`` (no one-time code in it). ``name`` names the step in logs and spans."""

    request: Request
    name: str = "step"


@attrs.frozen
class SendCode:
    """Send a request carrying a code for ``challenge``; see the module docstring.

    ``unanswerable`` is raised when no code provider answers this challenge (None: a generic
    :class:`~mfa_common.errors.InvalidInputError`). ``max_age`` is how long the partial login
    (the password step before) may wait for its code: an older one is started again. ``name``
    names the step in logs and spans."""

    challenge: MfaChallenge
    build: Callable[[IssuedCode], Request]
    settle: SettlementTable
    unanswerable: BaseException | None = None
    max_age: float = C.PARTIAL_LOGIN_MAX_AGE
    name: str = "code"


Step = SendStep | SendCode
#: A login machine: yields steps, receives answers, returns the credential.
LoginFlow = Generator[Step, Answer, T]
