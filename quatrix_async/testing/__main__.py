"""``python -m quatrix_async.testing``: run the Quatrix fake on a loopback port.

Seeded with demo accounts (printed at start); ``--accounts FILE`` replaces them with the
accounts of a JSON list of objects whose keys are the keywords of :meth:`QuatrixFake.add_user`
(``email``, ``password``, ``totp_secret``, ``mfa``, ``pin``, ``admin``, ``name``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mfa_common.testing import add_control_arguments, controls_from_arguments, server_argument_parser
from mfa_common.testing._accounts import load_accounts
from mfa_common.testing._server import run_command

from .. import _constants as C
from ._fake import QuatrixFake, _error_body

DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

#: The accounts the command-line fake starts with (keywords of ``QuatrixFake.add_user``).
DEMO_ACCOUNTS: tuple[dict[str, Any], ...] = (
    {"email": "admin@example.com", "password": "admin-password", "admin": True, "name": "Admin"},
    {"email": "alice@example.com", "password": "alice-password", "totp_secret": DEMO_TOTP_SECRET},
    {"email": "bob@example.com", "password": "bob-password", "pin": "12345"},
    {"email": "carol@example.com", "password": "carol-password"},
)


def banner(fake: QuatrixFake) -> str:
    """The accounts of ``fake`` as text, secrets included (a test server prints them on purpose)."""
    lines = [f"Quatrix fake (API base path {C.API_PREFIX}). Accounts:"]
    for user in fake.users:
        extra = ""
        if user.totp_secret:
            extra = f"  totp_secret {user.totp_secret}"
        elif user.pin:
            extra = f"  PIN {user.pin}"
        role = " (admin)" if user.admin else ""
        lines.append(f"  {user.email} / {user.password}{role}{extra}")
    lines.append(f"CAPTCHA after {fake.captcha_after} failed logins; unblock token: {fake.captcha_token}")
    return "\n".join(lines)


PROG = "python -m quatrix_async.testing"

DESCRIPTION = """\
Run the Quatrix API 1.0 fake (session login, 2FA and PIN, CAPTCHA, admin MFA calls) on a
loopback port. Seeded with demo accounts, printed at start with their secrets (a test server)."""

EPILOG = """\
examples:
  python -m quatrix_async.testing --port 8080
  python -m quatrix_async.testing --port 0 --accounts accounts.json --latency 0.05 --fault-rate 0.1

--accounts FILE holds a JSON list of objects with the keywords of QuatrixFake.add_user; they
replace the demo accounts:
  {"email": ..., "password": ... (required), "totp_secret": <base32: 2FA>, "mfa": true
   (2FA with a generated secret), "pin": <a PIN instead>, "admin": true | false, "name": ...}
In Python: QuatrixFake().add_user(email, password, totp_secret=... | pin=..., admin=...)."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (``--help`` lists them all)."""
    parser = server_argument_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument(
        "--accounts", type=Path, metavar="FILE", help="JSON file with accounts (replaces the demo ones)"
    )
    parser.add_argument("--captcha-after", type=int, default=3, help="failed logins before a CAPTCHA")
    parser.add_argument("--captcha-token", default="captcha-solved", help="the token that solves it")
    add_control_arguments(parser)
    return parser


def build_fake(args: argparse.Namespace) -> QuatrixFake:
    """The fake the command line describes (ValueError for a bad accounts file)."""
    fake = QuatrixFake(
        controls=controls_from_arguments(args, error_body=_error_body),
        captcha_after=args.captcha_after,
        captcha_token=args.captcha_token,
        seed=args.seed,
    )
    load_accounts(fake.add_user, args.accounts, DEMO_ACCOUNTS)
    return fake


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, build the fake and serve it until Ctrl-C."""

    def build(args: argparse.Namespace) -> tuple[QuatrixFake, str]:
        fake = build_fake(args)
        return fake, banner(fake)

    return run_command(build_parser(), argv, build)


if __name__ == "__main__":
    raise SystemExit(main())
