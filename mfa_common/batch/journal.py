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
is not detected.) :meth:`Journal.hold` takes that lock early, before a caller spends a login or
writes anything beside the journal; the run then uses the held lock. Neither file is opened
through a link, and another user's journal is refused (see :mod:`mfa_common._files`).

A journal can be bound to what it was made for (``binding``, say a digest of the plan, the CSV
and the server): its first line then records it, ``{"journal": 1, "binding": "..."}``, and a
run with another binding is refused (:class:`JournalMismatchError`) before anything is written,
so the keys done for one plan are never taken as done for another. A journal whose first line
names a newer format is refused too. Journals without that line (unbound) are read as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from json.encoder import encode_basestring_ascii as _quote  # a JSON string literal, ASCII only

from .._files import StateFile, fsync_directory
from ..errors import InvalidInputError, StateFileError
from .outcome import ItemState

try:  # POSIX only; elsewhere a second concurrent run is not detected.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Journal", "JournalError", "JournalLockedError", "JournalMismatchError", "JournalWriter"]

_STATES = {s.value: s for s in (ItemState.STARTED, ItemState.DONE, ItemState.FAILED, ItemState.SKIPPED)}
#: The journal format this version writes (in a bound journal's first line) and reads.
JOURNAL_FORMAT = 1
# The first line is short (a format and a digest); more than this is not a header of ours.
_MAX_HEADER_BYTES = 4096


class JournalError(StateFileError):
    """The journal cannot be opened or written; the batch stops rather than run unjournaled."""


class JournalLockedError(JournalError):
    """Another process (or another batch in this one) is using the journal right now."""


class JournalMismatchError(JournalError):
    """The journal was made for another run (another plan, CSV, command or server)."""


def _journal_file(path: str) -> StateFile:
    return StateFile(path, what="the batch journal", error=JournalError)


def _busy(path: str) -> str:
    return f"the batch journal {path} is in use by another run; try again when it has finished"


def _check_first_line(path: str, first: bytes, binding: str | None) -> None:
    """Refuse a journal of a newer format, or one bound to another run than ``binding``."""
    try:
        record = json.loads(first)
    except ValueError:
        return  # an unbound journal's first event cut short by a kill: read as before
    if not isinstance(record, dict) or "journal" not in record:
        return  # an unbound journal
    file = _journal_file(path)
    if record.get("journal") != JOURNAL_FORMAT:
        raise file.unknown_format(record.get("journal"), JOURNAL_FORMAT)
    if binding is not None and record.get("binding") != binding:
        raise JournalMismatchError(
            f"the batch journal {path} was made for another run (another plan, CSV, command or "
            "server): use a new journal for this run, or resume this one with what it was made for",
            path=path,
        )


class Journal:
    """Where a batch records its progress; pass it to :func:`run_batch` as ``journal=``.

    The object only holds the path and the sync policy; :func:`run_batch` opens the file for
    the length of one run, so the same ``Journal`` serves any number of successive runs.

    Args:
        path: The journal file (JSON lines, created 0600; ``<path>.lock`` beside it).
        fsync_interval: Seconds between syncs to stable storage while a run writes (0: after
            every line; None: never, only the operating system's own flushing).
        binding: What the journal is made for (a digest of the plan, CSV, command and server):
            written in its first line; a journal bound to anything else is refused with
            :class:`JournalMismatchError`. None: not bound.

    Raises:
        InvalidInputError: A negative ``fsync_interval``.
    """

    __slots__ = ("_holding", "binding", "fsync_interval", "path")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync_interval: float | None = 1.0,
        binding: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        if fsync_interval is not None and fsync_interval < 0:
            raise InvalidInputError("fsync_interval must be >= 0 or None")
        self.fsync_interval = fsync_interval
        self.binding = binding
        self._holding = False

    @contextlib.contextmanager
    def hold(self) -> Iterator[Journal]:
        """Lock the journal's path for the block and check the journal was made for this run
        (its format and ``binding``): raises :class:`JournalLockedError` at once when another
        run holds it, :class:`JournalMismatchError` when it was made for another. A run started
        inside the block (``run_batch(journal=this)``) uses the held lock. Take it before any
        network call or any write beside the journal."""
        if self._holding:
            raise JournalError(f"the batch journal {self.path} is already held by this process")
        fd = _lock_exclusively(self.path)
        self._holding = True
        try:
            self.check()
            yield self
        finally:
            self._holding = False
            if fd is not None:
                os.close(fd)  # also releases the lock

    def check(self) -> None:
        """Refuse (before anything is written) a journal of a newer format, another user's or
        one behind a link, or one made for another run than :attr:`binding`."""
        with _journal_file(self.path).reading(tighten=True) as handle:
            first = handle.readline(_MAX_HEADER_BYTES) if handle is not None else b""
        if first:
            _check_first_line(self.path, first, self.binding)

    def read(self) -> dict[str, ItemState]:
        """The state of every key in the file: done, failed, skipped or unknown.

        ``unknown``: the last line is ``started`` (the run stopped while the write was in
        flight) or a ``failed`` line flagged ``"unknown": true``. Lines that do not parse
        (a last line cut short by a kill mid-write) are ignored. A missing file reads as empty.
        """
        states: dict[str, ItemState] = {}
        with _journal_file(self.path).reading(tighten=True) as handle:
            if handle is None:
                return {}
            for raw in handle:
                parsed = _parse_line(raw)
                if parsed is not None:
                    states[parsed[0]] = parsed[1]
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
        """Open the file for appending (creating it 0600) and lock it (unless :meth:`hold`
        holds the lock already); close the writer after."""
        return JournalWriter(
            self.path, fsync_interval=self.fsync_interval, binding=self.binding, path_locked=self._holding
        )

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

    def __init__(
        self,
        path: str,
        *,
        fsync_interval: float | None = 1.0,
        binding: str | None = None,
        path_locked: bool = False,
    ) -> None:
        self._fsync_interval = fsync_interval
        self._last_sync = time.monotonic()
        self._dirty = False
        self._fd: int | None = None
        # The path lock first: it outlives any rename of the journal itself.
        self._lock_fd: int | None = None if path_locked else _lock_exclusively(path)
        existed = os.path.lexists(path)
        try:
            fd = _journal_file(path).open(os.O_RDWR | os.O_APPEND | os.O_CREAT, tighten=True)
        except BaseException:
            self.close()
            raise
        self._fd = fd
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise JournalLockedError(_busy(path), path=path) from None
            size = os.fstat(fd).st_size
            if size > 0:
                first = os.pread(fd, _MAX_HEADER_BYTES, 0).split(b"\n", 1)[0]
                _check_first_line(path, first, binding)
            elif binding is not None:
                header = {"journal": JOURNAL_FORMAT, "binding": binding}
                self._append(json.dumps(header, separators=(",", ":"), ensure_ascii=True) + "\n")
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
            raise JournalError(f"cannot write the batch journal: {exc.strerror or exc}") from None
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


def _lock_exclusively(journal_path: str) -> int | None:
    """Lock ``<journal>.lock`` (created 0600, left in place) without waiting; the returned
    descriptor holds the lock until closed (None without ``fcntl``)."""
    lock = StateFile(f"{journal_path}.lock", what="the batch journal lock", error=JournalError)
    return lock.lock(wait=None, busy=_busy(journal_path), busy_error=JournalLockedError)
