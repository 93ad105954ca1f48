"""The single entry point for tests, lint, types, benchmarks and the demo.

nox -s tests            # pytest under asyncio and Trio (pass pytest args after --)
nox -s lint types       # ruff check + ruff format --check; mypy --strict
nox -s bench            # every benchmark, PASS/FAIL per target, fails if one fails (-- --quick: smoke run)
nox -s demo             # the whole story against the fakes on loopback
nox -s docs             # the documentation site, built with --strict into site/
"""

from __future__ import annotations

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "types"]

PACKAGES = ["mfa_common", "quatrix_async", "metalcloud_async"]


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def types(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", *PACKAGES)


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    session.install("-e", ".[cli]")
    session.run("python", "-m", "examples.demo", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    # The CLI page is read from the tools themselves, so the cli extra is needed too.
    session.install("-e", ".[docs,cli]")
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        "site",
        *session.posargs,
        env={"NO_MKDOCS_2_WARNING": "1"},
    )
