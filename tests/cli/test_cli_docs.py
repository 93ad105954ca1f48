"""The CLI page of the docs site and the README's console examples name only commands and
options the tools have: the page's reference is generated from the typer applications, and every
``$ tool ...`` line of the docs is checked against them here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

import metalcloud_async.cli
import quatrix_async.cli
from docs_hooks.cli_reference import render
from mfa_common.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from mfa_common.cli.reference import command_reference

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"quatrix-async": quatrix_async.cli, "metalcloud-async": metalcloud_async.cli}
PAGES = [ROOT / "docs" / "cli.md", ROOT / "README.md"]


def _tree(command: Any, path: tuple[str, ...]) -> dict[tuple[str, ...], Any]:
    found = {path: command}
    if hasattr(command, "list_commands"):
        context = command.context_class(command)
        for name in command.list_commands(context):
            found.update(_tree(command.get_command(context, name), (*path, name)))
    return found


def _commands(tool: str) -> dict[tuple[str, ...], Any]:
    return _tree(typer.main.get_command(TOOLS[tool].build_app()), (tool,))


def _options(command: Any) -> set[str]:
    return {
        opt for p in command.params if p.param_type_name == "option" for opt in (*p.opts, *p.secondary_opts)
    }


def test_the_generated_reference_lists_every_command_of_both_tools() -> None:
    page = render((ROOT / "docs" / "cli.md").read_text(encoding="utf-8"))
    assert "<!-- cli-" not in page, "a marker was left unreplaced"
    for tool in TOOLS:
        for path, command in _commands(tool).items():
            assert f"`{' '.join(path)}`" in page, path
            for option in _options(command) - {"--help"}:
                assert option in page, (path, option)
    for code in (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED):
        assert re.search(rf"^\| {code} \| ", page, re.M), code
    for setting in quatrix_async.cli.SPEC.settings + metalcloud_async.cli.SPEC.settings:
        assert f"`{setting.env}`" in page, setting.env


def test_a_command_added_to_a_tool_appears_in_the_reference() -> None:
    # The reference reads the application, not a list: a new command shows up by itself.
    app = quatrix_async.cli.build_app()

    @app.command("brand-new-command")
    def brand_new(flag: bool = typer.Option(False, "--brand-new-flag", help="A flag.")) -> None:
        """Something new."""

    text = command_reference(app, "quatrix-async")
    assert "`quatrix-async brand-new-command`" in text and "--brand-new-flag" in text


def _console_lines(page: Path) -> list[str]:
    lines: list[str] = []
    in_console = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_console = line.strip() == "```console"
            continue
        if in_console and line.startswith("$ "):
            lines.append(line[2:].split("#", 1)[0].split("|", 1)[0].strip())
    return lines


CONSOLE = [(page.name, line) for page in PAGES for line in _console_lines(page)]


@pytest.mark.parametrize(("page", "line"), CONSOLE, ids=[f"{p}:{line[:40]}" for p, line in CONSOLE])
def test_every_documented_command_line_names_real_commands_and_options(page: str, line: str) -> None:
    words = shlex.split(line)
    while words and "=" in words[0] and not words[0].startswith("-"):
        words.pop(0)  # VAR=value prefixes
    if not words or words[0] not in TOOLS:
        return  # export, jq, ...: not one of the tools
    commands = _commands(words[0])
    path: tuple[str, ...] = (words[0],)
    global_options = _options(commands[path])
    options: list[str] = []
    for word in words[1:]:
        if word.startswith("-"):
            options.append(word.split("=", 1)[0])
        elif (*path, word) in commands and not options:
            path = (*path, word)
    known = _options(commands[path]) | global_options
    assert not [o for o in options if o not in known], f"{line!r}: unknown options for {' '.join(path)}"
    assert len(path) > 1 or options, f"{line!r} names no command"
