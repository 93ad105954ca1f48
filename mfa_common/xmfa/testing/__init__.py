"""A faithful X-MFA-Token fake (ShellHub ``MfaApi`` and login) for tests and demos (needs the
``fakes`` extra)::

    fake = XMfaFake(clock=clock)
    fake.add_user("bob", "bob-password", totp_secret=SECRET)

The fake is an ASGI app: in-process ``httpx.ASGITransport(app=fake)``; over a socket
``with mfa_common.testing.serve(fake) as server: ...``; from a shell
``python -m mfa_common.xmfa.testing --port 8080``. The machinery every fake shares (fault
injection, loopback serving, TOTP and JWT) is :mod:`mfa_common.testing`.
"""

from __future__ import annotations

from mfa_common._extras import require_extra, run_as_module

require_extra("fakes", "the X-MFA-Token fake", exit_on_missing=run_as_module())

from ._fake import DEMO_ACCOUNTS, FakeUser, SentEmail, XMfaFake

__all__ = ["DEMO_ACCOUNTS", "FakeUser", "SentEmail", "XMfaFake"]
