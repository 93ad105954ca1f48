"""Which optional extra a part of the project needs, and one clear line when it is missing.

Imports nothing optional itself, so the command-line entry points and ``python -m <pkg>.testing``
can check their extra before importing typer, rich, starlette or uvicorn.
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["EXIT_USAGE", "EXTRAS", "has_extra", "install_hint", "require_extra", "run_as_module"]

#: The exit code of a command that cannot run as installed (the CLI's usage code).
EXIT_USAGE = 2

#: The modules each extra brings (the ones the code imports).
EXTRAS: dict[str, tuple[str, ...]] = {
    "cli": ("typer", "rich", "segno"),
    "fakes": ("starlette", "uvicorn"),
    "qr": ("zxingcpp", "PIL"),
}


def install_hint(extra: str) -> str:
    """The exact command that installs ``extra``."""
    return f"pip install 'mfa-sdks[{extra}]'"


def _missing(extra: str) -> str | None:
    # Found, not imported: a tool printing its help must not pay for modules it does not use
    # (segno draws QR codes); the ones it needs are imported by the code that needs them.
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            return module
    return None


def has_extra(extra: str) -> bool:
    """Whether the modules of ``extra`` are installed (found, not imported)."""
    return _missing(extra) is None


def run_as_module() -> bool:
    """True while ``python -m package`` is importing the package (``sys.argv[0]`` is ``"-m"``
    until the module is found, as the interpreter documents)."""
    return sys.argv[:1] == ["-m"]


def require_extra(extra: str, what: str, *, exit_on_missing: bool) -> None:
    """Make sure the modules of ``extra`` import.

    When one does not: a command (``exit_on_missing``) prints one line naming the install
    command and exits with 2; a library import raises :class:`ModuleNotFoundError` with that
    line as its message (a user's test suite then shows what to install).
    """
    module = _missing(extra)
    if module is None:
        return
    message = f"{what} needs the '{extra}' extra ({module} is not installed): {install_hint(extra)}"
    if exit_on_missing:
        sys.stderr.write(f"error: {message}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_USAGE)
    raise ModuleNotFoundError(message, name=module)
