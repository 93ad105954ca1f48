"""The cross-process step registry: TOTP replay safety that outlives one process.

A script run twice within one 30-second step, a resumed batch, or several worker processes
sharing one account must not send a step an earlier process already used: a strict server
rejects it (and counts the failure towards a lockout). :class:`FileStepRegistry` remembers the
last step per key in a small state file shared by every process of the user.

It is the default of every client: a code issued with no ``registry=`` (and outside
:func:`~mfa_common.replay_guard.using_step_registry`) goes through
:func:`default_step_registry`, the state file while it can be used. When it cannot (a read-only
home, a container without one) the client falls back to the in-process registry, logs one DEBUG
line saying so, and keeps working. Turn the file off with ``MFA_SDKS_STEP_STATE=0``, or give a
registry explicitly (``TotpCodeProvider(secret, registry=STEP_REGISTRY)``, or
``using_step_registry(STEP_REGISTRY)`` around a block). The command-line tools and journaled
batches (:func:`mfa_common.batch.run_batch` given a journal) use the file without a fallback:
there a state file that cannot be used is an error naming it.

The file (``totp-steps.json``) lives in ``$MFA_SDKS_STATE_DIR`` if set, else
``$XDG_STATE_HOME/mfa-sdks``, else ``~/.local/state/mfa-sdks``; the directory is created 0700,
the file 0600, and a link at either path, another user's file or one readable by others is
refused (see :mod:`mfa_common._files`). It holds no secret: each key
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
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from . import _constants as C
from ._files import StateFile, ensure_private_directory, locked_beside
from .errors import InvalidInputError, StateFileError
from .replay_guard import STEP_REGISTRY, StepRegistry

if TYPE_CHECKING:
    from .totp import Totp

__all__ = [
    "STATE_DIR_ENV",
    "STEP_STATE_ENV",
    "FileStepRegistry",
    "StepStateError",
    "default_state_dir",
    "default_step_registry",
    "shared_step_registry",
]

logger = logging.getLogger(C.LOGGER_NAME)

#: Environment variable naming the directory of the SDK's state files (overrides XDG).
STATE_DIR_ENV = "MFA_SDKS_STATE_DIR"
#: ``MFA_SDKS_STEP_STATE=0`` keeps the default registry in the process (no state file).
STEP_STATE_ENV = "MFA_SDKS_STEP_STATE"
_OFF = ("0", "false", "no", "off")
_T = TypeVar("_T")
STATE_FILE_NAME = "totp-steps.json"
_VERSION = 1
#: An entry is pruned once its step ended this many seconds before the newest claim.
RETENTION_SECONDS = 3600.0
DEFAULT_MAX_ENTRIES = 4096
#: A claim holds the lock for a read and a small write; waiting longer than this means another
#: process is stuck holding it: fail clearly rather than hang a login.
LOCK_TIMEOUT_SECONDS = 10.0


class StepStateError(StateFileError):
    """The step state file cannot be used (a link, not private, corrupt, its directory not
    writable): the message names the path and the fix."""


_WHAT = "the TOTP step state"
_DIRECTORY_FIX = f"set {STATE_DIR_ENV} to a directory you own"


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
            state, _ = self._read()
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
            state, fresh = self._read()
            if fresh:  # the key is only good for later calls if the file keeps it
                self._write(state)
            return _entry_key(bytes.fromhex(state["key"]), totp)

    def last_used(self, key: str) -> int | None:
        with self._locked():
            entry = self._read()[0]["steps"].get(key)
            return None if entry is None else int(entry[0])

    def reserve(self, key: str, step: int) -> bool:
        with self._locked():
            state, _ = self._read()
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
            state, _ = self._read()
            state["steps"] = {}
            self._write(state)

    def check(self) -> None:
        """Use the file once now, as a claim would (lock, read, write back), so that a file or
        directory this registry cannot use is refused before any login is spent on a code.

        Raises:
            StepStateError: The state file, its lock or its directory cannot be used (the
                message names the path and the fix).
        """
        with self._locked():
            state, _ = self._read()
            self._write(state)

    def __len__(self) -> int:
        """How many keys the file remembers."""
        with self._locked():
            return len(self._read()[0]["steps"])

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"FileStepRegistry({str(self.path)!r})"

    # -- file handling ---------------------------------------------------------------------

    @property
    def _file(self) -> StateFile:
        return StateFile(self.path, what=_WHAT, error=StepStateError, damaged="delete it to start afresh")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            ensure_private_directory(self.path.parent, what=_WHAT, fix=_DIRECTORY_FIX, error=StepStateError)
            with locked_beside(self.path, what=_WHAT, wait=LOCK_TIMEOUT_SECONDS, error=StepStateError):
                yield

    def _read(self) -> tuple[dict[str, Any], bool]:
        """The state, and whether it is new (no file yet: a new random key)."""
        file = self._file
        state = file.read_json(max_bytes=_MAX_FILE_BYTES)
        if state is None:
            return {"version": _VERSION, "key": secrets.token_hex(32), "steps": {}}, True
        if not isinstance(state, dict) or state.get("version") != _VERSION:
            raise file.unknown_format(state.get("version") if isinstance(state, dict) else None, _VERSION)
        key, steps = state.get("key"), state.get("steps")
        if not (isinstance(key, str) and len(key) == 64 and isinstance(steps, dict)):
            raise file.fail("is unusable (no key or no steps)")
        try:
            bytes.fromhex(state["key"])
        except ValueError:
            raise file.fail("is unusable (a bad key)") from None
        for entry in state["steps"].values():
            if not (
                isinstance(entry, list)
                and len(entry) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in entry)
                and entry[1] >= 1
            ):
                raise file.fail("is unusable (a malformed entry)")
        return state, False

    def _prune(self, steps: dict[str, list[int]], *, newest_end: int) -> None:
        horizon = newest_end - RETENTION_SECONDS
        for key in [k for k, (step, period) in steps.items() if (step + 1) * period < horizon]:
            del steps[key]
        if len(steps) > self.max_entries:
            by_end = sorted(steps, key=lambda k: (steps[k][0] + 1) * steps[k][1])
            for key in by_end[: len(steps) - self.max_entries]:
                del steps[key]

    def _write(self, state: dict[str, Any]) -> None:
        self._file.replace_json(state)


# A bound on what is read back: max entries of ~60 bytes, with room to spare.
_MAX_FILE_BYTES = 4 * 1024 * 1024


def _entry_key(file_key: bytes, totp: Totp) -> str:
    digest = hmac.new(file_key, b"totp-step\0" + totp.secret.reveal().encode("ascii"), hashlib.sha256)
    return f"{digest.hexdigest()[:32]}/{totp.period}"


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


class _SharedOrProcessRegistry(StepRegistry):
    """The default registry: the shared state file while it can be used, else (for the rest of
    the process, after one DEBUG line) the process registry. Every step claimed in the file is
    also recorded in the process registry, so a fallback still knows this process's own steps."""

    blocking: ClassVar[bool] = True

    def __init__(self, shared: FileStepRegistry, local: StepRegistry) -> None:
        super().__init__()
        self._shared: FileStepRegistry | None = shared
        self._local = local
        self._switch = threading.Lock()

    def _fall_back(self, exc: StepStateError) -> None:
        with self._switch:
            if self._shared is None:
                return
            self._shared = None
        # The message names the path and the reason; it holds no secret.
        logger.debug("%s; TOTP steps are remembered in this process only", exc)

    def _either(self, on_file: Callable[[FileStepRegistry], _T], in_process: Callable[[], _T]) -> _T:
        """``on_file(file registry)`` while the file can be used, else ``in_process()``."""
        shared = self._shared
        if shared is not None:
            try:
                return on_file(shared)
            except StepStateError as exc:
                self._fall_back(exc)
        return in_process()

    def claim(self, totp: Totp, step: int) -> int | None:
        def on_file(shared: FileStepRegistry) -> int | None:
            last = shared.claim(totp, step)
            if last is None:
                self._local.reserve(self._local.key_for(totp), step)
            return last

        return self._either(on_file, lambda: self._local.claim(totp, step))

    def key_for(self, totp: Totp) -> str:
        return self._either(lambda shared: shared.key_for(totp), lambda: self._local.key_for(totp))

    def last_used(self, key: str) -> int | None:
        return self._either(lambda shared: shared.last_used(key), lambda: self._local.last_used(key))

    def reserve(self, key: str, step: int) -> bool:
        return self._either(lambda shared: shared.reserve(key, step), lambda: self._local.reserve(key, step))

    def clear(self) -> None:
        shared = self._shared
        if shared is not None:
            with contextlib.suppress(StepStateError):
                shared.clear()
        self._local.clear()

    def __repr__(self) -> str:
        shared = self._shared
        where = str(shared.path) if shared is not None else "this process only"
        return f"{type(self).__name__}({where!r})"


_DEFAULTS: dict[Path, _SharedOrProcessRegistry] = {}


def default_step_registry() -> StepRegistry:
    """The registry of codes issued with none chosen (see the module docstring): the state file
    of the user's state directory (resolved now), falling back to the process registry when it
    cannot be used; :data:`~mfa_common.replay_guard.STEP_REGISTRY` itself when
    ``MFA_SDKS_STEP_STATE=0``."""
    if os.environ.get(STEP_STATE_ENV, "").strip().lower() in _OFF:
        return STEP_REGISTRY
    path = (default_state_dir() / STATE_FILE_NAME).absolute()
    with _SHARED_LOCK:
        registry = _DEFAULTS.get(path)
    if registry is None:
        shared = shared_step_registry(path)
        with _SHARED_LOCK:
            registry = _DEFAULTS.setdefault(path, _SharedOrProcessRegistry(shared, STEP_REGISTRY))
    return registry
