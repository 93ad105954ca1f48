"""Accounts for a fake from JSON, the same rule for every fake: ``--accounts FILE`` holds a list
of objects whose keys are the keywords of that fake's ``add_user`` (``totp_secret``, ``admin``,
...), each value of the JSON type its parameter takes. A bad file is refused whole, before any
account is added, with the path and the entry named."""

from __future__ import annotations

import collections.abc
import inspect
import json
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["add_accounts", "check_accounts", "load_accounts", "read_accounts"]

AddUser = Callable[..., Any]


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value can be passed for a parameter annotated ``hint`` (what a JSON file
    can hold: None, bool, int, float, str, lists of them, Literal choices); other hints pass."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arm) for arm in typing.get_args(hint))
    if origin is typing.Literal:
        return any(value == choice and type(value) is type(choice) for choice in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence):
        (item,) = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    return True


def check_accounts(data: Any, add_user: AddUser, *, source: str) -> list[dict[str, Any]]:
    """``data`` (parsed JSON) as account keyword sets for ``add_user``; ValueError naming
    ``source`` and the entry when it is not a list of objects with known keys of the right
    types and every required one."""
    if not isinstance(data, list):
        raise ValueError(f"{source}: expected a JSON list of account objects")
    parameters = dict(inspect.signature(add_user).parameters)
    hints = typing.get_type_hints(add_user)
    required = {
        name
        for name, p in parameters.items()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    accounts: list[dict[str, Any]] = []
    for position, entry in enumerate(data):
        where = f"{source}: entry {position}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} is not an object")
        missing = sorted(required - set(entry))
        if missing:
            raise ValueError(f"{where} needs {', '.join(missing)}")
        unknown = sorted(set(entry) - set(parameters))
        if unknown:
            raise ValueError(
                f"{where} has unknown keys: {', '.join(unknown)} (known: {', '.join(parameters)})"
            )
        for name, value in entry.items():
            if not _fits(value, hints.get(name, Any)):
                raise ValueError(f"{where}: {name} cannot be {json.dumps(value)[:40]}")
        accounts.append(dict(entry))
    return accounts


def read_accounts(path: str | os.PathLike[str], add_user: AddUser) -> list[dict[str, Any]]:
    """The accounts of the JSON file at ``path``, checked by :func:`check_accounts`."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{os.fspath(path)}: cannot read the accounts: {exc}") from None
    return check_accounts(data, add_user, source=os.fspath(path))


def add_accounts(
    add_user: AddUser, accounts: Iterable[Mapping[str, Any]], *, source: str = "accounts"
) -> list[Any]:
    """Call ``add_user(**account)`` for each account, in order; the users made. A refusal (a
    duplicate e-mail, two factors at once) is a ValueError naming ``source`` and the entry."""
    users = []
    for position, account in enumerate(accounts):
        try:
            users.append(add_user(**account))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: entry {position}: {exc}") from None
    return users


def load_accounts(
    add_user: AddUser, path: str | os.PathLike[str] | None, demo: Iterable[Mapping[str, Any]]
) -> list[Any]:
    """What ``--accounts`` means on every fake's command line: the accounts of the file at
    ``path`` (read whole and checked first) when given, else ``demo``; added with ``add_user``.
    Returns the users made; ValueError for a bad file."""
    if path:
        return add_accounts(add_user, read_accounts(path, add_user), source=os.fspath(path))
    return add_accounts(add_user, demo)
