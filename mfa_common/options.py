"""``ClientOptions``: the connection tunables every client takes, typed once.

``QuatrixClient``, ``MetalCloudClient`` and ``XMfaClient`` take their credentials as their own
keywords (``api_key=``, ``email=``/``password=``, ``totp_secret=``, ``pin=``, ``code_provider=``)
and everything about the connection as the keywords below, checked by a type checker through
``**options: Unpack[ClientOptions]``. Build a set once and share it between clients::

    options: ClientOptions = {"timeout": 5, "deadline": 30, "max_retries": 1}
    QuatrixClient(url, api_key=key, **options)
    MetalCloudClient(url, api_key=other_key, **options)

A key this type does not name is refused by the constructor (``TypeError``), so a typo never
goes unnoticed. The defaults are those of :class:`mfa_common.client.BaseClient`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

# Imported for real (not only for type checkers) so that ``typing.get_type_hints`` resolves.
from ._httpx import AsyncBaseTransport, Limits, Timeout
from .retry import RetryPolicy

__all__ = ["ClientOptions", "check_credentials"]


class ClientOptions(TypedDict, total=False):
    """Connection tunables, every one optional (see :class:`mfa_common.client.BaseClient`)."""

    #: An ``httpx.AsyncBaseTransport`` to send through (tests: the fakes' in-process transport).
    transport: AsyncBaseTransport | None
    #: Seconds per phase (connect, read, write, pool), or an ``httpx.Timeout``.
    timeout: float | Timeout | None
    #: Seconds for a whole call, retries and login steps included; None for no deadline.
    deadline: float | None
    #: The retry policy (:class:`mfa_common.retry.RetryPolicy`).
    retry: RetryPolicy | None
    #: Shorthand for ``retry=RetryPolicy(max_retries=...)``.
    max_retries: int | None
    #: Connection pool limits (``httpx.Limits``).
    limits: Limits | None
    #: Extra headers sent with every request.
    headers: Mapping[str, str] | None
    #: Allow credentials over plain ``http://`` to a host that is not the loopback.
    allow_insecure_http: bool
    #: TLS verification: True, False, or the path of a CA bundle.
    verify: bool | str
    #: Largest response body accepted, in bytes.
    max_body_bytes: int
    #: Largest response head accepted, in bytes.
    max_header_bytes: int


def check_credentials(*, given: dict[str, object], login_only: dict[str, object], login_key: str) -> None:
    """The one rule of every client constructor: at most one credential (``given``: keyword →
    value), and the login-only keywords (``login_only``) only beside ``login_key``. Raises
    :class:`~mfa_common.errors.InvalidInputError` naming the keywords, never their values."""
    from .errors import InvalidInputError

    present = [f"{name}=" for name, value in given.items() if value is not None]
    if len(present) > 1:
        names = [f"{name}=" for name in given]
        choices = ", ".join(names[:-1]) + " or " + names[-1]
        raise InvalidInputError(f"give one credential ({choices}), not {' and '.join(present)}")
    if given.get(login_key) is None:
        stray = [f"{name}=" for name, value in login_only.items() if value is not None]
        if stray:
            raise InvalidInputError(f"{', '.join(stray)}: only with {login_key}= (a login)")
