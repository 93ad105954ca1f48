"""The command reference of a tool, as Markdown, read from the typer application itself.

The documentation site's CLI page is built from this (``docs_hooks/cli_reference.py``), so the
page lists exactly the commands, options, environment variables and exit codes the tools have.
Commands and parameters are read by their attributes, not their classes: typer builds them on
its own copy of click in some versions and on click itself in others.
"""

from __future__ import annotations

from typing import Any

import typer

from .app import ToolSpec
from .errors import EXIT_BUSY, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_STATE, EXIT_USAGE

__all__ = ["EXIT_CODE_MEANINGS", "command_reference", "exit_code_table", "settings_table"]

#: What each exit status of the tools means.
EXIT_CODE_MEANINGS: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "every item done (or skipped), or the command succeeded"),
    (EXIT_FAILED, "some items failed or their outcome is unknown, or the API call failed"),
    (
        EXIT_USAGE,
        "wrong usage, missing or refused credentials, a config file with loose permissions, "
        "a refused confirmation, a missing extra",
    ),
    (
        EXIT_STATE,
        "could not start: the local state cannot be used (saved sessions, the login record, the TOTP "
        "step state, a plan, a journal or the state directory is a link, another user's, open to "
        "others, damaged, of a newer format or not writable; or the journal was made for another "
        "run); the message names the path and the fix, and nothing was sent",
    ),
    (EXIT_BUSY, "could not start: another run holds the journal; nothing was sent, try again later"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C); the summary so far and the resume command are printed"),
)


def exit_code_table() -> str:
    rows = "\n".join(f"| {code} | {meaning} |" for code, meaning in EXIT_CODE_MEANINGS)
    return f"| exit status | meaning |\n|---|---|\n{rows}\n"


def settings_table(spec: ToolSpec) -> str:
    """Where each value of ``spec`` comes from: its environment variable and config-file key."""
    rows = "\n".join(
        f"| `{setting.env}` | `{setting.name}` | {'yes (hidden prompt)' if setting.secret else 'no'} |"
        for setting in spec.settings
    )
    return (
        f"`{spec.name}` reads `[{spec.section}]` of `~/.config/{spec.name}/config.toml` (or the file "
        f"given by `--config` / `{spec.config_env}`; it must be `chmod 600`).\n\n"
        f"| environment | config key | secret |\n|---|---|---|\n{rows}\n"
    )


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _option_row(param: Any, context: Any) -> str:
    # The help record is what ``--help`` prints: names with the value's shape, then the help
    # with its default, choices and environment variable.
    names, meaning = param.get_help_record(context)
    return f"| `{_cell(names)}` | {_cell(meaning)} |"


def _section(command: Any, path: list[str], depth: int) -> list[str]:
    heading = "#" * min(depth, 6)
    lines = [f"{heading} `{' '.join(path)}`", ""]
    if command.help:
        lines += [_cell(command.help.split("\n\n")[0]), ""]
    context = command.context_class(command, info_name=path[-1])
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    if arguments:
        usage = " ".join(str(a.metavar or a.name).strip("{}<>").upper() for a in arguments)
        lines += [f"Arguments: `{usage}`", ""]
    options = [
        p for p in command.params if p.param_type_name == "option" and not p.hidden and "--help" not in p.opts
    ]
    if options:
        lines += ["| option | meaning |", "|---|---|", *(_option_row(p, context) for p in options), ""]
    if hasattr(command, "list_commands"):
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is not None and not sub.hidden:
                lines += _section(sub, [*path, name], depth + 1)
    return lines


def command_reference(app: typer.Typer, prog: str, *, depth: int = 3) -> str:
    """Every command of ``app`` (invoked as ``prog``) with its help and options, as Markdown
    sections starting at heading level ``depth``."""
    root = typer.main.get_command(app)
    return "\n".join(_section(root, [prog], depth)) + "\n"
