"""The fenced code blocks and inline commands of a Markdown file, with their line numbers."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<why>.+?)\s*-->\s*$")
#: ``<!-- serve: app.py /me /health -->``: the block is an ASGI service, saved under that file
#: name and served with ``uvicorn app:app``; each path listed must answer 200.
_SERVE = re.compile(r"^\s*<!--\s*serve:\s*(?P<file>[\w.-]+\.py)(?P<paths>(?:\s+/\S*)*)\s*-->\s*$")
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
#: Shell operators that separate one command from the next on a line.
_SEPARATORS = frozenset({"&&", "||", "|", ";", "&"})


@dataclass(frozen=True)
class Block:
    """One fenced block: its language (the first word of the info string) and its text."""

    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    label: str = ""  # how tests name the file (a path relative to the project)
    #: Why the block is not run (``<!-- not run: why -->`` on the line before it), else "".
    not_run: str = ""
    #: For a service (``<!-- serve: app.py /me -->``): its file name and the paths to GET.
    serve: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.label or self.path.name}:{self.line}"


def fenced_blocks(path: Path, label: str = "") -> list[Block]:
    """Every fenced block of ``path``, in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
            index += 1
        language = (match["info"].split() or [""])[0].lower()
        previous = next((line for line in reversed(lines[:start]) if line.strip()), "")
        marker = _NOT_RUN.match(previous)
        served = _SERVE.match(previous)
        serve = (served["file"], *served["paths"].split()) if served else ()
        text = "\n".join(body) + "\n"
        blocks.append(Block(path, start + 1, language, text, label, marker["why"] if marker else "", serve))
        index += 1
    return blocks


def python_blocks(path: Path, label: str = "") -> list[Block]:
    return [b for b in fenced_blocks(path, label) if b.language in ("python", "py")]


def shell_commands(path: Path, label: str = "") -> list[tuple[str, list[str]]]:
    """``(where, argv)`` of every command in the console/bash blocks and in inline code.

    In ``console`` blocks only ``$ `` lines are commands; in ``bash``/``sh`` blocks every line
    is. A line holding several commands (``a && b | c &``) gives each one; comments are dropped.
    Inline code spans are commands only when they start with a program the caller asks about,
    so they are returned whole and filtered by :func:`commands_of`.
    """
    found: list[tuple[str, list[str]]] = []
    fenced_lines: set[int] = set()
    name = label or path.name
    for block in fenced_blocks(path, label):
        block_lines = block.text.splitlines()
        fenced_lines.update(range(block.line, block.line + len(block_lines) + 2))
        if block.language not in ("console", "bash", "sh", "shell"):
            continue
        for offset, raw in enumerate(block_lines, start=1):
            line = raw.strip()
            if block.language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            for argv in _split_commands(line):
                found.append((f"{name}:{block.line + offset}", argv))
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if number in fenced_lines:
            continue
        for span in _INLINE.findall(raw):
            for argv in _split_commands(span):
                found.append((f"{name}:{number}", argv))
    return found


def _split_commands(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # not shell (an unbalanced quote in prose)
        return []
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in _SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]
