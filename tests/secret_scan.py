"""The suite-wide secret scan.

While the tests run, every value wrapped in :class:`mfa_common.secret.Secret` is remembered and
every log record (DEBUG and up, every logger but the fake servers' own) is kept. When the
session ends, no record may contain any remembered secret; the session fails otherwise, naming
the logger and a fingerprint of the secret (never the secret itself).

Short all-digit values (one-time codes such as ``123456``) are left to the targeted tests: as
substrings they would match ports, timestamps and counters by chance.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator

from mfa_common.secret import Secret

# Server-side loggers: the fakes stand in for real servers, whose logs are not ours.
EXCLUDED_LOGGERS = (
    "uvicorn",
    "mfa_common.testing",
    "mfa_common.xmfa.testing",
    "quatrix_async.testing",
    "metalcloud_async.testing",
)


def scannable(value: str) -> bool:
    if len(value) < 6:
        return False
    return not (value.isdigit() and len(value) < 10)


class SecretScanner(logging.Handler):
    """Remembers secrets and log lines; :meth:`leaks` finds secrets inside lines."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.secrets: set[str] = set()
        self.lines: list[tuple[str, str]] = []
        self._lock_secrets = threading.Lock()
        # Fuzzed server answers are wrapped in Secrets too, but they are arbitrary strings
        # ("HTTP/1.1", "keep-alive"), not secrets a test gave the SDK: remembering them would
        # flag ordinary log lines of later tests.
        self.paused = False

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """Do not remember the values wrapped in Secrets meanwhile (for fuzzed input)."""
        self.paused = True
        try:
            yield
        finally:
            self.paused = False

    def remember(self, value: object) -> None:
        if self.paused or not isinstance(value, (str, bytes)):
            return  # the SDK refuses such values itself; the scan must not mask that error
        if isinstance(value, bytes):
            try:
                value = value.decode()
            except UnicodeDecodeError:
                return
        if scannable(value):
            with self._lock_secrets:
                self.secrets.add(value)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(EXCLUDED_LOGGERS):
            return
        try:
            text = record.getMessage()
        except Exception:  # a broken record must not break the suite
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append((record.name, text))

    def scan_texts(self, texts: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """(source, fingerprint) for each secret found in a text.

        With ``SECRET_SCAN_CONTEXT=1`` the source also shows the line around the finding, the
        secret itself replaced by ``<SECRET>`` (to locate a leak without printing it)."""
        with self._lock_secrets:
            secrets = sorted(self.secrets, key=len, reverse=True)
        if not secrets:
            return []
        found: list[tuple[str, str]] = []
        for start in range(0, len(secrets), 500):
            pattern = re.compile("|".join(re.escape(s) for s in secrets[start : start + 500]))
            for source, text in texts:
                for match in pattern.finditer(text):
                    where = source
                    if os.environ.get("SECRET_SCAN_CONTEXT") == "1":
                        start, end = match.span()
                        where += ": " + (
                            text[max(0, start - 120) : start] + "<SECRET>" + text[end : end + 60]
                        )
                    found.append((where, Secret(match.group(0)).fingerprint()))
        return found

    def leaks(self) -> list[tuple[str, str]]:
        return self.scan_texts(self.lines)


SCANNER = SecretScanner()
_original_init = Secret.__init__


def _remembering_init(self: Secret, value):  # type: ignore[no-untyped-def]
    _original_init(self, value)
    SCANNER.remember(self.reveal())


def install() -> None:
    Secret.__init__ = _remembering_init  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(SCANNER)
    root.setLevel(logging.DEBUG)
