"""Saved sessions: ``auth login`` keeps the session (or JWT, or API key) so later commands reuse it.

Quatrix allows about 15 logins per 15 minutes, and every login with a typed code costs the person
a trip to their phone: a tool that logs in for every command soon locks itself out.

Where: the OS keyring when the ``keyring`` package imports (and ``MFA_SDKS_KEYRING`` is not
``0``), else an owner-only (0600) JSON file, ``$XDG_STATE_HOME/<tool>/credentials.json``, in an
owner-only directory. The file always holds the index (URL, kind, user, expiry; no secret when
the keyring holds it). It is a state file (:mod:`mfa_common._files`): a link at its path,
another user's file, one others can read, a damaged one or one of a format this version does
not know is refused, named, and never overwritten. Each change is a read-modify-write under a
lock (``credentials.json.lock``), so processes saving sessions at the same moment lose none.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from .._files import StateFile, locked_beside
from ..secret import Secret
from .settings import ensure_state_dir

__all__ = ["CredentialKind", "CredentialStore", "SavedCredential", "keyring_backend"]

CredentialKind = Literal["session", "jwt", "api_key"]

_FILE_NAME = "credentials.json"
_FORMAT = 1
_WHAT = "the saved sessions"
# Sessions of a few servers: far below this.
_MAX_FILE_BYTES = 4 * 1024 * 1024
#: A save waits this long for another process's save to finish (each takes milliseconds).
LOCK_WAIT_SECONDS = 10.0


@attrs.frozen
class SavedCredential:
    """One saved credential for ``url``. ``secret`` is the session id, JWT or API key;
    ``expires_at`` (Unix seconds, None: no expiry known) is when it stops being usable;
    ``idle_timeout`` (seconds), for sessions that die when unused, moves it on at each use."""

    url: str
    kind: CredentialKind
    user: str
    secret: Secret[str] = attrs.field(repr=False)
    created_at: float
    expires_at: float | None = None
    idle_timeout: float | None = None

    def expired(self, now: float) -> bool:
        """Whether it can no longer be used at ``now``."""
        return self.expires_at is not None and now >= self.expires_at

    def used_at(self, now: float) -> SavedCredential:
        """The same credential after a use at ``now`` (an idle timeout starts again)."""
        if self.idle_timeout is None:
            return self
        return attrs.evolve(self, expires_at=now + self.idle_timeout)


def keyring_backend() -> Any | None:
    """The ``keyring`` module when it imports and is not turned off, else None."""
    if os.environ.get("MFA_SDKS_KEYRING", "").strip() == "0":
        return None
    try:
        import keyring  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return keyring


class CredentialStore:
    """The saved credentials of one tool (see the module docstring)."""

    def __init__(self, tool: str, directory: Path, *, keyring: Any | None = None) -> None:
        self.tool = tool
        self.directory = directory
        self.path = directory / _FILE_NAME
        self.keyring = keyring

    @property
    def location(self) -> str:
        """Where the secrets are kept, for messages."""
        return "the OS keyring" if self.keyring is not None else str(self.path)

    # -- the index file ------------------------------------------------------------------------

    def _file(self) -> StateFile:
        return StateFile(
            self.path,
            what=_WHAT,
            damaged="move it away and run auth login again",
            exposed="remove it and run auth login again (others could read the sessions in it)",
        )

    def _read(self) -> dict[str, dict[str, Any]]:
        file = self._file()
        data = file.read_json(max_bytes=_MAX_FILE_BYTES)
        if data is None:
            return {}
        if not isinstance(data, dict) or "format" not in data:
            raise file.fail("is not a saved-sessions file")
        if data["format"] != _FORMAT:
            raise file.unknown_format(data["format"], _FORMAT)
        entries = data.get("credentials")
        if not isinstance(entries, dict):
            raise file.fail("is damaged (it lists no sessions)")
        return {k: v for k, v in entries.items() if isinstance(v, dict)}

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        document = {"format": _FORMAT, "credentials": entries}
        self._file().replace(json.dumps(document, indent=2, sort_keys=True).encode())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The directory made (0700) and the store locked for a read-modify-write."""
        ensure_state_dir(self.directory)
        with locked_beside(self.path, what=_WHAT, wait=LOCK_WAIT_SECONDS):
            yield

    def check(self) -> None:
        """Make sure a session can be saved here (the directory, the lock, the file readable)
        before a login spends a code on one; a :class:`~mfa_common.errors.StateFileError`
        names what is wrong. Nothing is written."""
        with self._locked():
            self._read()

    # -- the public operations -----------------------------------------------------------------

    def get(self, url: str, *, now: float) -> SavedCredential | None:
        """The saved credential for ``url``, or None (an expired one is forgotten)."""
        entry = self._read().get(url)
        if entry is None:
            return None
        credential = self._load(url, entry)
        if credential is None or credential.expired(now):
            self.remove(url)
            return None
        return credential

    def urls(self) -> list[str]:
        """Every URL with a saved credential (expired ones included until they are read)."""
        return sorted(self._read())

    def put(self, credential: SavedCredential) -> None:
        """Save ``credential`` (replacing any for its URL)."""
        entry: dict[str, Any] = {
            "kind": credential.kind,
            "user": credential.user,
            "created_at": credential.created_at,
            "expires_at": credential.expires_at,
            "idle_timeout": credential.idle_timeout,
        }
        if self.keyring is not None:
            self.keyring.set_password(self.tool, credential.url, credential.secret.reveal())
            entry["secret_in"] = "keyring"
        else:
            entry["secret"] = credential.secret.reveal()
        with self._locked():
            entries = self._read()
            entries[credential.url] = entry
            self._write(entries)

    def remove(self, url: str) -> bool:
        """Forget the credential for ``url``; whether there was one."""
        with self._locked():
            entries = self._read()
            entry = entries.pop(url, None)
            if entry is None:
                return False
            if entry.get("secret_in") == "keyring" and self.keyring is not None:
                with contextlib.suppress(Exception):  # already gone from the keyring
                    self.keyring.delete_password(self.tool, url)
            self._write(entries)
        return True

    def _load(self, url: str, entry: dict[str, Any]) -> SavedCredential | None:
        if entry.get("secret_in") == "keyring":
            if self.keyring is None:
                return None
            secret = self.keyring.get_password(self.tool, url)
        else:
            secret = entry.get("secret")
        kind = entry.get("kind")
        if not isinstance(secret, str) or not secret or kind not in ("session", "jwt", "api_key"):
            return None
        return SavedCredential(
            url=url,
            kind=kind,
            user=str(entry.get("user") or ""),
            secret=Secret(secret),
            created_at=float(entry.get("created_at") or 0.0),
            expires_at=_number(entry.get("expires_at")),
            idle_timeout=_number(entry.get("idle_timeout")),
        )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
