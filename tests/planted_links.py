"""Links planted at a state file's path, as a hostile local user would: to a file that must stay
as it is, or dangling, to nowhere that must not appear."""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: The content of the file a link points to; it must never change.
VICTIM = '{"victim": "must stay as it is"}\n'
KINDS = ["to a file", "dangling"]


def plant(link: Path, target: Path, kind: str) -> None:
    """A link at ``link`` to ``target``, which exists (``"to a file"``, 0600) or not."""
    link.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "to a file":
        target.write_text(VICTIM)
        target.chmod(0o600)
    link.symlink_to(target)


def assert_untouched(target: Path, kind: str) -> None:
    """The link's target is as it was: the same content and mode, or still absent."""
    if kind == "to a file":
        assert target.read_text() == VICTIM
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    else:
        assert not os.path.lexists(target), "a dangling link made its target appear"
