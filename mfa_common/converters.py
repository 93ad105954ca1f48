"""cattrs converters that know an API's wire names and tolerate what real servers send.

Each API builds one converter with :func:`make_converter`:

* attribute names map to wire names by a naming rule (``snake`` keeps them, ``camel`` turns
  ``display_name`` into ``displayName``) plus explicit exceptions (``secret_2fa`` → ``secret2FA``)
  given per class with ``__wire_names__``;
* unknown JSON fields are ignored;
* an unknown value for an ``Enum`` field is kept as the raw string instead of failing (servers
  violate their own enums);
* when unstructuring a request body, optional fields left at their default are omitted;
* ``Secret`` fields take strings (or numbers) from the wire and give their revealed value back
  when a request body is built; an Enum member goes on the wire as its value.

An API module holds its converter as a :class:`LazyConverter`: cattrs is imported and the
converter built on the first ``structure`` / ``unstructure``, not when the package is imported.
"""

from __future__ import annotations

import enum
import re
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

from .secret import Secret

if TYPE_CHECKING:
    import cattrs

T = TypeVar("T")

Naming = Literal["snake", "camel"]

_CAMEL = re.compile(r"_([a-z0-9])")


def to_camel(name: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def wire_name(cls: type, attribute: str, naming: Naming) -> str:
    explicit: dict[str, str] = getattr(cls, "__wire_names__", {})
    if attribute in explicit:
        return explicit[attribute]
    return to_camel(attribute) if naming == "camel" else attribute


def _enum_in(tp: Any) -> type[enum.Enum] | None:
    """The Enum class of a field typed ``E``, ``E | None``, ``E | str`` or ``E | str | None``
    (``E | str``: a response field that keeps an unknown value as its raw string)."""
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp
    members = [a for a in typing.get_args(tp) if a is not type(None) and a is not str]
    if len(members) == 1 and isinstance(members[0], type) and issubclass(members[0], enum.Enum):
        return members[0]
    return None


def _tolerant_enum_hook(cls: type[enum.Enum]) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if value is None:
            return None
        try:
            return cls(value)
        except ValueError:
            return value

    return structure


def _is_secret(tp: Any) -> bool:
    return tp is Secret or typing.get_origin(tp) is Secret


def _structure_secret(value: Any, _: Any) -> Secret[Any]:
    if isinstance(value, Secret):
        return value
    if isinstance(value, (str, bytes)):
        return Secret(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Secret(str(value))
    raise ValueError("expected a string")


def make_converter(naming: Naming = "snake") -> cattrs.Converter:
    """A converter for one API; see the module docstring."""
    import cattrs
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

    converter = cattrs.Converter(forbid_extra_keys=False)

    def structure_factory(cls: type) -> Any:
        attrs.resolve_types(cls)
        overrides = {}
        for a in attrs.fields(cls):
            enum_cls = _enum_in(a.type)
            hook = _tolerant_enum_hook(enum_cls) if enum_cls is not None else None
            overrides[a.name] = override(rename=wire_name(cls, a.name, naming), struct_hook=hook)
        return make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]

    def unstructure_factory(cls: type) -> Any:
        overrides = {
            a.name: override(
                rename=wire_name(cls, a.name, naming),
                omit_if_default=a.default is not attrs.NOTHING,
            )
            for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, converter, **overrides)  # type: ignore[arg-type]

    converter.register_structure_hook_factory(attrs.has, structure_factory)
    converter.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    converter.register_structure_hook_func(_is_secret, _structure_secret)
    converter.register_unstructure_hook_func(_is_secret, lambda secret: secret.reveal())
    converter.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda member: member.value
    )
    return converter


class LazyConverter:
    """An API's converter, built by ``build`` on first use (see the module docstring)."""

    __slots__ = ("_build", "_converter")

    def __init__(self, build: Callable[[], cattrs.Converter]) -> None:
        self._build = build
        self._converter: cattrs.Converter | None = None

    @property
    def converter(self) -> cattrs.Converter:
        """The built converter (built now if it was not yet)."""
        if self._converter is None:
            # Two threads may both build: each result is complete and equivalent.
            self._converter = self._build()
        return self._converter

    def structure(self, obj: Any, cl: type[T]) -> T:
        return self.converter.structure(obj, cl)

    def unstructure(self, obj: Any, unstructure_as: Any = None) -> Any:
        return self.converter.unstructure(obj, unstructure_as=unstructure_as)

    def __getattr__(self, name: str) -> Any:
        # Any other Converter attribute (a hook registration, ``copy``) is the built one's.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.converter, name)

    def __repr__(self) -> str:
        return f"LazyConverter(built={self._converter is not None})"
