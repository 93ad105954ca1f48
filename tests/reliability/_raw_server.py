"""A loopback TCP server that misbehaves on purpose, below HTTP: silent, endless, broken.

Each accepted connection runs ``behaviour(conn, stats)`` in a daemon thread; the server stops
and closes every connection when the ``with`` block ends. Bounded: a behaviour sends at most
``max_bytes`` (default 64 MiB) and every socket operation has a timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class Stats:
    connections: int = 0
    requests: int = 0
    bytes_sent: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count_request(self) -> None:
        with self.lock:
            self.requests += 1

    def sent(self, n: int) -> None:
        with self.lock:
            self.bytes_sent += n


Behaviour = Callable[[socket.socket, Stats], None]


def read_head(conn: socket.socket) -> bytes:
    """Read one request head (and a small body when Content-Length says so)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            want = int(line.split(b":", 1)[1])
            while len(rest) < want:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                rest += chunk
    return head


@contextlib.contextmanager
def raw_server(behaviour: Behaviour) -> Iterator[tuple[str, Stats]]:
    """``(base_url, stats)`` of a server on 127.0.0.1 running ``behaviour`` per connection."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    stats = Stats()
    conns: list[socket.socket] = []

    def run(conn: socket.socket) -> None:
        conn.settimeout(30)
        with contextlib.suppress(OSError):
            behaviour(conn, stats)

    def accept_loop() -> None:
        while not stats.stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with stats.lock:
                stats.connections += 1
            conns.append(conn)
            threading.Thread(target=run, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", stats
    finally:
        stats.stop.set()
        thread.join(5)
        listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()


def silent(conn: socket.socket, stats: Stats) -> None:
    """Accept, read, never answer (until the test ends)."""
    with contextlib.suppress(OSError):
        read_head(conn)
        stats.count_request()
    stats.stop.wait(60)


def answer_then(head: bytes, body_parts: Callable[[], Iterator[bytes]], *, close: bool = True) -> Behaviour:
    """Answer every request with ``head`` then ``body_parts()``; then close (or keep going)."""

    def behaviour(conn: socket.socket, stats: Stats) -> None:
        while not stats.stop.is_set():
            if not read_head(conn):
                return
            stats.count_request()
            conn.sendall(head)
            for part in body_parts():
                if stats.stop.is_set() or stats.bytes_sent > 64 * 1024 * 1024:
                    return
                conn.sendall(part)
                stats.sent(len(part))
            if close:
                conn.shutdown(socket.SHUT_RDWR)
                return

    return behaviour
