"""A faithful Quatrix API 1.0 fake for tests and demos (needs the ``fakes`` extra)::

    fake = QuatrixFake(clock=clock)
    fake.add_user("ops@example.com", "ops-password", totp_secret=SECRET, admin=True)

The fake is an ASGI app: in-process ``httpx.ASGITransport(app=fake)``; over a socket
``with mfa_common.testing.serve(fake) as server: ...``; from a shell
``python -m quatrix_async.testing --port 8080``.
"""

from __future__ import annotations

from mfa_common._extras import require_extra, run_as_module

require_extra("fakes", "the Quatrix fake", exit_on_missing=run_as_module())

from ._fake import FakeSession, FakeUser, MfaKind, QuatrixFake

__all__ = ["FakeSession", "FakeUser", "MfaKind", "QuatrixFake"]
