"""griffe extension: the constructor of an attrs class, as attrs generates it.

griffe reads the source, and an ``@attrs.frozen``/``@attrs.define`` class has no ``__init__``
there; mkdocstrings would show no signature and warn about every documented parameter. This
reads the generated constructor from the class itself (its signature, with converter types such
as ``timeout: float | Timeout | None``), and shows a default made by a factory as ``...``.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import attrs
import griffe

_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: griffe.ParameterKind.positional_only,
    inspect.Parameter.POSITIONAL_OR_KEYWORD: griffe.ParameterKind.positional_or_keyword,
    inspect.Parameter.KEYWORD_ONLY: griffe.ParameterKind.keyword_only,
}


def _default(value: Any) -> str | None:
    if value is inspect.Parameter.empty:
        return None
    if value is attrs.NOTHING:
        return "..."  # a factory: a fresh default per instance
    if callable(value) or (isinstance(value, tuple) and any(callable(v) for v in value)):
        return "..."
    return repr(value)


class AttrsConstructors(griffe.Extension):
    def on_class_members(self, *, cls: griffe.Class, **_: Any) -> None:
        if "__init__" in cls.members:
            return
        try:
            runtime = getattr(importlib.import_module(cls.module.path), cls.name)
        except (ImportError, AttributeError):
            return
        if not attrs.has(runtime):
            return
        parameters = [
            griffe.Parameter(
                name,
                annotation=param.annotation if isinstance(param.annotation, str) else None,
                kind=_KINDS[param.kind],
                default=_default(param.default),
            )
            for name, param in inspect.signature(runtime).parameters.items()
            if param.kind in _KINDS
        ]
        init = griffe.Function(
            "__init__",
            parameters=griffe.Parameters(griffe.Parameter("self"), *parameters),
            returns="None",
            parent=cls,
        )
        cls.set_member("__init__", init)
        cls.labels.add("attrs")
