"""The only module that imports httpx. Everything else takes these names from here, so the
HTTP library behind the SDK can change (to httpx2, for example) in one place."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def _import_httpx_without_its_cli() -> None:
    """``import httpx`` loads its command-line tool (click, rich, pygments when installed):
    about a third of httpx's import time, unused by a library. Import httpx with a stand-in
    for that module whose ``main`` loads the real one on first call, so ``httpx.main`` works."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return

    def main(*args: Any, **kwargs: Any) -> Any:
        sys.modules.pop("httpx._main", None)
        return importlib.import_module("httpx._main").main(*args, **kwargs)

    stand_in = types.ModuleType("httpx._main")
    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in
    try:
        importlib.import_module("httpx")
    finally:
        if sys.modules.get("httpx._main") is stand_in:
            del sys.modules["httpx._main"]


_import_httpx_without_its_cli()

import httpx  # noqa: E402
from httpx import (  # noqa: E402
    URL,
    ASGITransport,
    AsyncBaseTransport,
    AsyncByteStream,
    AsyncClient,
    Auth,
    ConnectError,
    ConnectTimeout,
    DecodingError,
    Headers,
    HTTPError,
    Limits,
    LocalProtocolError,
    MockTransport,
    PoolTimeout,
    ProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    Request,
    RequestError,
    Response,
    Timeout,
    TimeoutException,
    TransportError,
    UnsupportedProtocol,
    WriteError,
    WriteTimeout,
)

__all__ = [
    "URL",
    "ASGITransport",
    "AsyncBaseTransport",
    "AsyncByteStream",
    "AsyncClient",
    "Auth",
    "ConnectError",
    "ConnectTimeout",
    "DecodingError",
    "HTTPError",
    "Headers",
    "Limits",
    "LocalProtocolError",
    "MockTransport",
    "PoolTimeout",
    "ProtocolError",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "Request",
    "RequestError",
    "Response",
    "Timeout",
    "TimeoutException",
    "TransportError",
    "UnsupportedProtocol",
    "WriteError",
    "WriteTimeout",
    "httpx",
]
