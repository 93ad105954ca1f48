"""What an ``import`` of the SDK loads: the heavy parts load on first use (their speed is
measured in ``benchmarks/``; this checks the mechanism, in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

DEFERRED = ("aiohttp", "httpcore2", "asyncio", "cattrs", "anyio")

PROGRAM = """
import json, sys
import quatrix_async, metalcloud_async, mfa_common.xmfa
before = [name for name in {deferred!r} if name in sys.modules]
from quatrix_async.models import ProfileResp, converter
profile = converter.structure({{"id": "u1", "account_status": "martian"}}, ProfileResp)
print(json.dumps({{"before": before, "cattrs_after": "cattrs" in sys.modules,
                  "status": profile.account_status}}))
"""


def _run(program: str) -> dict[str, Any]:
    """Run ``program`` in a fresh interpreter; its last line of output, as JSON."""
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_importing_the_sdk_defers_transports_asyncio_anyio_and_cattrs() -> None:
    result = _run(PROGRAM.format(deferred=DEFERRED))
    assert result["before"] == []
    # The converter is built on first use and reads what it read before.
    assert result["cattrs_after"] is True
    assert result["status"] == "martian"


QUATRIX_PROGRAM = """
import json, sys
from quatrix_async import QuatrixClient
import quatrix_async
deferred = ("anyio", "aiohttp", "cattrs", "pyotp", "quatrix_async.models", "mfa_common.otpauth")
before = [name for name in deferred if name in sys.modules]
listed = "ProfileResp" in dir(quatrix_async) and "ProfileResp" in quatrix_async.__all__
profile_cls = quatrix_async.ProfileResp
import quatrix_async.models as models
import mfa_common, mfa_common.otpauth as otpauth
namespace = {{}}
exec("from quatrix_async import *", namespace)
print(json.dumps({{
    "before": before,
    "listed": listed,
    "same_class": profile_cls is models.ProfileResp,
    "every_model": all(getattr(quatrix_async, n) is getattr(models, n) for n in quatrix_async.__all__
                       if getattr(getattr(models, n, None), "__module__", None) == models.__name__),
    "missing_from_star": sorted(set(quatrix_async.__all__) - set(namespace)),
    "undefined": sorted(n for n in dir(quatrix_async) if not hasattr(quatrix_async, n)),
    "unknown_raises": not hasattr(quatrix_async, "NoSuchModel"),
    "otpauth": mfa_common.parse_otpauth_uri is otpauth.parse_otpauth_uri and "OtpauthUri" in dir(mfa_common),
}}))
"""


def test_import_quatrix_async_leaves_anyio_pyotp_and_the_models_for_first_use() -> None:
    # A regression test for an eager import: building a client needs neither the models nor
    # anyio, and the model names still resolve, list and star-import from the package.
    result = _run(QUATRIX_PROGRAM.format())
    assert result["before"] == []
    assert result["listed"] is True
    assert result["same_class"] is True
    assert result["every_model"] is True
    assert result["missing_from_star"] == []
    assert result["undefined"] == []
    assert result["unknown_raises"] is True
    assert result["otpauth"] is True


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
