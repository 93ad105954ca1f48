"""Saves one session in a command-line tool's credentials store (for the concurrent-save test).

Usage: python _session_saver.py STATE_DIR URL MODE

``pause``: once the store has read the file and is about to write it back, print ``read`` and
wait for a line on stdin. ``report``: print ``blocked`` the first time the store's lock is found
taken (then wait for it as usual). Both print ``saved`` at the end.
"""

from __future__ import annotations

import fcntl
import sys
from pathlib import Path
from typing import Any

from mfa_common.cli import CredentialStore, SavedCredential
from mfa_common.secret import Secret


def main() -> None:
    directory, url, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    if mode == "pause":
        write = CredentialStore._write

        def paused(self: CredentialStore, entries: Any) -> None:
            print("read", flush=True)
            sys.stdin.readline()
            write(self, entries)

        CredentialStore._write = paused  # type: ignore[method-assign]
    else:
        flock = fcntl.flock
        reported = False

        def reporting(fd: Any, operation: int) -> Any:
            nonlocal reported
            try:
                return flock(fd, operation)
            except BlockingIOError:
                if not reported:
                    reported = True
                    print("blocked", flush=True)
                raise

        fcntl.flock = reporting
    store = CredentialStore("tool", directory)
    store.put(
        SavedCredential(url=url, kind="session", user="a@b.test", secret=Secret("sess-0001"), created_at=0.0)
    )
    print("saved", flush=True)


if __name__ == "__main__":
    main()
