"""Names a package exports but loads on first use (PEP 562).

A package whose ``__init__`` would otherwise import a costly module just to re-export its names
lists them here instead: the module loads when one of them is first read, ``dir()`` and
``__all__`` stay complete, and type checkers see the names through ``if TYPE_CHECKING:`` imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, sources: Mapping[str, str], listed: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``.

    ``sources`` maps each deferred name to the relative module holding it (``".models"``); a
    name equal to that module's own name is the module itself. A resolved name is stored in
    the package, so each loads once. ``listed`` (the package's ``__all__``) joins ``dir()``.
    """
    names = dict(sources)
    shown = list(listed)

    def __getattr__(name: str) -> Any:
        source = names.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(source, package)
        value = module if source.rpartition(".")[2] == name else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *shown, *names})

    return __getattr__, __dir__
