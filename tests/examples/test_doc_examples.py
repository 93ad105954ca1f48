"""The docs site cannot lie: every Python block of its pages runs, and every command of the
pages and of the README exists. (The README's own Python blocks run as written, in a virtual
environment holding only the user extras: ``test_readme.py``.)

Python blocks
    Each ``python`` block of the pages under docs/ runs on its own against the shipped fakes
    served on loopback. The hosts the pages use are replaced by the fakes' addresses
    (:data:`HOSTS`); a block naming any other non-loopback URL fails, so nothing leaves
    127.0.0.1. A block may read the environment variables of the "Try the examples" settings
    (the accounts behind them exist on the fakes); a name that does not exist fails the test.
    Blocks with a top-level ``await`` run as in ``python -m asyncio``. A block that defines an
    ASGI ``app`` is then served with its lifespan, and each of its GET routes without path
    parameters must answer 200. A block that cannot run unattended (it waits for a person) is
    marked ``<!-- not run: why -->`` on the line before it: it is compiled and its imports are
    executed, so a name it imports that does not exist still fails.

Commands
    Every command in the ``console``/``bash`` blocks and in inline code of the README and the
    pages is checked against the real thing: the CLI subcommands and options are read from the
    click command that each console script of pyproject.toml runs, ``python -m X`` must exist
    and accept the flags shown (its ``--help`` lists them), ``nox -s S`` sessions exist in
    noxfile.py, and ``pip install '.[extra]'`` extras exist in pyproject.toml.

New blocks are picked up by themselves; a block that needs another account or host adds it to
:func:`world` and :data:`HOSTS`.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import click
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from metalcloud_async.testing import MetalCloudFake
from mfa_common.replay_guard import STEP_REGISTRY
from mfa_common.testing import generate_base32_secret, serve
from mfa_common.xmfa.testing import DEMO_ACCOUNTS as XMFA_DEMO_ACCOUNTS
from mfa_common.xmfa.testing import XMfaFake
from quatrix_async.testing import QuatrixFake
from quatrix_async.testing.__main__ import DEMO_ACCOUNTS as QUATRIX_DEMO_ACCOUNTS

from .markdown_blocks import Block, python_blocks, shell_commands

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: Every Markdown file whose commands are checked: the README and the docs site.
DOC_FILES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
#: The pages whose Python blocks run here (the README's run in ``test_readme.py``).
PAGES = sorted((ROOT / "docs").rglob("*.md"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

#: The hosts the README shows, and the fake that stands in for each.
HOSTS = {
    "https://acme.quatrix.it": "quatrix",
    "https://metal.example.com": "metalcloud",
    "http://127.0.0.1:8080": "xmfa",  # python -m mfa_common.xmfa.testing --port 8080
}
BLOCK_TIMEOUT = 90.0

QUATRIX_ADMIN = "ops@acme.example"
METALCLOUD_ADMIN = "admin@example.com"  # the owner of METALCLOUD_API_KEY, no 2FA
METALCLOUD_MFA_USER = "ops@example.com"  # logs in with METALCLOUD_PASSWORD + TOTP


@dataclass
class World:
    urls: dict[str, str]
    env: dict[str, str]
    quatrix: QuatrixFake
    metalcloud: MetalCloudFake
    xmfa: XMfaFake


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    """The three fakes on loopback, with the accounts the README's blocks log in with."""
    quatrix_secret = generate_base32_secret(20)  # fresh per test: no wait for a new time step
    quatrix = QuatrixFake()
    for account in QUATRIX_DEMO_ACCOUNTS:
        quatrix.add_user(**account)
    quatrix.add_user(QUATRIX_ADMIN, "ops-password", totp_secret=quatrix_secret, admin=True, name="Ops")
    for n in range(3):
        quatrix.add_user(f"user{n}@acme.example", f"user-password-{n}")

    metalcloud_secret = generate_base32_secret(20)
    metalcloud = MetalCloudFake()
    admin = metalcloud.add_user(METALCLOUD_ADMIN, "admin-password", access_level="root")
    metalcloud.add_user(
        METALCLOUD_MFA_USER, "ops-password", access_level="admin", totp_secret=metalcloud_secret
    )
    metalcloud.seed_users(60)

    xmfa = XMfaFake()
    for account in XMFA_DEMO_ACCOUNTS:
        xmfa.add_user(**dict(account))

    # The README's demo TOTP secret may have been used by another test of this process within
    # the current time step; a user running a snippet starts a fresh process.
    STEP_REGISTRY.clear()
    monkeypatch.chdir(tmp_path)  # files a block writes (recovery codes) land here
    with serve(quatrix) as q, serve(metalcloud) as m, serve(xmfa) as x:
        urls = {"quatrix": q.base_url, "metalcloud": m.base_url, "xmfa": x.base_url}
        env = {
            "QUATRIX_HOST": q.base_url,
            "QUATRIX_EMAIL": QUATRIX_ADMIN,
            "QUATRIX_PASSWORD": "ops-password",
            "QUATRIX_TOTP_SECRET": quatrix_secret,
            "METALCLOUD_URL": m.base_url,
            "METALCLOUD_API_KEY": admin.api_key,
            "METALCLOUD_EMAIL": METALCLOUD_MFA_USER,
            "METALCLOUD_PASSWORD": "ops-password",
            "METALCLOUD_TOTP_SECRET": metalcloud_secret,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield World(urls, env, quatrix, metalcloud, xmfa)


# --------------------------------------------------------------------------- Python blocks


def _label(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


BLOCKS = [block for path in PAGES for block in python_blocks(path, _label(path))]
_URL = re.compile(r"""https?://[^\s"'`)]+""")


def _localised(block: Block, world: World) -> str:
    source = block.text
    for host, fake in HOSTS.items():
        source = source.replace(host, world.urls[fake])
    foreign = [
        url
        for url in _URL.findall(source)
        if not re.match(r"https?://(127\.0\.0\.1|\[::1\]|localhost)([:/]|$)", url)
    ]
    assert not foreign, f"{block.where} names hosts no fake serves: {foreign} (add them to HOSTS)"
    return source


def _run_block(block: Block, source: str) -> dict[str, Any]:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    code = compile(source, block.where, "exec", flags=flags, dont_inherit=True)
    namespace: dict[str, Any] = {"__name__": "readme_block"}
    result = eval(code, namespace)  # the block itself: exec-mode code, a coroutine if it awaits
    if inspect.iscoroutine(result):
        coroutine = result

        async def main() -> None:
            with anyio.fail_after(BLOCK_TIMEOUT):
                await coroutine

        asyncio.run(main())
    return namespace


def _serve_app(block: Block, app: Starlette) -> None:
    """Serve a block's ASGI app with its lifespan; each plain GET route must answer 200."""
    paths = [
        route.path
        for route in app.routes
        if isinstance(route, Route) and "GET" in (route.methods or ()) and "{" not in route.path
    ]
    assert paths, f"{block.where} defines an app without GET routes"
    with serve(app, lifespan="on") as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        for path in paths:
            response = http.get(path)
            assert response.status_code == 200, f"{block.where}: GET {path} -> {response.status_code}"


def _run_imports(block: Block) -> None:
    """A block that is not run: compiled, and its top-level imports executed."""
    tree = ast.parse(block.text, filename=block.where)
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports, f"{block.where} is not run and imports nothing: nothing of it is checked"
    exec(compile(ast.Module(body=imports, type_ignores=[]), block.where, "exec"), {})


def test_the_docs_have_python_blocks() -> None:
    assert len(BLOCKS) > 10


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_python_block_runs(block: Block, world: World) -> None:
    if block.not_run:
        _run_imports(block)
        return
    namespace = _run_block(block, _localised(block, world))
    app = namespace.get("app")
    if isinstance(app, Starlette):
        _serve_app(block, app)


def test_a_block_naming_something_that_does_not_exist_fails(world: World) -> None:
    """The runner really runs the code: the old enrolment snippet's ``print_qr`` without its
    import is a NameError, and a missing attribute of a client is an AttributeError."""
    broken = Block(README, 1, "python", "from mfa_common.xmfa import XMfaClient\nprint_qr('x')\n")
    with pytest.raises(NameError, match="print_qr"):
        _run_block(broken, _localised(broken, world))
    awaited = Block(
        README,
        2,
        "python",
        'from quatrix_async import QuatrixClient\nasync with QuatrixClient("https://acme.quatrix.it") as c:\n'
        "    await c.no_such_group.get()\n",
    )
    with pytest.raises(AttributeError, match="no_such_group"):
        _run_block(awaited, _localised(awaited, world))


def test_a_block_naming_an_unknown_host_is_refused(world: World) -> None:
    block = Block(README, 3, "python", 'url = "https://elsewhere.example.net/api"\n')
    with pytest.raises(AssertionError, match="elsewhere"):
        _localised(block, world)


# --------------------------------------------------------------------------- commands


class _Captured(BaseException):
    def __init__(self, command: Any) -> None:
        super().__init__()
        self.command = command


def _command_classes() -> list[type]:
    """click's ``Command``, and the copy typer vendors when it has one."""
    classes: list[type] = [click.Command]
    vendored = sys.modules.get("typer._click")
    if vendored is not None and getattr(vendored, "Command", None) not in (None, click.Command):
        classes.append(vendored.Command)
    return classes


@cache
def cli_command(script: str) -> Any:
    """The click command the console script ``script`` runs, caught as it is invoked."""
    module_name, _, attribute = PYPROJECT["project"]["scripts"][script].partition(":")
    entry = getattr(importlib.import_module(module_name), attribute)
    # The tools import typer only when they run (to name a missing extra): load it now, so that
    # the Command class it vendors is known, and patched, whichever tool the docs show first.
    with contextlib.suppress(ImportError):
        importlib.import_module("typer")

    def capture(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise _Captured(self)

    with contextlib.ExitStack() as stack:
        for cls in _command_classes():
            stack.enter_context(mock.patch.object(cls, "__call__", capture))
        stack.enter_context(mock.patch.object(sys, "argv", [script]))
        try:
            entry()
        except _Captured as caught:
            return caught.command
    raise AssertionError(f"{script}: the entry point ran no click command")


def _is_group(command: Any) -> bool:
    return callable(getattr(command, "list_commands", None))


def _subcommand(group: Any, name: str) -> Any:
    return group.get_command(group.context_class(group), name)


def _options(chain: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for command in chain:
        for param in command.params:
            if getattr(param, "param_type_name", None) == "option":
                for name in (*param.opts, *param.secondary_opts):
                    found[name] = param
    return found


def cli_problems(script: str, argv: list[str]) -> list[str]:
    """What in ``argv`` the CLI does not have: unknown subcommands and options."""
    command = cli_command(script)
    chain = [command]
    path = [script]
    problems: list[str] = []
    takes_value = False
    for token in argv:
        if takes_value:
            takes_value = False
            continue
        if token == "--":
            break
        if token.startswith("-") and token != "-":
            name = token.split("=", 1)[0]
            if name in ("--help", "-h"):
                continue
            option = _options(chain).get(name)
            if option is None:
                problems.append(f"`{' '.join(path)}` has no option {name}")
            elif "=" not in token and not option.is_flag and not option.count:
                takes_value = True
            continue
        if _is_group(command):
            sub = _subcommand(command, token)
            if sub is None:
                problems.append(f"`{' '.join(path)}` has no command {token!r}")
                return problems
            command = sub
            chain.append(sub)
            path.append(token)
    if _is_group(command) and len(path) > 1 and "--help" not in argv:
        problems.append(f"`{' '.join(path)}` needs a subcommand")
    return problems


@cache
def module_help(module: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"COLUMNS": "200", "PATH": "", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, f"python -m {module} --help failed: {result.stderr[-500:]}"
    return result.stdout


@cache
def nox_sessions() -> set[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if ast.unparse(target) == "nox.session":
                custom = [
                    k.value.value
                    for k in getattr(decorator, "keywords", [])
                    if k.arg == "name" and isinstance(k.value, ast.Constant)
                ]
                names.add(custom[0] if custom else node.name)
    return names


def _script_for_module(module: str) -> str | None:
    """The console script that ``python -m module`` is (same entry point package)."""
    for script, entry in PYPROJECT["project"]["scripts"].items():
        if entry.split(":")[0].split(".")[0] == module:
            return script
    return None


def command_problems(argv: list[str]) -> list[str]:
    """Problems with one README command; commands of other programs are not checked."""
    while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0]):
        argv = argv[1:]  # VAR=value cmd ...
    if not argv:
        return []
    program, args = Path(argv[0]).name, argv[1:]
    if program in PYPROJECT["project"]["scripts"]:
        return cli_problems(program, args)
    if re.fullmatch(r"python(3(\.\d+)?)?", program) and args[:1] == ["-m"] and len(args) > 1:
        module, rest = args[1], args[2:]
        if module in ("venv", "pip", "asyncio"):
            return command_problems(["pip", *rest]) if module == "pip" else []
        script = _script_for_module(module)
        if script is not None:
            return cli_problems(script, rest)
        if importlib.util.find_spec(module) is None:
            return [f"no module {module}"]
        text = module_help(module)
        flags = {t.split("=", 1)[0] for t in rest if t.startswith("--")}
        return [f"`python -m {module}` has no option {f}" for f in sorted(flags) if f not in text]
    if program == "nox":
        problems = []
        for index, token in enumerate(args):
            if token == "--":
                break
            if token in ("-s", "--session", "--sessions"):
                for name in args[index + 1 :]:
                    if name.startswith("-"):
                        break
                    if name not in nox_sessions():
                        problems.append(f"noxfile.py has no session {name!r}")
        return problems
    if program == "pip" and args[:1] == ["install"]:
        extras = PYPROJECT["project"]["optional-dependencies"]
        problems = []
        for token in args[1:]:
            match = re.fullmatch(r"(?:\.|mfa-sdks)\[([^\]]+)\]", token)
            if match:
                problems += [f"no extra {e!r}" for e in match[1].split(",") if e.strip() not in extras]
        return problems
    return []


COMMANDS = [command for path in DOC_FILES for command in shell_commands(path, _label(path))]


def test_the_readme_shows_commands_of_each_kind() -> None:
    programs = {Path(argv[0]).name for _, argv in COMMANDS}
    assert {"quatrix-async", "metalcloud-async", "nox", "pip"} <= programs


def test_a_block_marked_not_run_still_has_its_imports_checked() -> None:
    good = Block(README, 4, "python", "from quatrix_async import QuatrixClient\nQuatrixClient(input())\n")
    _run_imports(good)
    bad = Block(README, 5, "python", "from quatrix_async import print_qr\n")
    with pytest.raises(ImportError, match="print_qr"):
        _run_imports(bad)


def test_every_command_the_docs_show_exists() -> None:
    problems = [f"{where}: {p}" for where, argv in COMMANDS for p in command_problems(argv)]
    assert not problems, "\n".join(problems)


def test_the_command_check_reads_the_cli_and_catches_what_is_not_there() -> None:
    root = cli_command("quatrix-async")
    assert _is_group(root)
    first = sorted(root.list_commands(root.context_class(root)))[0]
    assert not command_problems(["quatrix-async", first, "--help"])
    assert command_problems(["quatrix-async", "no-such-command"]) == [
        "`quatrix-async` has no command 'no-such-command'"
    ]
    assert command_problems(["metalcloud-async", "--no-such-flag"])
    assert command_problems(["python", "-m", "quatrix_async.testing", "--no-such-flag"])
    assert not command_problems(["python", "-m", "quatrix_async.testing", "--port", "8080"])
    assert command_problems(["nox", "-s", "no_such_session"])
    assert command_problems(["pip", "install", ".[no-such-extra]"])
    assert not command_problems(["pip", "install", ".[cli]"])
