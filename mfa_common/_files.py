"""File durability helpers shared by the recovery-code store and the batch journal."""

from __future__ import annotations

import contextlib
import os


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
