"""The protocol modules (what to send, how to read an answer) import no I/O module.

Each runs in a fresh interpreter in which the packages' ``__init__`` (which re-exports the
clients) is bypassed: the packages are registered as bare namespaces over their real folders,
so only what the protocol module itself imports, transitively, gets loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROTOCOL_MODULES = [
    "mfa_common.wire",
    "mfa_common.xmfa.protocol",
    "quatrix_async.protocol",
    "quatrix_async.errors",
    "metalcloud_async.protocol",
    "metalcloud_async.errors",
]

# I/O modules: the client with its attempt loop, the transports and their libraries.
FORBIDDEN = [
    "mfa_common.client",
    "mfa_common._transports",
    "mfa_common._transports.aiohttp",
    "mfa_common._transports.httpcore2",
    "aiohttp",
    "httpcore2",
]

_PROBE = """
import importlib, json, sys, types
root = sys.argv[1]
for name in ("mfa_common", "mfa_common.auth", "mfa_common.xmfa", "quatrix_async", "metalcloud_async"):
    package = types.ModuleType(name)
    package.__path__ = [root + "/" + name.replace(".", "/")]
    sys.modules[name] = package
importlib.import_module(sys.argv[2])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("module", PROTOCOL_MODULES)
def test_protocol_module_imports_no_io_module(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT), module],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    loaded = set(json.loads(out))
    assert module in loaded
    assert sorted(loaded.intersection(FORBIDDEN)) == []
