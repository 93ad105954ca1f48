"""``python -m quatrix_async.testing``: run the Quatrix fake on a loopback port.

Seeded with demo accounts (printed at start); ``--accounts FILE`` loads others from JSON: a list
of ``{"email", "password", "mfa": "none" | "2fa" | "pin", "secret", "pin", "admin", "name"}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mfa_common.testing import (
    add_control_arguments,
    controls_from_arguments,
    run_forever,
    server_argument_parser,
)

from .. import _constants as C
from ._fake import FakeUser, QuatrixFake, _error_body

DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

DEMO_ACCOUNTS: list[dict[str, Any]] = [
    {"email": "admin@example.com", "password": "admin-password", "admin": True, "name": "Admin"},
    {"email": "alice@example.com", "password": "alice-password", "mfa": "2fa", "secret": DEMO_TOTP_SECRET},
    {"email": "bob@example.com", "password": "bob-password", "mfa": "pin", "pin": "12345"},
    {"email": "carol@example.com", "password": "carol-password"},
]


def users_from_json(accounts: list[dict[str, Any]]) -> list[FakeUser]:
    """FakeUsers from account dicts (see the module docstring)."""
    users = []
    for entry in accounts:
        mfa = entry.get("mfa", "none")
        if mfa not in ("none", "2fa", "pin"):
            raise SystemExit(f"account {entry.get('email')!r}: mfa must be none, 2fa or pin")
        if mfa == "2fa" and not entry.get("secret"):
            raise SystemExit(f"account {entry.get('email')!r}: a 2fa account needs a base32 secret")
        if mfa == "pin" and not entry.get("pin"):
            raise SystemExit(f"account {entry.get('email')!r}: a pin account needs a pin")
        users.append(
            FakeUser(
                email=str(entry["email"]),
                password=str(entry["password"]),
                mfa=mfa,
                secret=entry.get("secret"),
                pin=entry.get("pin"),
                admin=bool(entry.get("admin", False)),
                name=str(entry.get("name", "")),
            )
        )
    return users


def banner(fake: QuatrixFake, accounts: list[dict[str, Any]]) -> str:
    lines = [f"Quatrix fake (API base path {C.API_PREFIX}). Accounts:"]
    for entry in accounts:
        extra = ""
        if entry.get("mfa") == "2fa":
            extra = f"  2FA secret {entry['secret']}"
        elif entry.get("mfa") == "pin":
            extra = f"  PIN {entry['pin']}"
        role = " (admin)" if entry.get("admin") else ""
        lines.append(f"  {entry['email']} / {entry['password']}{role}{extra}")
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

--accounts FILE holds a JSON list of accounts (they replace the demo ones):
  {"email": ..., "password": ..., "mfa": "none" | "2fa" | "pin", "secret": <base32, for 2fa>,
   "pin": <for pin>, "admin": true | false, "name": ...}
In Python: QuatrixFake().add_account(email, password, totp_secret=... | pin=..., admin=...)."""


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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    accounts = json.loads(args.accounts.read_text()) if args.accounts else DEMO_ACCOUNTS
    if not isinstance(accounts, list):
        raise SystemExit("--accounts must hold a JSON list of accounts")
    fake = QuatrixFake(
        users_from_json(accounts),
        controls=controls_from_arguments(args, error_body=_error_body),
        captcha_after=args.captcha_after,
        captcha_token=args.captcha_token,
        seed=args.seed,
    )
    run_forever(fake, args.host, args.port, banner(fake, accounts), prog=PROG)


if __name__ == "__main__":
    main()
