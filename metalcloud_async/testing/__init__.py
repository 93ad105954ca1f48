"""A faithful MetalCloud v2 fake server (ASGI) for tests and demos.

In-process::

    fake = MetalCloudFake(clock=clock)
    alice = fake.add_user("alice@example.test", "pw", access_level="admin")
    client = MetalCloudClient("http://fake", api_key=alice.api_key,
                              transport=httpx.ASGITransport(fake.app))

Over a real socket: ``with mfa_common.testing.serve(fake.app) as server: ...`` or from the
command line: ``python -m metalcloud_async.testing --host 127.0.0.1 --port 8080``.
Needs the ``fakes`` extra (Starlette, uvicorn).
"""

from __future__ import annotations

from mfa_common._extras import require_extra, run_as_module

require_extra("fakes", "the MetalCloud fake", exit_on_missing=run_as_module())

from ._fake import (
    ADMIN_LEVELS,
    FakeUser,
    MetalCloudFake,
    OutboxMessage,
    create_metalcloud_app,
    nest_error_body,
    qr_data_uri,
)

__all__ = [
    "ADMIN_LEVELS",
    "FakeUser",
    "MetalCloudFake",
    "OutboxMessage",
    "create_metalcloud_app",
    "nest_error_body",
    "qr_data_uri",
]
