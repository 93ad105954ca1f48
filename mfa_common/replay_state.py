"""The cross-process step registry: TOTP replay safety that outlives one process.

A resumed batch, or a second command run within the same 30-second step, must not send the
step an earlier process already used: a strict server rejects it (and counts the failure
towards a lockout). :class:`FileStepRegistry` remembers the last step per key in a small state
file shared by every process of the user::

    from mfa_common.replay_state import shared_step_registry
    from mfa_common.replay_guard import using_step_registry

    with using_step_registry(shared_step_registry()):
        ...  # every code issued here (without an explicit registry=) is recorded in the file

or ``TotpCodeProvider(secret, registry=shared_step_registry())`` for one provider. Library
users opt in this way; :func:`mfa_common.batch.run_batch` uses it by default when it is given
a journal.

The file (``totp-steps.json``) lives in ``$MFA_SDKS_STATE_DIR`` if set, else
``$XDG_STATE_HOME/mfa-sdks``, else ``~/.local/state/mfa-sdks``; the directory is created 0700,
the file 0600, and files readable by group or others are refused. It holds no secret: each key
is an HMAC-SHA256 of the secret (and its period) under a random key kept in the same file, so
the file neither reveals a secret nor matches across machines. Entries whose step ended more
than an hour before the newest write are pruned, and at most ``max_entries`` are kept.

Every claim holds an exclusive lock on ``totp-steps.json.lock`` (``fcntl.flock``, POSIX) for
its read-modify-write, and the file is replaced atomically (temp file, fsync, rename), so
concurrent processes each get a distinct step and a kill never leaves a torn file. Without
``fcntl`` (Windows) the registry serialises the threads of one process only: processes running
at the same moment may then reuse a step, while successive ones are still protected.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ._files import fsync_directory, private_file_problem
from .errors import InvalidInputError, MfaSdkError
from .replay_guard import StepRegistry
from .totp import Totp

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: see the module docstring
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "STATE_DIR_ENV",
    "FileStepRegistry",
    "StepStateError",
    "default_state_dir",
    "shared_step_registry",
]

#: Environment variable naming the directory of the SDK's state files (overrides XDG).
STATE_DIR_ENV = "MFA_SDKS_STATE_DIR"
STATE_FILE_NAME = "totp-steps.json"
_VERSION = 1
#: An entry is pruned once its step ended this many seconds before the newest claim.
RETENTION_SECONDS = 3600.0
DEFAULT_MAX_ENTRIES = 4096
#: A claim holds the lock for a read and a small write; waiting longer than this means another
#: process is stuck holding it: fail clearly rather than hang a login.
LOCK_TIMEOUT_SECONDS = 10.0


class StepStateError(MfaSdkError, OSError):
    """The step state file cannot be used (unreadable, not private, corrupt): fix or delete it."""


def default_state_dir() -> Path:
    """``$MFA_SDKS_STATE_DIR``, else ``$XDG_STATE_HOME/mfa-sdks``, else ``~/.local/state/mfa-sdks``."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return Path(override)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "mfa-sdks"


class FileStepRegistry(StepRegistry):
    """A :class:`~mfa_common.replay_guard.StepRegistry` kept in an owner-only, locked state file.

    ``path``: the state file (default: ``default_state_dir() / "totp-steps.json"``, resolved
    when the registry is made). Claims do file I/O, so :func:`~mfa_common.replay_guard.next_totp`
    runs them in a worker thread.
    """

    blocking: ClassVar[bool] = True

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        super().__init__()
        if max_entries < 1:
            raise InvalidInputError("max_entries must be at least 1")
        self.path = Path(path) if path is not None else default_state_dir() / STATE_FILE_NAME
        self.max_entries = max_entries
        self._thread_lock = threading.Lock()

    # -- the StepRegistry interface --------------------------------------------------------

    def claim(self, totp: Totp, step: int) -> int | None:
        with self._locked():
            state = self._read()
            key = _entry_key(bytes.fromhex(state["key"]), totp)
            steps: dict[str, list[int]] = state["steps"]
            entry = steps.get(key)
            if entry is not None and step <= entry[0]:
                return entry[0]
            steps[key] = [step, totp.period]
            self._prune(steps, newest_end=(step + 1) * totp.period)
            self._write(state)
            return None

    def key_for(self, totp: Totp) -> str:
        with self._locked():
            return _entry_key(bytes.fromhex(self._read()["key"]), totp)

    def last_used(self, key: str) -> int | None:
        with self._locked():
            entry = self._read()["steps"].get(key)
            return None if entry is None else int(entry[0])

    def reserve(self, key: str, step: int) -> bool:
        with self._locked():
            state = self._read()
            entry = state["steps"].get(key)
            if entry is not None and step <= entry[0]:
                return False
            period = int(key.rsplit("/", 1)[1])
            state["steps"][key] = [step, period]
            self._prune(state["steps"], newest_end=(step + 1) * period)
            self._write(state)
            return True

    def clear(self) -> None:
        with self._locked():
            state = self._read()
            state["steps"] = {}
            self._write(state)

    def __len__(self) -> int:
        """How many keys the file remembers."""
        with self._locked():
            return len(self._read()["steps"])

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"FileStepRegistry({str(self.path)!r})"

    # -- file handling ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            directory = self.path.parent
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            except OSError as exc:
                raise StepStateError(
                    f"cannot open the TOTP step state in {directory}: {exc.strerror}"
                ) from None
            try:
                _flock_within(fd, LOCK_TIMEOUT_SECONDS, self.path)
                yield
            finally:
                os.close(fd)  # also releases the lock

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as handle:
                _check_private(self.path, os.fstat(handle.fileno()))
                raw = handle.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return {"version": _VERSION, "key": secrets.token_hex(32), "steps": {}}
        except StepStateError:
            raise
        except OSError as exc:
            raise StepStateError(f"cannot read the TOTP step state {self.path}: {exc.strerror}") from None
        if len(raw) > _MAX_FILE_BYTES:
            raise self._corrupt("too large")
        try:
            state = json.loads(raw)
        except ValueError:
            raise self._corrupt("not JSON") from None
        if not (
            isinstance(state, dict)
            and state.get("version") == _VERSION
            and isinstance(state.get("key"), str)
            and len(state["key"]) == 64
            and isinstance(state.get("steps"), dict)
        ):
            raise self._corrupt(f"not a version {_VERSION} step state")
        try:
            bytes.fromhex(state["key"])
        except ValueError:
            raise self._corrupt("bad key") from None
        for entry in state["steps"].values():
            if not (
                isinstance(entry, list)
                and len(entry) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in entry)
                and entry[1] >= 1
            ):
                raise self._corrupt("a malformed entry")
        return state

    def _corrupt(self, why: str) -> StepStateError:
        return StepStateError(
            f"the TOTP step state {self.path} is unusable ({why}); delete it to start afresh"
        )

    def _prune(self, steps: dict[str, list[int]], *, newest_end: int) -> None:
        horizon = newest_end - RETENTION_SECONDS
        for key in [k for k, (step, period) in steps.items() if (step + 1) * period < horizon]:
            del steps[key]
        if len(steps) > self.max_entries:
            by_end = sorted(steps, key=lambda k: (steps[k][0] + 1) * steps[k][1])
            for key in by_end[: len(steps) - self.max_entries]:
                del steps[key]

    def _write(self, state: dict[str, Any]) -> None:
        directory = str(self.path.parent)
        tmp = f"{self.path}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(json.dumps(state, separators=(",", ":")).encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StepStateError(f"cannot write the TOTP step state {self.path}: {exc.strerror}") from None
        fsync_directory(directory)


# A bound on what is read back: max entries of ~60 bytes, with room to spare.
_MAX_FILE_BYTES = 4 * 1024 * 1024


def _flock_within(fd: int, timeout: float, path: Path) -> None:
    if fcntl is None:  # pragma: no cover - Windows: see the module docstring
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StepStateError(
                    f"the TOTP step state {path} stayed locked by another process for {timeout:g} s"
                ) from None
            time.sleep(0.005)


def _entry_key(file_key: bytes, totp: Totp) -> str:
    digest = hmac.new(file_key, b"totp-step\0" + totp.secret.reveal().encode("ascii"), hashlib.sha256)
    return f"{digest.hexdigest()[:32]}/{totp.period}"


def _check_private(path: Path, st: os.stat_result) -> None:
    problem = private_file_problem(st)
    if problem is not None:
        raise StepStateError(f"the TOTP step state {path} {problem}: make it yours and chmod 600 {path}")


_SHARED: dict[Path, FileStepRegistry] = {}
_SHARED_LOCK = threading.Lock()


def shared_step_registry(path: str | os.PathLike[str] | None = None) -> FileStepRegistry:
    """The cross-process step registry for ``path`` (default: the user's state directory,
    resolved now), one instance per path in this process. This is what command-line tools and
    journaled batch runs use so that a second command in the same step waits for the next."""
    resolved = Path(path) if path is not None else default_state_dir() / STATE_FILE_NAME
    resolved = resolved.absolute()
    with _SHARED_LOCK:
        registry = _SHARED.get(resolved)
        if registry is None:
            registry = _SHARED[resolved] = FileStepRegistry(resolved)
        return registry
