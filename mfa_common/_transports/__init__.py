"""Transports: how requests reach the network, swappable behind the httpx API.

The default is chosen per event loop when the first request is sent:

* asyncio: :class:`AiohttpTransport` (aiohttp's connection pool; several times cheaper per
  request than httpx's own pool under concurrency, and not poisoned by cancellation);
* Trio (aiohttp is asyncio-only): :class:`Httpcore2Transport` (httpcore2's pool, which drops
  connections no request owns; httpcore 1.0.9 leaks them on cancellation, encode/httpcore#1093).

Any ``httpx.AsyncBaseTransport`` can be passed instead (``transport=``), for example
``httpx.ASGITransport(app)`` to talk to a fake in-process.
"""

from __future__ import annotations

import sniffio

from .. import _constants as C
from .._httpx import AsyncBaseTransport, Limits

__all__ = ["PooledTransport", "default_transport", "transport_kind"]


def transport_kind() -> str:
    """'aiohttp' on asyncio, 'httpcore2' on anything else (Trio)."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = "asyncio"
    return "aiohttp" if library == "asyncio" else "httpcore2"


def default_transport(
    *, limits: Limits, verify: bool | str = True, max_header_bytes: int = C.MAX_RESPONSE_HEADER_BYTES
) -> AsyncBaseTransport:
    """The fastest well-behaved transport for the running event loop (its library imported
    here, on first use, so importing the SDK stays cheap)."""
    if transport_kind() == "aiohttp":
        from .aiohttp import AiohttpTransport

        return AiohttpTransport(limits=limits, verify=verify, max_header_bytes=max_header_bytes)
    from .httpcore2 import Httpcore2Transport

    return Httpcore2Transport(limits=limits, verify=verify, max_header_bytes=max_header_bytes)


class PooledTransport(AsyncBaseTransport):
    """What both default transports take: the pool's ``limits``, TLS verification (``verify``:
    True, False or a CA bundle's path) and ``max_header_bytes``, the largest response head (one
    header line may use all of it; the client checks the total the same way for every
    transport). A subclass sets up its pool in :meth:`_setup`."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        verify: bool | str = True,
        max_header_bytes: int = C.MAX_RESPONSE_HEADER_BYTES,
    ) -> None:
        self._limits = limits or Limits()
        self._verify = verify
        self._max_header_bytes = max_header_bytes
        self._setup()

    def _setup(self) -> None:
        """Make the transport's own state from the settings (no I/O: the pool opens on use)."""
