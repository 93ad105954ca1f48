"""What an ``import`` of the SDK loads: the heavy parts load on first use (their speed is
measured in ``benchmarks/``; this checks the mechanism, in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

DEFERRED = ("aiohttp", "httpcore2", "asyncio", "cattrs")

PROGRAM = """
import json, sys
import quatrix_async, metalcloud_async, mfa_common.xmfa
before = [name for name in {deferred!r} if name in sys.modules]
from quatrix_async.models import ProfileResp, converter
profile = converter.structure({{"id": "u1", "account_status": "martian"}}, ProfileResp)
print(json.dumps({{"before": before, "cattrs_after": "cattrs" in sys.modules,
                  "status": profile.account_status}}))
"""


def test_importing_the_sdk_defers_transports_asyncio_and_cattrs() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(deferred=DEFERRED)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"] == []
    # The converter is built on first use and reads what it read before.
    assert result["cattrs_after"] is True
    assert result["status"] == "martian"


def test_a_lazy_converter_builds_once_on_first_use_and_forwards_the_rest() -> None:
    import cattrs

    from mfa_common.converters import LazyConverter, make_converter
    from mfa_common.xmfa.models import Role, UserAuth

    builds: list[cattrs.Converter] = []

    def build() -> cattrs.Converter:
        builds.append(make_converter("snake"))
        return builds[-1]

    lazy = LazyConverter(build)
    assert builds == []
    user = lazy.structure({"token": "t", "id": "1", "user": "u", "role": "owner"}, UserAuth)
    assert user.role is Role.OWNER
    assert lazy.unstructure(Role.OWNER) == "owner"
    assert lazy.register_structure_hook == builds[0].register_structure_hook
    assert lazy.converter is builds[0] and len(builds) == 1
