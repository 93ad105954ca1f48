"""Run a fake ASGI app on a loopback socket: in a background thread (:func:`serve`) or in the
foreground for ``python -m <package>.testing`` (:func:`run_forever`)."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "HttpImpl",
    "ServerHandle",
    "bind_socket",
    "run_command",
    "run_forever",
    "serve",
    "server_argument_parser",
]

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


class serve:  # noqa: N801 - used like the function it was: ``with serve(app) as server``
    """Serve ``app`` with uvicorn in a daemon thread for the duration of a ``with`` or ``async with`` block.

    Gives the :class:`ServerHandle`::

        with serve(QuatrixFake()) as server:           # in a plain test
            ...
        async with serve(QuatrixFake()) as server:     # in an async test: the event loop keeps
            ...                                        # running while the server starts and stops

    The socket is bound before the server starts, so ``port=0`` yields a known free port.

    Args:
        app: Any ASGI app (every fake is one).
        host: A loopback address to listen on.
        port: The port (0: a free one).
        http: uvicorn's HTTP parser: ``"auto"``, ``"h11"`` or ``"httptools"``.
        lifespan: Run the app's lifespan: ``"auto"``, ``"on"`` or ``"off"``.
        allow_non_loopback: Allow a ``host`` that is not a loopback address.
        startup_timeout: Seconds the server may take to start.
        shutdown_timeout: On exit the thread is joined for at most this many seconds.
        shutdown_grace: On exit, requests still running after this many seconds (a slow fault,
            say) are abandoned.
        log_level: uvicorn's log level.
    """

    def __init__(
        self,
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
    ) -> None:
        self.app = app
        self._host, self._port = host, port
        self._http, self._lifespan, self._log_level = http, lifespan, log_level
        self._allow_non_loopback = allow_non_loopback
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout
        self._shutdown_grace = shutdown_grace
        self._running: tuple[Any, threading.Thread, socket.socket] | None = None

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"serve({type(self.app).__name__}, {state})"

    def __enter__(self) -> ServerHandle:
        if self._running is not None:
            raise RuntimeError("this serve() is already running; make one per with-block")
        import uvicorn  # optional dependency (the ``fakes`` extra)

        sock = bind_socket(self._host, self._port, allow_non_loopback=self._allow_non_loopback)
        bound_host, bound_port = sock.getsockname()[:2]
        try:
            config = uvicorn.Config(
                self.app,
                host=bound_host,
                port=bound_port,
                http=self._http,
                lifespan=self._lifespan,
                log_level=self._log_level,
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
        self._running = (server, thread, sock)
        try:
            deadline = time.monotonic() + self._startup_timeout
            while not server.started:
                if not thread.is_alive():
                    cause = failure[0] if failure else None
                    raise RuntimeError(f"server on port {bound_port} failed to start") from cause
                if time.monotonic() > deadline:
                    raise TimeoutError(f"server on port {bound_port} did not start in time")
                time.sleep(_POLL_INTERVAL)
        except BaseException:
            self._close()
            raise
        return ServerHandle(host=bound_host, port=bound_port, server=server, thread=thread)

    def __exit__(self, *exc_info: object) -> None:
        self._close()

    async def __aenter__(self) -> ServerHandle:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self.__enter__)

    async def __aexit__(self, *exc_info: object) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            server, thread, sock = running
            try:
                _stop(server, thread, self._shutdown_grace, self._shutdown_timeout)
            finally:
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


def _bind_failure(exc: OSError | ValueError, prog: str, host: str, port: int) -> str:
    """The one line (for stderr) saying why ``host:port`` could not be bound."""
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"{prog}: port {port} on {host} is already in use; pick another with --port (0: any free one)"
    if isinstance(exc, ValueError):
        return f"{prog}: refusing to listen on {host}: not a loopback address (the fake is for local tests)"
    if exc.errno == errno.EACCES:
        return f"{prog}: not allowed to bind port {port} on {host}; pick a port above 1023 with --port"
    return f"{prog}: cannot listen on {host}:{port}: {exc.strerror or exc}"


def run_forever(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    banner: str = "",
    *,
    http: HttpImpl = "auto",
    allow_non_loopback: bool = False,
    log_level: str = "info",
    prog: str = "fake server",
) -> None:
    """Print ``banner`` and the listening URL, then serve ``app`` in the foreground until Ctrl-C.

    A port that cannot be bound (in use, privileged) or a non-loopback host ends the process
    with one line on stderr and exit status 2, not a traceback.
    """
    import uvicorn  # optional dependency (the ``fakes`` extra)

    try:
        sock = bind_socket(host, port, allow_non_loopback=allow_non_loopback)
    except (OSError, ValueError) as exc:
        print(_bind_failure(exc, prog, host, port), file=sys.stderr, flush=True)
        raise SystemExit(2) from None
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


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    build: Callable[[argparse.Namespace], tuple[Any, str]],
) -> int:
    """A fake's ``python -m <package>.testing``: parse ``argv`` (with ``parser``, built on
    :func:`server_argument_parser`), ``build`` the app and its banner from the arguments (a
    ValueError, such as a bad accounts file, is a usage error: exit status 2), then serve until
    Ctrl-C."""
    args = parser.parse_args(argv)
    try:
        app, banner = build(args)
    except ValueError as exc:
        parser.error(str(exc))
    run_forever(app, args.host, args.port, banner, prog=parser.prog)
    return 0


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's and epilog's line breaks and shows each option's default (when it
    has one worth showing: not None, not an off flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        if len(str(default)) > 30:  # a long list is already spelled out in the help text
            return text
        return text + " (default: %(default)s)"


def server_argument_parser(prog: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    """The parser of a ``python -m <package>.testing`` command: ``--host`` and ``--port`` (a
    busy port ends it with one line and exit status 2, see :func:`run_forever`)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog, formatter_class=_HelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (0 picks a free one)")
    return parser
