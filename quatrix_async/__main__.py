"""``python -m quatrix_async`` and the ``quatrix-async`` console script (the ``cli`` extra)."""

from __future__ import annotations

from mfa_common._extras import require_extra


def main() -> None:
    """Run the tool; without the ``cli`` extra, say how to install it and exit with 2."""
    require_extra("cli", "quatrix-async", exit_on_missing=True)
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
