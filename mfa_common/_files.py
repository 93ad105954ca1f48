"""File helpers shared by the recovery-code store, the batch journal and the step state file."""

from __future__ import annotations

import contextlib
import os
import stat


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
