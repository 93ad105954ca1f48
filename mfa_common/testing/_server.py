"""Run a fake ASGI app on a loopback socket: in a background thread (:func:`serve`) or in the
foreground for ``python -m <package>.testing`` (:func:`run_forever`)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["HttpImpl", "ServerHandle", "bind_socket", "run_forever", "serve"]

HttpImpl = Literal["auto", "h11", "httptools"]
LifespanMode = Literal["auto", "on", "off"]

_POLL_INTERVAL = 0.01


def _resolve_host(host: str, allow_non_loopback: bool) -> str:
    """Return the address to bind, refusing non-loopback hosts unless allowed."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if allow_non_loopback:
            return host
        raise ValueError(f"refusing to bind {host!r}: not a loopback address") from None
    if not address.is_loopback and not allow_non_loopback:
        raise ValueError(f"refusing to bind {host!r}: not a loopback address (pass allow_non_loopback=True)")
    return str(address)


def bind_socket(host: str = "127.0.0.1", port: int = 0, *, allow_non_loopback: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0 picks a free one), not yet listening."""
    address = _resolve_host(host, allow_non_loopback)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections; without it every
    # small response waits for a delayed ACK (~40 ms on loopback).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class ServerHandle:
    """A running server: where it listens and the objects running it."""

    host: str
    port: int
    server: Any
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        """``http://host:port`` without a trailing slash."""
        return f"http://{_url_host(self.host)}:{self.port}"

    def url(self, path: str = "/") -> str:
        """Absolute URL of ``path`` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)


class SwappableApp:
    """An ASGI app that forwards to ``self.app``, so one loopback server (started once with
    :func:`serve`) can serve a fresh fake per test: ``swap.app = QuatrixFake(...)``."""

    def __init__(self, app: Any = None) -> None:
        self.app: Any = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)


@contextlib.contextmanager
def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    http: HttpImpl = "auto",
    lifespan: LifespanMode = "auto",
    allow_non_loopback: bool = False,
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 5.0,
    shutdown_grace: float = 1.0,
    log_level: str = "warning",
) -> Iterator[ServerHandle]:
    """Serve ``app`` with uvicorn in a daemon thread for the duration of the ``with`` block.

    The socket is bound before the server starts, so ``port=0`` yields a known free port. On exit
    the server is asked to stop; requests still running after ``shutdown_grace`` seconds (a slow
    fault, say) are abandoned, and the thread is joined for at most ``shutdown_timeout`` seconds.
    """
    import uvicorn  # optional dependency (the ``fakes`` extra)

    sock = bind_socket(host, port, allow_non_loopback=allow_non_loopback)
    bound_host, bound_port = sock.getsockname()[:2]
    try:
        config = uvicorn.Config(
            app,
            host=bound_host,
            port=bound_port,
            http=http,
            lifespan=lifespan,
            log_level=log_level,
            log_config=None,
            access_log=False,
        )
        server = uvicorn.Server(config)
    except BaseException:
        sock.close()
        raise
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"fake-server-{bound_port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                cause = failure[0] if failure else None
                raise RuntimeError(f"server on port {bound_port} failed to start") from cause
            if time.monotonic() > deadline:
                raise TimeoutError(f"server on port {bound_port} did not start in time")
            time.sleep(_POLL_INTERVAL)
        yield ServerHandle(host=bound_host, port=bound_port, server=server, thread=thread)
    finally:
        _stop(server, thread, shutdown_grace, shutdown_timeout)
        sock.close()


def _stop(server: Any, thread: threading.Thread, grace: float, timeout: float) -> None:
    server.should_exit = True
    thread.join(min(grace, timeout))
    if thread.is_alive():
        server.force_exit = True
        thread.join(max(0.0, timeout - grace))
    if thread.is_alive():
        warnings.warn(
            f"server thread {thread.name} did not stop within {timeout} s",
            RuntimeWarning,
            stacklevel=3,
        )


def run_forever(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    banner: str = "",
    *,
    http: HttpImpl = "auto",
    allow_non_loopback: bool = False,
    log_level: str = "info",
) -> None:
    """Print ``banner`` and the listening URL, then serve ``app`` in the foreground until Ctrl-C."""
    import uvicorn  # optional dependency (the ``fakes`` extra)

    sock = bind_socket(host, port, allow_non_loopback=allow_non_loopback)
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app, host=bound_host, port=bound_port, http=http, log_level=log_level, lifespan="auto"
    )
    server = uvicorn.Server(config)
    if banner:
        print(banner, flush=True)
    print(f"Listening on http://{_url_host(bound_host)}:{bound_port} (Ctrl-C to stop)", flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
