"""The batch journal: an append-only JSON-lines file that lets a re-run resume safely.

Each line is one event for one item::

    {"key": "user-17", "state": "started", "ts": 1718000000.123}
    {"key": "user-17", "state": "done", "ts": 1718000000.171}
    {"key": "user-18", "state": "failed", "reason": "ConflictError: ...", "ts": 1718000000.2}
    {"key": "user-19", "state": "failed", "reason": "outcome unknown", "unknown": true, "ts": ...}

A ``started`` line is written before the operation runs, so after a crash, Ctrl-C or
``kill -9`` a key whose last line is ``started`` is *unknown*: the write may or may not have
reached the server. The last line of a key decides its state.

Durability (measured on a Linux ext4/virtio disk: one ``write(2)`` of a line ≈ 7 µs, one
``fsync`` ≈ 300 µs): every line is handed to the kernel with a single unbuffered ``write(2)``
on an ``O_APPEND`` descriptor as soon as the item finishes, which is all a process kill
needs (the kernel keeps the data). ``fsync`` protects against a machine crash or power loss;
doing it per line would cap a batch at ~1,600 items/s and stall the event loop, so by default
it runs at most once per ``fsync_interval`` (1 s) and when the batch ends. Pass
``fsync_interval=0`` to sync every line (small, critical jobs) or ``None`` to leave it to the OS.

Only keys and reasons are written: keys must be identities (a user id or e-mail address),
never secrets. The file is created with owner-only permissions (0600) and locked against a
second concurrent batch while in use. The lock is taken on the *path*, not only on the open
file: a lock file beside the journal (``<journal>.lock``, 0600, left in place) is held for the
whole run, so a journal moved or deleted during a run does not let a second run start on the
same path and repeat every write. (POSIX ``flock``; without ``fcntl`` a second concurrent run
is not detected.)
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii as _quote  # a JSON string literal, ASCII only

from .._files import fsync_directory
from ..errors import InvalidInputError, MfaSdkError
from .outcome import ItemState

try:  # POSIX only; elsewhere a second concurrent run is not detected.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Journal", "JournalError", "JournalLockedError", "JournalWriter"]

_STATES = {s.value: s for s in (ItemState.STARTED, ItemState.DONE, ItemState.FAILED, ItemState.SKIPPED)}


class JournalError(MfaSdkError, OSError):
    """The journal cannot be opened or written; the batch stops rather than run unjournaled."""


class JournalLockedError(JournalError):
    """Another process (or another batch in this one) is using the journal right now."""


class Journal:
    """Where a batch records its progress; pass it to :func:`run_batch` as ``journal=``.

    The object only holds the path and the sync policy; :func:`run_batch` opens the file for
    the length of one run, so the same ``Journal`` serves any number of successive runs.
    """

    __slots__ = ("fsync_interval", "path")

    def __init__(self, path: str | os.PathLike[str], *, fsync_interval: float | None = 1.0) -> None:
        self.path = os.fspath(path)
        if fsync_interval is not None and fsync_interval < 0:
            raise InvalidInputError("fsync_interval must be >= 0 or None")
        self.fsync_interval = fsync_interval

    def read(self) -> dict[str, ItemState]:
        """The state of every key in the file: done, failed, skipped or unknown.

        ``unknown``: the last line is ``started`` (the run stopped while the write was in
        flight) or a ``failed`` line flagged ``"unknown": true``. Lines that do not parse
        (a last line cut short by a kill mid-write) are ignored. A missing file reads as empty.
        """
        states: dict[str, ItemState] = {}
        try:
            with open(self.path, "rb") as handle:
                for raw in handle:
                    parsed = _parse_line(raw)
                    if parsed is not None:
                        states[parsed[0]] = parsed[1]
        except FileNotFoundError:
            return {}
        return states

    def counts(self) -> Mapping[str, int]:
        """How many keys are in each state (a cheap report for ``--resume`` style tools)."""
        result = {
            s.value: 0 for s in (ItemState.DONE, ItemState.FAILED, ItemState.SKIPPED, ItemState.UNKNOWN)
        }
        for state in self.read().values():
            result[state.value] += 1
        return result

    def open_writer(self) -> JournalWriter:
        """Open the file for appending (creating it 0600) and lock it; close the writer after."""
        return JournalWriter(self.path, fsync_interval=self.fsync_interval)

    def __repr__(self) -> str:
        return f"Journal({self.path!r})"


def _parse_line(raw: bytes) -> tuple[str, ItemState] | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    key = record.get("key")
    raw_state = record.get("state")
    state = _STATES.get(raw_state) if isinstance(raw_state, str) else None
    if not isinstance(key, str) or state is None:
        return None
    if state is ItemState.STARTED or (state is ItemState.FAILED and record.get("unknown") is True):
        state = ItemState.UNKNOWN
    return key, state


class JournalWriter:
    """An open journal: appends one line per event, each with a single ``write(2)``."""

    def __init__(self, path: str, *, fsync_interval: float | None = 1.0) -> None:
        self._fsync_interval = fsync_interval
        self._last_sync = time.monotonic()
        self._dirty = False
        self._fd: int | None = None
        # The path lock first: it outlives any rename of the journal itself.
        self._lock_fd: int | None = _lock_exclusively(f"{path}.lock", path)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        existed = os.path.exists(path)
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            self.close()
            raise JournalError(f"cannot open the batch journal {path!r}: {exc.strerror}") from None
        self._fd = fd
        try:
            if os.name != "nt":
                os.fchmod(fd, 0o600)
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise JournalLockedError(f"the batch journal {path!r} is in use by another run") from None
            size = os.fstat(fd).st_size
            # A kill mid-write can leave a partial last line: end it so the next line stands alone.
            if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
                os.write(fd, b"\n")
            if not existed:
                fsync_directory(os.path.dirname(os.path.abspath(path)))
        except BaseException:
            self.close()
            raise

    def started(self, key: str) -> None:
        """Record that the operation for ``key`` is about to run (written before it runs)."""
        self._append(f'{{"key":{_quote(key)},"state":"started","ts":{time.time():.3f}}}\n')

    def finished(
        self, key: str, state: ItemState, reason: str | None = None, *, unknown: bool = False
    ) -> None:
        """Record the final state of ``key`` (``reason`` must be secret-free)."""
        extra = ""
        if reason is not None:
            extra = f',"reason":{_quote(reason)}'
        if unknown:
            extra += ',"unknown":true'
        self._append(f'{{"key":{_quote(key)},"state":"{state.value}"{extra},"ts":{time.time():.3f}}}\n')

    def _append(self, line: str) -> None:
        fd = self._fd
        if fd is None:
            raise JournalError("the batch journal is closed")
        data = line.encode("ascii")
        try:
            written = os.write(fd, data)
            while written < len(data):  # short writes are rare (disk full, signals): finish the line
                written += os.write(fd, data[written:])
        except OSError as exc:
            raise JournalError(f"cannot write the batch journal: {exc.strerror}") from None
        interval = self._fsync_interval
        if interval is None:
            return
        self._dirty = True
        if interval == 0 or time.monotonic() - self._last_sync >= interval:
            self.sync()

    def sync(self) -> None:
        """Flush the file to stable storage now."""
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False
            self._last_sync = time.monotonic()

    def close(self) -> None:
        """Sync (unless ``fsync_interval`` is None), unlock and close. Idempotent."""
        fd, self._fd = self._fd, None
        lock_fd, self._lock_fd = self._lock_fd, None
        try:
            if fd is not None:
                try:
                    if self._dirty and self._fsync_interval is not None:
                        with contextlib.suppress(OSError):
                            os.fsync(fd)
                finally:
                    os.close(fd)  # also releases the flock
        finally:
            if lock_fd is not None:
                os.close(lock_fd)  # the path lock goes last


def _lock_exclusively(lock_path: str, journal_path: str) -> int | None:
    """Open (creating it 0600) and lock ``lock_path`` without waiting; the descriptor holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        raise JournalError(f"cannot open the batch journal lock {lock_path!r}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalLockedError(f"the batch journal {journal_path!r} is in use by another run") from None
    except BaseException:
        os.close(fd)
        raise
    return fd
