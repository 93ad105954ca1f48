"""Recovery (backup) codes: per-provider normalisation and a single-use store.

Each failed code costs a lockout attempt and each accepted code is gone, so codes are
normalised to the provider's canonical form before sending, and a store hands every code out
at most once, even across concurrent tasks, threads and process restarts.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, Literal, NoReturn, TypeVar

from ._files import StateFile, locked_beside
from .errors import InvalidInputError, InvalidRecoveryCodeError, RecoveryCodesExhaustedError, StateFileError
from .secret import Secret, reveal

__all__ = [
    "CodeState",
    "RecoveryCodeFileError",
    "RecoveryCodeFormat",
    "RecoveryCodeReservation",
    "RecoveryCodeStore",
    "RecoveryCodeStoreMismatchError",
    "classify_code",
    "normalize_recovery_code",
]

_MAX_INPUT = 256
_SEPARATORS = str.maketrans("", "", "-_.")
_TOTP_SHAPE = re.compile(r"[0-9]{6,8}")
_FILE_VERSION = 1
# A bound on what is read back: thousands of codes fit with room to spare.
_MAX_FILE_BYTES = 1024 * 1024
# How long a store waits (seconds) for another process's read-modify-write of the file.
_LOCK_WAIT_SECONDS = 10.0
_R = TypeVar("_R")


class RecoveryCodeFileError(StateFileError, InvalidInputError):
    """A recovery-code file cannot be used: a link at its path, another user's file or one open
    to others, damaged, or of a version this one does not know. The message names the path and
    the fix; the file is left as it was."""


def _state_file(path: str) -> StateFile:
    return StateFile(path, what="the recovery-code file", error=RecoveryCodeFileError)


class RecoveryCodeStoreMismatchError(InvalidInputError):
    """A store file already exists at the path and holds other codes (or another format):
    reopen it with :meth:`RecoveryCodeStore.load`, or pass ``replace=True`` to start over."""


async def _off_loop(call: Callable[[], _R]) -> _R:
    """Run a blocking store operation in a worker thread; a cancellation waits for it to end
    (a half-done file write must not be abandoned) and is delivered afterwards."""
    import anyio.to_thread  # loaded on first use, not by an import of the SDK

    with anyio.CancelScope(shield=True):
        result = await anyio.to_thread.run_sync(call)
    return result


class RecoveryCodeFormat(Enum):
    """Recovery-code conventions of known providers (see ``mfa-facts`` §4)."""

    SHELLHUB = "shellhub"
    """16 upper-case base32 characters."""
    GITHUB = "github"
    """``xxxxx-xxxxx``, lower-case hex."""
    NUMERIC8 = "numeric8"
    """8 digits (Google backup codes)."""
    HEX16 = "hex16"
    """16 lower-case hex (devise-two-factor: GitLab, Mastodon)."""
    DJANGO_OTP = "django_otp"
    """8 lower-case base32 (django-otp static tokens)."""
    GENERIC = "generic"
    """Unknown provider: only NFKC and whitespace removal, 4 to 64 printable characters."""


_PATTERNS: dict[RecoveryCodeFormat, re.Pattern[str]] = {
    RecoveryCodeFormat.SHELLHUB: re.compile(r"[A-Z2-7]{16}"),
    RecoveryCodeFormat.GITHUB: re.compile(r"[0-9a-f]{5}-[0-9a-f]{5}"),
    RecoveryCodeFormat.NUMERIC8: re.compile(r"[0-9]{8}"),
    RecoveryCodeFormat.HEX16: re.compile(r"[0-9a-f]{16}"),
    RecoveryCodeFormat.DJANGO_OTP: re.compile(r"[a-z2-7]{8}"),
}


def _reject(fmt: RecoveryCodeFormat) -> NoReturn:
    raise InvalidRecoveryCodeError(f"the recovery code does not match the {fmt.value} format")


def normalize_recovery_code(raw: str | Secret[str], fmt: RecoveryCodeFormat) -> Secret[str]:
    """The code in ``fmt``'s canonical form, or :class:`InvalidRecoveryCodeError`.

    NFKC, then whitespace (and, except for GENERIC, ``-``, ``_`` and ``.``) is removed, case is
    folded to the provider's case and the provider's separator is put back.
    """
    text = reveal(raw)
    if not isinstance(text, str) or len(text) > _MAX_INPUT:
        _reject(fmt)
    text = "".join(unicodedata.normalize("NFKC", text).split())
    if fmt is RecoveryCodeFormat.GENERIC:
        if not 4 <= len(text) <= 64 or not text.isprintable():
            _reject(fmt)
        return Secret(text)
    text = text.translate(_SEPARATORS)
    text = text.upper() if fmt is RecoveryCodeFormat.SHELLHUB else text.lower()
    if fmt is RecoveryCodeFormat.GITHUB and len(text) == 10:
        text = f"{text[:5]}-{text[5:]}"
    if not _PATTERNS[fmt].fullmatch(text):
        _reject(fmt)
    return Secret(text)


def _matches(text: str, fmt: RecoveryCodeFormat) -> bool:
    try:
        normalize_recovery_code(text, fmt)
    except InvalidRecoveryCodeError:
        return False
    return True


def classify_code(
    raw: str, *, recovery_format: RecoveryCodeFormat | None = None
) -> Literal["totp", "recovery", "unknown"]:
    """Whether user input looks like a TOTP code or a recovery code.

    Without ``recovery_format``: 6 to 8 digits is ``"totp"``, a shape of any specific provider
    is ``"recovery"``. Eight digits are ambiguous (Google's NUMERIC8, and django-otp codes made
    only of 2-7), so when the caller knows the provider's format that format wins: a code that
    matches it is ``"recovery"``, and only that format counts as recovery.
    """
    text = reveal(raw)
    if not isinstance(text, str) or len(text) > _MAX_INPUT:
        return "unknown"
    compact = "".join(unicodedata.normalize("NFKC", text).split())
    if (
        recovery_format is not None
        and recovery_format is not RecoveryCodeFormat.GENERIC
        and _matches(compact, recovery_format)
    ):
        return "recovery"
    if _TOTP_SHAPE.fullmatch(compact):
        return "totp"
    if recovery_format is not None:
        return "recovery" if _matches(compact, recovery_format) else "unknown"
    if any(_matches(compact, fmt) for fmt in _PATTERNS):
        return "recovery"
    return "unknown"


class CodeState(str, Enum):
    """Lifecycle: unused → reserved → used | rejected | uncertain, or reserved → unused."""

    UNUSED = "unused"
    RESERVED = "reserved"
    USED = "used"
    REJECTED = "rejected"
    UNCERTAIN = "uncertain"

    def __str__(self) -> str:
        return self.value


class RecoveryCodeReservation:
    """One code taken out of a store; settle it exactly once.

    ``mark_used`` (the server accepted it), ``mark_rejected`` (the server said invalid),
    ``mark_uncertain`` (sent, outcome unknown: never handed out again automatically) or
    ``release`` (the server never saw it: back to unused).
    """

    __slots__ = ("_index", "_store")

    def __init__(self, store: RecoveryCodeStore, index: int) -> None:
        self._store = store
        self._index = index

    @property
    def index(self) -> int:
        """Position in the store; safe to log."""
        return self._index

    @property
    def code(self) -> Secret[str]:
        return self._store._code(self._index)

    @property
    def state(self) -> CodeState:
        return self._store._state(self._index)

    def mark_used(self) -> None:
        self._store._settle(self._index, CodeState.USED)

    def mark_rejected(self) -> None:
        self._store._settle(self._index, CodeState.REJECTED)

    def mark_uncertain(self) -> None:
        self._store._settle(self._index, CodeState.UNCERTAIN)

    def release(self) -> None:
        self._store._settle(self._index, CodeState.UNUSED)

    # Async forms: the same transitions with the file write in a worker thread.

    async def amark_used(self) -> None:
        await _off_loop(self.mark_used)

    async def amark_rejected(self) -> None:
        await _off_loop(self.mark_rejected)

    async def amark_uncertain(self) -> None:
        await _off_loop(self.mark_uncertain)

    async def arelease(self) -> None:
        await _off_loop(self.release)

    def __repr__(self) -> str:
        return f"RecoveryCodeReservation(index={self._index}, state={self.state.value!r})"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("recovery-code reservations cannot be pickled")


class RecoveryCodeStore:
    """Single-use recovery codes with atomic reservation and optional crash-safe persistence.

    ``reserve`` is synchronous and guarded by a thread lock, so any number of asyncio or Trio
    tasks and threads can share one store. With ``path``, every state change rewrites the file
    atomically (0600 temp file, fsync, rename) before it takes effect; from async code use the
    ``a``-prefixed forms (:meth:`acreate`, :meth:`aload`, :meth:`areserve`, and the
    reservation's ``amark_used`` …), which do that file I/O in a worker thread, off the event
    loop. Processes sharing one file take turns on ``<path>.lock`` (0600) for each change and
    read the file first, so no two of them hand out one code; :attr:`remaining` and
    :meth:`counts` are this store's view as of its last change.

    A ``path`` that already holds a store is never silently reset: if it holds the same codes
    (in any order, same format) their recorded states are kept (a spent code stays spent, a
    ``reserved`` one comes back ``uncertain`` as in :meth:`load`).

    Args:
        codes: The codes as the server issued them (normalised to ``format``; duplicates
            dropped).
        format: Their shape (``GENERIC``, or ``SHELLHUB``: 16 upper-case base32).
        path: Persist every state change to this owner-only file (None: in memory only).
        replace: Start the file at ``path`` over with these codes (the server issued new ones).

    Raises:
        RecoveryCodeStoreMismatchError: ``path`` holds other codes and ``replace`` is False.
        RecoveryCodeFileError: The file at ``path`` cannot be used (a link, another user's, open
            to others, of another version).
    """

    __slots__ = ("_codes", "_format", "_held", "_lock", "_path", "_states")

    def __init__(
        self,
        codes: Iterable[str | Secret[str]],
        *,
        format: RecoveryCodeFormat = RecoveryCodeFormat.GENERIC,
        path: str | os.PathLike[str] | None = None,
        replace: bool = False,
    ) -> None:
        self._format = format
        self._lock = threading.Lock()
        self._held: set[int] = set()  # reserved by this store, not yet settled
        self._path: str | None = os.fspath(path) if path is not None else None
        self._codes: list[Secret[str]] = []
        self._states: list[CodeState] = []
        seen: set[str] = set()
        for raw in codes:
            code = normalize_recovery_code(raw, format)
            if code.reveal() in seen:
                continue
            seen.add(code.reveal())
            self._codes.append(code)
            self._states.append(CodeState.UNUSED)
        if self._path is None:
            return
        if not replace and os.path.lexists(self._path):
            existing = RecoveryCodeStore.load(self._path)
            if existing._format is not format or {c.reveal() for c in existing._codes} != seen:
                raise RecoveryCodeStoreMismatchError(
                    f"{self._path} already holds a store of other recovery codes; reopen it with "
                    "RecoveryCodeStore.load(), or pass replace=True to start over with these codes"
                )
            self._codes, self._states = existing._codes, existing._states
            return  # load() already persisted any recovered state
        with self._lock, _file_lock(self._path):
            self._persist()

    @classmethod
    async def acreate(
        cls,
        codes: Iterable[str | Secret[str]],
        *,
        format: RecoveryCodeFormat = RecoveryCodeFormat.GENERIC,
        path: str | os.PathLike[str] | None = None,
        replace: bool = False,
    ) -> RecoveryCodeStore:
        """The constructor, with its file I/O in a worker thread.

        Args:
            codes: The codes as the server issued them (normalised to ``format``; duplicates
                dropped).
            format: Their shape (``GENERIC``, or ``SHELLHUB``: 16 upper-case base32).
            path: Persist every state change to this owner-only file (None: in memory only).
            replace: Start the file at ``path`` over with these codes (the server issued new ones).
        """
        codes = list(codes)
        return await _off_loop(functools.partial(cls, codes, format=format, path=path, replace=replace))

    @classmethod
    async def aload(
        cls, path: str | os.PathLike[str], *, format: RecoveryCodeFormat | None = None
    ) -> RecoveryCodeStore:
        """:meth:`load`, with its file I/O in a worker thread.

        Args:
            path: The store's file.
            format: The format the file must hold (None: whichever it holds).
        """
        return await _off_loop(functools.partial(cls.load, path, format=format))

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        format: RecoveryCodeFormat | None = None,
    ) -> RecoveryCodeStore:
        """Reopen a persisted store.

        A code left ``reserved`` (the process died while using it) comes back ``uncertain``.

        Args:
            path: The store's file.
            format: The format the file must hold (None: whichever it holds).

        Raises:
            RecoveryCodeFileError: A link at ``path``, another user's file, a file readable by
                group or others, or one of another version.
            FileNotFoundError: No file at ``path``.
        """
        file_path = os.fspath(path)
        store = cls.__new__(cls)
        store._lock = threading.Lock()
        store._held = set()
        store._path = file_path
        with store._lock, _file_lock(file_path):
            stored = _read_store(file_path)
            if stored is None:
                raise FileNotFoundError(errno.ENOENT, "no recovery-code file", file_path)
            store._format, store._codes, states = stored
            if format is not None and format is not store._format:
                raise InvalidInputError(f"{file_path}: holds {store._format.value} codes, not {format.value}")
            # A code left reserved: its process died while using it, or is using it now; this
            # store must never hand it out, and cannot tell whether the server took it.
            store._states = [CodeState.UNCERTAIN if s is CodeState.RESERVED else s for s in states]
            if store._states != states:
                store._persist()
        return store

    @property
    def format(self) -> RecoveryCodeFormat:
        """The shape of the codes."""
        return self._format

    @property
    def path(self) -> str | None:
        """The file the store persists to (None: in memory only)."""
        return self._path

    @property
    def remaining(self) -> int:
        """How many codes are still unused."""
        with self._lock:
            return self._states.count(CodeState.UNUSED)

    def counts(self) -> dict[str, int]:
        """Codes per state, every state present."""
        with self._lock:
            return {state.value: self._states.count(state) for state in CodeState}

    def __len__(self) -> int:
        return len(self._codes)

    def reserve(self) -> RecoveryCodeReservation:
        """Take the first unused code; raises :class:`RecoveryCodesExhaustedError` if none."""
        with self._lock, _file_lock(self._path):
            self._merge_from_file()
            try:
                index = self._states.index(CodeState.UNUSED)
            except ValueError:
                raise RecoveryCodesExhaustedError(
                    f"no unused recovery code left ({len(self._codes)} in the store)"
                ) from None
            self._transition(index, CodeState.RESERVED)
            self._held.add(index)
        return RecoveryCodeReservation(self, index)

    async def areserve(self) -> RecoveryCodeReservation:
        """:meth:`reserve` with the file write in a worker thread. A cancellation arriving
        meanwhile puts the code back (it was never handed out) and then propagates."""
        if self._path is None:
            return self.reserve()  # memory only: nothing blocks
        import anyio.lowlevel

        reservation = await _off_loop(self.reserve)
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            await _off_loop(reservation.release)
            raise
        return reservation

    def _code(self, index: int) -> Secret[str]:
        return self._codes[index]

    def _state(self, index: int) -> CodeState:
        with self._lock:
            return self._states[index]

    def _settle(self, index: int, new_state: CodeState) -> None:
        with self._lock, _file_lock(self._path):
            self._merge_from_file()
            current = self._states[index]
            if index not in self._held:
                raise RuntimeError(f"recovery code {index} was already settled (state {current.value})")
            self._transition(index, new_state)
            self._held.discard(index)

    def _transition(self, index: int, new_state: CodeState) -> None:
        """Change one state and persist it; the change is undone if persisting fails."""
        previous = self._states[index]
        self._states[index] = new_state
        if self._path is None:
            return
        try:
            self._persist()
        except BaseException:
            self._states[index] = previous
            raise

    def _merge_from_file(self) -> None:
        """Take in what other processes sharing the file recorded (the caller holds the file's
        lock, so the file is current): the file is right about every code but those this store
        has reserved and not yet settled."""
        if self._path is None:
            return
        stored = _read_store(self._path)
        if stored is None:
            return  # removed under us: the next write puts it back
        stored_format, codes, states = stored
        if stored_format is not self._format or [c.reveal() for c in codes] != [
            c.reveal() for c in self._codes
        ]:
            raise RecoveryCodeStoreMismatchError(
                f"{self._path} now holds other recovery codes (saved by another process): "
                "reopen it with RecoveryCodeStore.load()"
            )
        for index, state in enumerate(states):
            if index not in self._held:
                self._states[index] = state

    def _persist(self) -> None:
        assert self._path is not None
        document = {
            "version": _FILE_VERSION,
            "format": self._format.value,
            "codes": [
                {"code": code.reveal(), "state": state.value}
                for code, state in zip(self._codes, self._states, strict=True)
            ],
        }
        _write_private_json(self._path, document)

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={count}" for name, count in self.counts().items())
        return f"RecoveryCodeStore(format={self._format.value!r}, {counts})"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("recovery-code stores cannot be pickled")


def _file_lock(path: str | None) -> contextlib.AbstractContextManager[None]:
    """Processes sharing a store file take turns on ``<path>.lock`` (0600, left in place) for
    each read-modify-write, so no two of them hand out one code (nothing for a memory store)."""
    if path is None:
        return contextlib.nullcontext()
    return locked_beside(
        path, what="the recovery-code file", wait=_LOCK_WAIT_SECONDS, error=RecoveryCodeFileError
    )


def _read_store(path: str) -> tuple[RecoveryCodeFormat, list[Secret[str]], list[CodeState]] | None:
    """The format, codes and states a store file holds (None: no file)."""
    file = _state_file(path)
    data = file.read_json(max_bytes=_MAX_FILE_BYTES)
    if data is None:
        return None
    if not isinstance(data, dict) or data.get("version") != _FILE_VERSION:
        raise file.unknown_format(data.get("version") if isinstance(data, dict) else None, _FILE_VERSION)
    try:
        stored_format = RecoveryCodeFormat(data.get("format"))
    except ValueError:
        raise InvalidInputError(f"{path}: unknown recovery-code format") from None
    entries = data.get("codes")
    if not isinstance(entries, list):
        raise InvalidInputError(f"{path}: 'codes' must be a list")
    codes: list[Secret[str]] = []
    states: list[CodeState] = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("code"), str):
            raise InvalidInputError(f"{path}: entry {position} is malformed")
        try:
            states.append(CodeState(entry.get("state")))
        except ValueError:
            raise InvalidInputError(f"{path}: entry {position} has an unknown state") from None
        codes.append(normalize_recovery_code(entry["code"], stored_format))
    return stored_format, codes, states


def _write_private_json(path: str, document: Any) -> None:
    """Replace the store file atomically (the one place a store writes)."""
    _state_file(path).replace_json(document, indent=1)
