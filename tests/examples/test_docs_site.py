"""The documentation site builds, and every page, API reference and included file it names
exists. The pages' Python blocks and commands are run and checked by ``test_doc_examples.py``."""

from __future__ import annotations

import html as htmllib
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


class _Loader(yaml.SafeLoader):
    """mkdocs.yml may hold ``!!python/name:`` tags; read them as plain strings."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: str(node.value))


def _config() -> dict[str, Any]:
    with (ROOT / "mkdocs.yml").open(encoding="utf-8") as handle:
        config: dict[str, Any] = yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    return config


def _nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for entry in nav for page in _nav_pages(entry)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    config = _config()
    assert config.get("strict") is True
    nav = set(_nav_pages(config["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert nav == pages


def test_the_guides_the_site_promises_are_there() -> None:
    titles = " ".join(str(entry) for entry in _config()["nav"]).lower()
    for topic in ("quatrix", "x-mfa", "metalcloud", "batch", "testing", "fastapi", "security", "reference"):
        assert topic in titles, topic


def test_a_getting_started_page_comes_first_and_the_readme_links_it() -> None:
    nav = _config()["nav"]
    assert nav[1] == {"Getting started": "getting-started.md"}, nav[:2]
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    for step in ("## Install", "## Run a fake server", "## A first script", "## A first command"):
        assert step in page, step
    assert "```python" in page and "pip install" in page and "$ quatrix-async " in page
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/getting-started.md)" in readme
    assert "(getting-started.md)" in (DOCS / "index.md").read_text(encoding="utf-8")


def test_every_api_reference_names_an_object_that_exists() -> None:
    identifiers = [
        (page.relative_to(ROOT).as_posix(), match)
        for page in DOCS.rglob("*.md")
        for match in re.findall(r"^::: (\S+)", page.read_text(encoding="utf-8"), flags=re.M)
    ]
    assert len(identifiers) > 20
    for page, identifier in identifiers:
        parts = identifier.split(".")
        obj: Any = None
        for split in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            break
        else:
            pytest.fail(f"{page}: no module for {identifier}")
        for attribute in parts[split:]:
            assert hasattr(obj, attribute), f"{page}: {identifier} does not exist"
            obj = getattr(obj, attribute)


def test_included_files_exist() -> None:
    for page in DOCS.rglob("*.md"):
        for included in re.findall(r'^--8<-- "([^"]+)"', page.read_text(encoding="utf-8"), flags=re.M):
            assert (ROOT / included).is_file(), f"{page.name} includes a missing {included}"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="needs the docs extra")
def test_the_site_builds_with_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reference = (tmp_path / "site" / "reference" / "errors" / "index.html").read_text(encoding="utf-8")
    assert "MfaCodeRejectedError" in reference  # the API reference is generated from the code
    quatrix = (tmp_path / "site" / "reference" / "quatrix_async" / "index.html").read_text(encoding="utf-8")
    assert ":class:" not in quatrix and "<code>QuatrixSessionAuth</code>" in quatrix  # roles rendered
    security = (tmp_path / "site" / "security" / "index.html").read_text(encoding="utf-8")
    assert "Secret handling" in security  # SECURITY.md is included, not copied
    check_reference(tmp_path / "site" / "reference")
    assert (tmp_path / "site" / "getting-started" / "index.html").is_file()


def _text(html: str) -> str:
    return htmllib.unescape(re.sub(r"<[^>]+>", "", html))


def check_reference(site: Path) -> None:
    """The built reference: formatted signatures (one parameter a line), parameter tables, each
    client's groups under it, and no login internals anywhere."""
    pages = {p.parent.name: p.read_text(encoding="utf-8") for p in site.glob("*/index.html")}
    quatrix = pages["quatrix_async"]
    assert "QuatrixClient(\n    base_url: str | URL,\n    *,\n    api_key:" in _text(quatrix)
    for client, page, groups in (
        ("quatrix_async.QuatrixClient", "quatrix_async", ("session", "profile", "mfa", "users")),
        ("metalcloud_async.MetalCloudClient", "metalcloud_async", ("user", "users", "session")),
        ("mfa_common.xmfa.XMfaClient", "xmfa", ("session", "mfa", "user")),
    ):
        html = pages[page]
        for group in groups:
            assert f'id="{client}.{group}"' in html, f"{client}.{group} is not listed"
            assert f">client.{group}<" in html, f"{page}: no section for client.{group}"
    assert quatrix.count("Parameters:") >= 20, "the parameters are not in tables"
    assert 'class="doc-section-title">Parameters:</span>' in quatrix
    ids = {page: set(re.findall(r'id="([\w.]+)"', html)) for page, html in pages.items()}
    internal = ("login_flow", "is_rejection", "apply", "acquire", "release", "run_login", "provider_for")
    leaked = sorted(i for found in ids.values() for i in found if i.rsplit(".", 1)[-1] in internal)
    assert not leaked, leaked
