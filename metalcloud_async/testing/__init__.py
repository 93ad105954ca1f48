"""A faithful MetalCloud v2 fake for tests and demos (needs the ``fakes`` extra)::

    fake = MetalCloudFake(clock=clock)
    alice = fake.add_user("alice@example.test", "alice-password", access_level="admin")
    client = MetalCloudClient("http://fake", api_key=alice.api_key,
                              transport=httpx.ASGITransport(app=fake))

The fake is an ASGI app: in-process ``httpx.ASGITransport(app=fake)``; over a socket
``with mfa_common.testing.serve(fake) as server: ...``; from a shell
``python -m metalcloud_async.testing --port 8080``.
"""

from __future__ import annotations

from mfa_common._extras import require_extra, run_as_module

require_extra("fakes", "the MetalCloud fake", exit_on_missing=run_as_module())

from ._fake import ADMIN_LEVELS, FakeUser, MetalCloudFake, SentEmail, qr_data_uri
from ._wire import nest_error_body

__all__ = [
    "ADMIN_LEVELS",
    "FakeUser",
    "MetalCloudFake",
    "SentEmail",
    "nest_error_body",
    "qr_data_uri",
]
