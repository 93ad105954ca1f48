"""mkdocs hook: the docstrings use Sphinx roles (``:class:`~pkg.mod.Name```); Markdown renders
them as ``:class:<code>~pkg.mod.Name</code>``. Show them as code, shortened as Sphinx would."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj):<code>(~?)([\w.]+)</code>")


def _replace(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    return _ROLE.sub(_replace, html)
