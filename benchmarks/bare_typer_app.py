"""The reference of the start-up rows of :mod:`benchmarks.code_cost`: a bare typer application
with three commands (an option, a flag, an argument), as a script a user would write. A tool's
``--help`` is read as a multiple of this one's, measured in the same run."""

from __future__ import annotations

import typer

app = typer.Typer(help="A bare typer application with three commands.")


@app.command()
def one(name: str = typer.Option("x", help="A name.")) -> None:
    """The first command."""


@app.command()
def two(flag: bool = typer.Option(False, "--flag", help="A flag.")) -> None:
    """The second command."""


@app.command()
def three(path: str = typer.Argument(..., help="A path.")) -> None:
    """The third command."""


if __name__ == "__main__":
    app()
