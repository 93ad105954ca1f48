"""The README's MetalCloud administration block runs as written against the fake."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.testing import serve

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parents[2] / "README.md"


def admin_block() -> str:
    text = README.read_text()
    match = re.search(r"<!-- metalcloud-admin -->\n```python\n(.*?)```", text, re.S)
    assert match, "the README lost its MetalCloud administration block"
    return match.group(1)


async def test_readme_admin_block_runs_against_the_fake(
    fake: MetalCloudFake, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import metalcloud_async

    real_client = metalcloud_async.MetalCloudClient
    with serve(fake) as server:
        source = admin_block().replace("https://metal.example.com", server.base_url)
        code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

        def client(*args: Any, **kwargs: Any) -> Any:
            # The fake's FakeClock drives the TOTP codes of the block's enrolment and login.
            return real_client(*args, clock=clock, **kwargs)

        metalcloud_async.MetalCloudClient = client  # type: ignore[misc]
        try:
            monkeypatch.setenv("METALCLOUD_API_KEY", fake.user("root@example.test").api_key)
            namespace: dict[str, Any] = {}
            result = eval(code, namespace)
            if result is not None:
                await result
        finally:
            metalcloud_async.MetalCloudClient = real_client  # type: ignore[misc]
    bob = fake.user("bob@example.com")
    assert namespace["me"].email == "bob@example.com"
    assert bob.totp_secret == namespace["new_secret"].secret_2fa.reveal()
    assert not bob.authenticator_must_change and len(namespace["keys"]) == 1
    assert namespace["config"].revision == 2 and bob.config_extra["language"] == "ro"
