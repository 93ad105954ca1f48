"""mkdocs hook: fill the CLI page's markers from the tools themselves.

``<!-- cli-reference: quatrix_async.cli -->`` becomes every command of that tool with its
options (read from its typer application), ``<!-- cli-settings: quatrix_async.cli -->`` where
its values come from (environment, config file), ``<!-- cli-exit-codes -->`` the exit-status
table.
A page can then never list a command, option or status the tools do not have.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

_MARKER = re.compile(r"<!-- cli-(reference|settings): ([\w.]+) -->")
_EXIT_CODES = "<!-- cli-exit-codes -->"


def render(markdown: str) -> str:
    """The page with its markers replaced."""
    from mfa_common.cli.reference import command_reference, exit_code_table, settings_table

    def tool(match: re.Match[str]) -> str:
        what, name = match.groups()
        module = importlib.import_module(name)
        if what == "settings":
            return settings_table(module.SPEC)
        return command_reference(module.build_app(), module.SPEC.name)

    return _MARKER.sub(tool, markdown).replace(_EXIT_CODES, exit_code_table())


def on_page_markdown(markdown: str, **_: Any) -> str:
    if _EXIT_CODES in markdown or _MARKER.search(markdown):
        return render(markdown)
    return markdown
