"""Backends whose credential is known up front: HTTP Basic, an API key header, a bearer token.

Like every backend of the SDK they send the credential only to the origin of the first request
(or of ``base_url``), never to another host after a redirect.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator
from typing import Any, NoReturn

from .._httpx import URL, Auth, Request, Response
from ..errors import InvalidInputError
from ..secret import Secret, wrap
from ..wire import PATH_TEMPLATE_EXTENSION


def checked_token(value: str | Secret[str], what: str = "api_key") -> Secret[str]:
    """``value`` as a Secret, or InvalidInputError (never showing it) when it cannot go into a
    header: empty, surrounded by spaces, or holding anything but printable ASCII without
    whitespace (a line break would end the header early)."""
    secret = wrap(value)
    text = secret.reveal()
    if not isinstance(text, str) or not text or any(ord(c) < 0x21 or ord(c) > 0x7E for c in text):
        raise InvalidInputError(
            f"{what} must be a non-empty string of printable ASCII characters without spaces"
        )
    return secret


class StaticHeaderAuth(Auth):
    """A credential that is one header, the same on every request.

    Every request, from an SDK client or any other httpx client, goes through
    :meth:`async_auth_flow`, which adds the header only on the origin it was bound to.
    """

    def __init__(self, base_url: str | URL | None) -> None:
        self._origin = _origin(URL(str(base_url))) if base_url is not None else None
        # The last URL found on the origin: a client sends most calls to URL objects it reuses
        # (one per path), so the origin is compared once per path. Never a path holding a secret.
        self._on_origin: URL | None = None

    def static_header(self) -> tuple[str, str]:
        """(name, value) of the header; the value holds the secret."""
        raise NotImplementedError

    def _apply(self, request: Request) -> None:
        name, value = self.static_header()
        request.headers[name] = value

    def _allowed(self, request: Request) -> bool:
        url = request.url
        if url is self._on_origin:
            return True
        origin = _origin(url)
        if self._origin is None:
            self._origin = origin
        if origin != self._origin:
            return False
        if PATH_TEMPLATE_EXTENSION not in request.extensions:
            self._on_origin = url
        return True

    def async_auth_flow(self, request: Request) -> AsyncGenerator[Request, Response]:
        # One step, the header set (or not) before it: a small flow object rather than an
        # async generator, which the event loop would register and finalise per request.
        if self._allowed(request):
            self._apply(request)
        return _OneStep(request)


class BasicAuth(StaticHeaderAuth):
    """HTTP Basic with a username (e-mail) and password.

    Args:
        username: The username (an e-mail address).
        password: Its password.
        base_url: The only origin the header is sent to (default: the origin of the first
            request).
    """

    def __init__(self, username: str, password: str | Secret[str], *, base_url: str | URL | None = None):
        super().__init__(base_url)
        self.username = username
        token = base64.b64encode(f"{username}:{wrap(password).reveal()}".encode()).decode()
        self._header = Secret(f"Basic {token}")

    def static_header(self) -> tuple[str, str]:
        return ("Authorization", self._header.reveal())

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=Secret('***'))"


class ApiKeyAuth(StaticHeaderAuth):
    """A static API key in a header: ``Authorization: Bearer <key>`` by default, or e.g.
    ``header="X-API-KEY", scheme=None`` for a bare key.

    Args:
        api_key: The key.
        header: The header that carries it.
        scheme: Written before the key, with a space (None: the bare key).
        base_url: The only origin the header is sent to (default: the origin of the first
            request).

    Raises:
        InvalidInputError: A key that cannot go into a header: empty, or holding anything but
            printable ASCII without whitespace (the message never shows it).
    """

    def __init__(
        self,
        api_key: str | Secret[str],
        *,
        header: str = "Authorization",
        scheme: str | None = "Bearer",
        base_url: str | URL | None = None,
    ) -> None:
        super().__init__(base_url)
        self.header = header
        self.scheme = scheme
        self._key = checked_token(api_key)

    @property
    def api_key(self) -> Secret[str]:
        """The key in use."""
        return self._key

    def set_key(self, api_key: str | Secret[str]) -> None:
        """Switch to a new key (after the server regenerated it).

        Args:
            api_key: The new key.

        Raises:
            InvalidInputError: A key that cannot go into a header.
        """
        self._key = checked_token(api_key)

    def static_header(self) -> tuple[str, str]:
        key = self._key.reveal()
        return (self.header, f"{self.scheme} {key}" if self.scheme else key)

    def __repr__(self) -> str:
        return f"ApiKeyAuth(header={self.header!r}, api_key=Secret('***'))"


class BearerTokenAuth(ApiKeyAuth):
    """A static bearer token (a JWT obtained elsewhere): ``Authorization: Bearer <token>``.

    Args:
        token: The token.
        base_url: The only origin the header is sent to (default: the origin of the first
            request).

    Raises:
        InvalidInputError: A token that cannot go into a header: empty, or holding anything but
            printable ASCII without whitespace (the message never shows it).
    """

    def __init__(self, token: str | Secret[str], *, base_url: str | URL | None = None) -> None:
        super().__init__(token, base_url=base_url)

    def __repr__(self) -> str:
        return "BearerTokenAuth(token=Secret('***'))"


def _origin(url: URL) -> tuple[bytes, bytes, int | None]:
    return (url.raw_scheme, url.raw_host, url.port)


class _OneStep(AsyncGenerator[Request, Response]):
    """An auth flow that yields ``request`` once and ends at the answer, with the protocol of
    the async generator ``async def flow(): yield request`` (what httpx and the SDK drive)."""

    __slots__ = ("_request",)

    def __init__(self, request: Request) -> None:
        self._request: Request | None = request

    async def __anext__(self) -> Request:
        return self._step()

    async def asend(self, value: Response | None) -> Request:
        if value is not None and self._request is not None:
            raise TypeError("can't send non-None value to a just-started async generator")
        return self._step()

    async def athrow(self, *args: Any) -> NoReturn:
        self._request = None
        raise args[0] if len(args) == 1 else args[1] if args[1] is not None else args[0]()

    async def aclose(self) -> None:
        self._request = None

    def _step(self) -> Request:
        request, self._request = self._request, None
        if request is None:
            raise StopAsyncIteration
        return request
