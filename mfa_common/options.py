"""The tunables of a client (:class:`ClientOptions`) and of one call (:class:`RequestOptions`).

Both are frozen: a client's options are fixed when it is made, and
``client.with_options(timeout=..., max_retries=...)`` returns another client of the same type
that shares the connection pool and the login but sends with other per-call defaults::

    options = ClientOptions(timeout=5, deadline=30, retry=RetryPolicy(max_retries=1))
    QuatrixClient(url, api_key=key, options=options)
    MetalCloudClient(url, api_key=other_key, options=options)

``check_credentials`` is the one rule every client constructor applies to its credential
keywords.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import attrs

from . import _constants as C
from ._httpx import Limits, Timeout
from .retry import RetryPolicy

__all__ = ["ClientOptions", "RequestOptions", "check_credentials"]


def _timeout(value: float | Timeout | None) -> Timeout:
    if isinstance(value, Timeout):
        return value
    if value is None:
        return Timeout(
            connect=C.CONNECT_TIMEOUT, read=C.READ_TIMEOUT, write=C.WRITE_TIMEOUT, pool=C.POOL_TIMEOUT
        )
    return Timeout(value)


def _headers(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return types.MappingProxyType(dict(value or {}))


def _limits() -> Limits:
    return Limits(
        max_connections=C.MAX_CONNECTIONS,
        max_keepalive_connections=C.MAX_KEEPALIVE_CONNECTIONS,
        keepalive_expiry=C.KEEPALIVE_EXPIRY,
    )


def _positive_int(_: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        from .errors import InvalidInputError

        raise InvalidInputError(f"{attribute.name} must be a positive whole number of bytes")


@attrs.frozen(kw_only=True, eq=False)
class ClientOptions:
    """Everything about a client's connection; every field has a default.

    The defaults live in :mod:`mfa_common._constants`. Frozen: a client's options are fixed
    when it is made (``client.with_options(...)`` makes a twin with other per-call defaults).

    Args:
        timeout: Seconds per phase (connect, write, read, pool), or an ``httpx.Timeout``.
        deadline: Seconds for a whole call, retries and login steps included (None: none).
        retry: The :class:`~mfa_common.retry.RetryPolicy`.
        headers: Extra headers sent with every request, login steps included.
        limits: Connection pool limits (``httpx.Limits``).
        verify: TLS verification: True, False, or the path of a CA bundle.
        allow_insecure_http: Allow credentials over plain ``http://`` to a host that is not the
            loopback.
        max_body_bytes: The largest answer body accepted.
        max_header_bytes: The largest answer head accepted.

    Raises:
        InvalidInputError: A size limit that is not a positive whole number.
    """

    timeout: Timeout = attrs.field(default=None, converter=_timeout)
    deadline: float | None = C.TOTAL_DEADLINE
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    headers: Mapping[str, str] = attrs.field(default=None, converter=_headers)
    limits: Limits = attrs.field(factory=_limits)
    verify: bool | str = True
    allow_insecure_http: bool = False
    max_body_bytes: int = attrs.field(default=C.MAX_RESPONSE_BODY_BYTES, validator=_positive_int)
    max_header_bytes: int = attrs.field(default=C.MAX_RESPONSE_HEADER_BYTES, validator=_positive_int)


@attrs.frozen(kw_only=True)
class RequestOptions:
    """Per-call overrides; each one left None keeps the client's default.

    Every method of every client takes one as ``options=``; ``client.with_options(...)`` makes
    them a client's defaults.

    Args:
        timeout: Seconds per phase of each request.
        deadline: Seconds for the whole call, retries included.
        max_retries: How many times the call may be retried.
        headers: Extra headers (merged over the client's).
    """

    timeout: float | None = None
    deadline: float | None = None
    max_retries: int | None = None
    headers: Mapping[str, str] | None = None

    def over(self, defaults: RequestOptions | None) -> RequestOptions:
        """These options, each unset one taken from ``defaults``; headers are merged.

        Args:
            defaults: The options underneath (None: these alone).
        """
        if defaults is None:
            return self
        headers = self.headers
        if defaults.headers:
            headers = {**defaults.headers, **(self.headers or {})}
        return RequestOptions(
            timeout=self.timeout if self.timeout is not None else defaults.timeout,
            deadline=self.deadline if self.deadline is not None else defaults.deadline,
            max_retries=self.max_retries if self.max_retries is not None else defaults.max_retries,
            headers=headers,
        )


def check_credentials(*, given: dict[str, object], login_only: dict[str, object], login_key: str) -> None:
    """The one rule of every client constructor about its credential keywords.

    At most one credential, and the login-only keywords only beside ``login_key``, which needs
    ``password=``. The error names the keywords, never their values.

    Args:
        given: Credential keyword → value.
        login_only: Keywords that only make sense with a login (``password``, ``totp_secret``,
            ...) → value.
        login_key: The keyword that makes a login (``email`` or ``username``).

    Raises:
        InvalidInputError: The rule is broken.
    """
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
    elif login_only.get("password") is None:
        raise InvalidInputError(f"{login_key}= needs password=")
