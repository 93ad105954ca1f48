"""``python -m metalcloud_async``: the ``metalcloud-async`` command-line tool (needs the ``cli`` extra)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
