"""State files: the one way the SDK and its tools keep anything on disk.

Every state file (the recovery-code store, the batch journal and its lock, the TOTP step state
and its lock, and the command-line tools' saved sessions, login record, plans and the state kept
beside a journal) goes through :class:`StateFile`, so the same rules hold for all of them:

* a path is opened without following a symbolic link (``O_NOFOLLOW``): a link planted at it,
  dangling or not, is refused, left in place and never read or written through;
* what is opened must be a regular file of the current user (a FIFO is refused without blocking
  on it); a file others can read or write is refused, or tightened to 0600 where the caller says
  it is safe (a journal or a lock file: nothing secret, and ours);
* a new file is created 0600 and exclusively; a directory the SDK makes for its state is 0700
  and must belong to the current user;
* a file is replaced atomically: written beside it under a random name (never one that exists),
  flushed, renamed over it, then the directory is flushed, so a reader or a crash never sees half
  of it; a link at the path is refused rather than replaced;
* a caller rewrites a file only after reading it: a refused read (damaged, another user's, a
  format this version does not know) stops the write, so nothing it could not read is lost;
* every error is a :class:`~mfa_common.errors.StateFileError` (or the caller's subclass of it)
  whose message names the path and says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from .errors import StateFileError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: locks serialise the threads of one process only
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "StateFile",
    "ensure_private_directory",
    "fsync_directory",
    "locked_beside",
    "private_file_problem",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# A FIFO planted at a path must not block the open; regular files ignore the flag.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_POLL_SECONDS = 0.005
# Without fcntl, a lock serialises the threads of this process (per lock path).
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def fsync_directory(directory: str) -> None:
    """Make a rename or a new file in ``directory`` durable (POSIX; a no-op on Windows)."""
    if os.name == "nt":
        return
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def private_file_problem(st: os.stat_result) -> str | None:
    """Why a file (by its ``os.stat`` result) is not a regular file private to the current user,
    as a phrase ("belongs to another user"), or None when it is (always None off POSIX)."""
    if os.name != "posix":  # pragma: no cover - POSIX permission bits only
        return None
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != os.geteuid():
        return "belongs to another user"
    if st.st_mode & 0o077:
        return f"has permissions {stat.S_IMODE(st.st_mode):#o}, open to other users"
    return None


def _write_synced(fd: int, data: bytes) -> None:
    """Write ``data`` through ``fd`` to stable storage, then close it."""
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def ensure_private_directory(
    directory: str | os.PathLike[str],
    *,
    what: str,
    fix: str,
    error: type[StateFileError] = StateFileError,
) -> None:
    """Make ``directory`` (0700, with its parents) for the state file(s) ``what``, or check the
    one there: a directory of the current user (others' access bits are removed) that this user
    can write. ``fix`` says how to choose another place (the setting that moves it)."""
    path = os.fspath(directory)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError as exc:
        raise error(f"cannot use {path} for {what}: {_reason(exc)}; {fix}", path=path) from None
    if not stat.S_ISDIR(st.st_mode):
        raise error(f"cannot use {path} for {what}: it is not a directory; {fix}", path=path)
    if os.name != "posix":  # pragma: no cover - POSIX owners and modes only
        return
    if st.st_uid != os.geteuid():
        raise error(
            f"cannot use {path} for {what}: the directory belongs to another user; remove it or {fix}",
            path=path,
        )
    if st.st_mode & 0o077:
        try:
            os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
        except OSError as exc:
            raise error(f"cannot make {path} private ({what}): {_reason(exc)}; {fix}", path=path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise error(f"cannot use {path} for {what}: it is not writable by you; {fix}", path=path)


class StateFile:
    """One state file at ``path``, called ``what`` in messages ("the saved sessions"), failing
    with ``error`` (a :class:`StateFileError` subclass). See the module docstring for the rules.

    ``damaged`` is what a message about a file this version cannot read says to do ("move it
    away", "delete it to start afresh"); ``exposed`` what one about a file open to others says
    (default: ``chmod 600 <path>``).
    """

    __slots__ = ("damaged", "error", "exposed", "path", "what")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        what: str,
        error: type[StateFileError] = StateFileError,
        damaged: str = "move it away",
        exposed: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.what = what
        self.error = error
        self.damaged = damaged
        self.exposed = exposed

    def __repr__(self) -> str:
        return f"StateFile({self.path!r})"

    # ----------------------------------------------------------------- errors

    def fail(self, problem: str, fix: str | None = None) -> StateFileError:
        """The error for ``problem`` ("is not valid JSON"), naming the path, with ``fix``."""
        return self.error(f"{self.what} {self.path} {problem}: {fix or self.damaged}", path=self.path)

    def unknown_format(self, found: object, known: int) -> StateFileError:
        """A file of a format this version does not know (a later version's, or another shape)."""
        if isinstance(found, int) and not isinstance(found, bool) and found > known:
            return self.fail(
                f"was written by a newer version (format {found}; this version reads format {known})",
                "upgrade, or move it away to start afresh",
            )
        return self.fail(f"is not a format {known} file of this version", f"move it away; {self.damaged}")

    def _os_failure(self, doing: str, exc: OSError) -> StateFileError:
        """The error for an ``OSError`` met while trying to ``doing`` ("open") the file."""
        if exc.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(self.path):
            return self.fail(
                "is a symbolic link",
                "remove the link (state files are never read or written through one)",
            )
        fix = "; make it and its directory yours" if isinstance(exc, PermissionError) else ""
        return self.error(f"cannot {doing} {self.what} {self.path}: {_reason(exc)}{fix}", path=self.path)

    # ----------------------------------------------------------------- opening

    def open(self, flags: int, *, tighten: bool = False) -> int:
        """A descriptor on the file, opened with ``flags`` plus no-follow and close-on-exec,
        checked to be a private regular file of this user (created 0600 with ``O_CREAT``).
        ``tighten``: a file of ours open to others is made 0600 instead of refused.
        A missing file raises :class:`FileNotFoundError` (without ``O_CREAT``)."""
        try:
            fd = os.open(self.path, flags | _NOFOLLOW | _CLOEXEC | _NONBLOCK, 0o600)
        except (FileNotFoundError, NotADirectoryError) as exc:
            if flags & os.O_CREAT:
                raise self._os_failure("create", exc) from None
            # Nothing there (a missing directory, or a file where one belongs, alike): whoever
            # writes the file meets the directory's problem, with the fix for it.
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), self.path) from None
        except OSError as exc:
            raise self._os_failure("open", exc) from None
        try:
            self._check(fd, tighten=tighten)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _check(self, fd: int, *, tighten: bool) -> None:
        st = os.fstat(fd)
        problem = private_file_problem(st)
        if problem is None:
            return
        if not stat.S_ISREG(st.st_mode):
            raise self.fail(problem)
        if st.st_uid != os.geteuid():
            raise self.fail(problem, "make it yours (chown) or move it away")
        if tighten:
            os.fchmod(fd, 0o600)
            return
        raise self.fail(problem, self.exposed or f"chmod 600 {self.path}")

    @contextlib.contextmanager
    def reading(self, *, tighten: bool = False) -> Iterator[IO[bytes] | None]:
        """The file opened for reading (checked as :meth:`open` does), or None when missing."""
        try:
            fd = self.open(os.O_RDONLY, tighten=tighten)
        except FileNotFoundError:
            yield None
            return
        with os.fdopen(fd, "rb") as handle:
            yield handle

    def read(self, *, max_bytes: int, tighten: bool = False) -> bytes | None:
        """The whole file (at most ``max_bytes``), or None when there is none."""
        with self.reading(tighten=tighten) as handle:
            if handle is None:
                return None
            try:
                data = handle.read(max_bytes + 1)
            except OSError as exc:
                raise self._os_failure("read", exc) from None
        if len(data) > max_bytes:
            raise self.fail(f"is larger than {max_bytes} bytes")
        return data

    def read_json(self, *, max_bytes: int, tighten: bool = False) -> Any | None:
        """The file's JSON document, or None when there is none."""
        data = self.read(max_bytes=max_bytes, tighten=tighten)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:  # UnicodeDecodeError included
            raise self.fail("is not valid JSON") from None

    # ----------------------------------------------------------------- writing

    def replace(self, data: bytes) -> None:
        """Replace the file atomically with ``data`` (0600); see the module docstring."""
        directory = os.path.dirname(os.path.abspath(self.path))
        if os.path.islink(self.path):
            raise self._os_failure("replace", OSError(errno.ELOOP, os.strerror(errno.ELOOP)))
        temporary = os.path.join(directory, f".{os.path.basename(self.path)}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
        except OSError as exc:
            raise self._os_failure("write", exc) from None
        try:
            _write_synced(fd, data)
            os.replace(temporary, self.path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if isinstance(exc, OSError) and not isinstance(exc, StateFileError):
                raise self._os_failure("write", exc) from None
            raise
        fsync_directory(directory)

    def replace_json(self, document: Any, *, indent: int | None = None) -> None:
        """Replace the file atomically with ``document`` as JSON (one line ending in a newline
        unless ``indent``)."""
        text = json.dumps(document, indent=indent, separators=None if indent else (",", ":"))
        self.replace((text + "\n").encode())

    def create(self, data: bytes) -> None:
        """Write ``data`` to a new file (0600); :class:`FileExistsError` when anything (a link
        included) is at the path already."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
        except FileExistsError:
            raise
        except OSError as exc:
            raise self._os_failure("create", exc) from None
        try:
            _write_synced(fd, data)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            raise self._os_failure("write", exc) from None
        fsync_directory(os.path.dirname(os.path.abspath(self.path)))

    # ----------------------------------------------------------------- locking

    def lock(
        self, *, wait: float | None, busy: str, busy_error: type[StateFileError] | None = None
    ) -> int | None:
        """Take an exclusive lock on this (lock) file, created 0600 and left in place; the
        returned descriptor holds it until closed (None without ``fcntl``: see
        :meth:`locked`). ``wait``: seconds to wait for another holder (None: do not wait).
        When the lock stays taken, raises ``busy_error`` (default ``error``) saying ``busy``."""
        if fcntl is None:  # pragma: no cover - Windows
            return None
        fd = self.open(os.O_RDWR | os.O_CREAT, tighten=True)
        deadline = None if wait is None else time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if deadline is None or time.monotonic() >= deadline:
                        raise (busy_error or self.error)(busy, path=self.path) from None
                    time.sleep(_POLL_SECONDS)
        except BaseException:
            os.close(fd)
            raise

    @contextlib.contextmanager
    def locked(self, *, wait: float | None, busy: str) -> Iterator[None]:
        """:meth:`lock` for the length of a block (and, without ``fcntl``, a thread lock)."""
        if fcntl is None:  # pragma: no cover - Windows
            with _THREAD_LOCKS_GUARD:
                thread_lock = _THREAD_LOCKS.setdefault(os.path.abspath(self.path), threading.Lock())
            with thread_lock:
                yield
            return
        fd = self.lock(wait=wait, busy=busy)
        try:
            yield
        finally:
            if fd is not None:
                os.close(fd)  # also releases the lock


def locked_beside(
    path: str | os.PathLike[str], *, what: str, wait: float, error: type[StateFileError] = StateFileError
) -> contextlib.AbstractContextManager[None]:
    """Hold ``<path>.lock`` (0600, left in place) for one read-modify-write of the state file at
    ``path`` (``what`` names it), waiting up to ``wait`` seconds for another process; when it
    stays taken, ``error`` says so, naming the file and the wait."""
    lock = StateFile(f"{os.fspath(path)}.lock", what=f"{what} lock", error=error)
    return lock.locked(
        wait=wait, busy=f"{what} {os.fspath(path)} stayed locked by another process for {wait:g} s"
    )
