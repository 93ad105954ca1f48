"""A faithful Quatrix API 1.0 fake for tests and demos (needs the ``fakes`` extra).

In-process: ``httpx.ASGITransport(QuatrixFake([...]))``; over a socket:
``with mfa_common.testing.serve(fake) as server: ...``; from a shell:
``python -m quatrix_async.testing --host 127.0.0.1 --port 8080``.
"""

from __future__ import annotations

from mfa_common._extras import require_extra, run_as_module

require_extra("fakes", "the Quatrix fake", exit_on_missing=run_as_module())

from ._fake import FakeAccount, FakeSession, FakeUser, MfaKind, QuatrixFake, create_app

__all__ = ["FakeAccount", "FakeSession", "FakeUser", "MfaKind", "QuatrixFake", "create_app"]
