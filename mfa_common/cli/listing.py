"""Records printed as a table or as JSON, with the fields the user picks, as ``gh`` does.

``--json`` prints every field; ``--json id,email`` (gh's form) or ``--fields id,email`` picks
some, in that order, for the JSON and for the table alike. The fields are checked before the
command logs in, so a typo costs no login. A list is written as one JSON array, streamed item by
item: a listing that pages through thousands of users never holds them all to print them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import typer

from .app import QuietCommand, add_command, flag
from .errors import EXIT_FAILED, CliError
from .output import stdout_console
from .session import ApiAdapter, Session, run_session

__all__ = [
    "FIELDS_OPTION",
    "JSON_OPTION",
    "add_record_command",
    "choose_fields",
    "print_record",
    "print_records",
    "user_get_command",
]

ClientT = TypeVar("ClientT")

JSON_OPTION: Any = flag(
    "Print JSON on stdout: every field, or the ones --fields (or --json FIELDS) names.", "--json"
)
FIELDS_OPTION: Any = typer.Option(
    None, "--fields", metavar="FIELD,...", help="Only these fields, in this order (table and JSON)."
)


class _FieldsCommand(QuietCommand):
    """A command whose ``--json`` may be followed by the fields to print, as in gh
    (``--json id,email`` is read as ``--json --fields id,email``)."""

    fields: tuple[str, ...] = ()

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        rewritten: list[str] = []
        index = 0
        while index < len(args):
            word = args[index]
            if word.startswith("--json="):
                rewritten += ["--json", "--fields", word.split("=", 1)[1]]
            elif word == "--json" and index + 1 < len(args) and self._names_fields(args[index + 1]):
                rewritten += ["--json", "--fields", args[index + 1]]
                index += 1
            else:
                rewritten.append(word)
            index += 1
        return super().parse_args(ctx, rewritten)

    def _names_fields(self, word: str) -> bool:
        return not word.startswith("-") and all(part in self.fields for part in word.split(","))


def add_record_command(
    group: typer.Typer, name: str, func: Callable[..., None], fields: Sequence[str]
) -> None:
    """Add ``func`` (which takes ``--json`` and ``--fields``) as the command ``name`` of
    ``group``, reading gh's ``--json FIELDS`` too; ``fields`` are the ones it can print."""
    command_class = type(f"{func.__name__}_command", (_FieldsCommand,), {"fields": tuple(fields)})
    add_command(group, name, func, cls=command_class)


def choose_fields(given: str | None, available: Sequence[str], default: Sequence[str]) -> list[str]:
    """The fields ``--fields`` names (checked), else ``default``."""
    if not given:
        return list(default)
    chosen = [part.strip() for part in given.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in available]
    if unknown or not chosen:
        named = ", ".join(map(repr, unknown)) or "(none)"
        raise CliError(f"unknown field {named}: the fields are {', '.join(available)}")
    return chosen


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "-"
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=False, default=str)


async def print_records(
    records: Iterable[dict[str, Any]] | AsyncIterable[dict[str, Any]],
    fields: Sequence[str],
    *,
    json_out: bool,
    title: str,
    noun: str = "user",
) -> int:
    """Print ``records`` (only ``fields``) as one JSON array, streamed, or as a table ending with
    how many ``noun``s there were; returns that number."""
    count = 0
    if json_out:
        out = sys.stdout
        out.write("[")
        async for record in _each(records):
            out.write(("," if count else "") + "\n  " + _json({f: record.get(f) for f in fields}))
            count += 1
        out.write("\n]\n" if count else "]\n")
        out.flush()
        return count
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for field in fields:
        table.add_column(field)
    async for record in _each(records):
        table.add_row(*(_cell(record.get(f)) for f in fields))
        count += 1
    console = stdout_console()
    console.print(table)
    console.print(f"{count} {noun}{'' if count == 1 else 's'}.", markup=False)
    return count


def print_record(record: dict[str, Any], fields: Sequence[str], *, json_out: bool, title: str) -> None:
    """Print one record (only ``fields``): a JSON object, or a two-column table."""
    chosen = {f: record.get(f) for f in fields}
    if json_out:
        sys.stdout.write(json.dumps(chosen, indent=2, default=str) + "\n")
        sys.stdout.flush()
        return
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    for field, value in chosen.items():
        table.add_row(field, _cell(value))
    stdout_console().print(table)


def user_get_command(
    adapter: ApiAdapter[ClientT],
    fields: Sequence[str],
    find: Callable[[ClientT, str], Awaitable[dict[str, Any] | None]],
    *,
    check: Callable[[str], None] | None = None,
) -> Callable[..., None]:
    """A tool's ``users get USER`` command: ``find(client, user)`` reads the user USER names
    (an id or an e-mail address, as typed) and returns its record with ``fields``, or None when
    there is no such user; ``check(user)`` refuses a malformed USER before any login."""

    def users_get(
        ctx: typer.Context,
        user: str = typer.Argument(..., metavar="USER", help="The user's id or e-mail address."),
        json_out: bool = JSON_OPTION,
        fields_given: str | None = FIELDS_OPTION,
    ) -> None:
        """Show one user (needs an administrator), by id or e-mail address."""
        chosen = choose_fields(fields_given, fields, fields)
        if check is not None:
            check(user)

        async def run(session: Session[ClientT]) -> int:
            record = await find(session.client, user)
            if record is None:
                raise CliError(f"{session.url} has no user {user!r}", EXIT_FAILED)
            print_record(record, chosen, json_out=json_out, title=f"User {record.get('email') or user}")
            return 0

        run_session(ctx, adapter, run)

    return users_get


async def _each(records: Iterable[dict[str, Any]] | AsyncIterable[dict[str, Any]]) -> Any:
    if isinstance(records, AsyncIterable):
        async for record in records:
            yield record
    else:
        for record in records:
            yield record
