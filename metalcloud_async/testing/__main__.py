"""``python -m metalcloud_async.testing``: run the MetalCloud fake on a loopback port.

Seeded with demo accounts (printed at start, with their API keys and TOTP secrets: this is a
fake, for trying clients out). ``--accounts FILE`` adds accounts from a JSON list of objects
``{"email", "password", "displayName"?, "accessLevel"?, "totpSecret"?, "apiKey"?, "revision"?,
"suspended"?, "archived"?}``; ``--users N`` adds N plain users for listing; the fault-injection
flags (``--latency``, ``--fault-rate``, ``--seed``, ...) come from :mod:`mfa_common.testing`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mfa_common.testing import (
    add_control_arguments,
    controls_from_arguments,
    run_forever,
    server_argument_parser,
)

from ._fake import DEFAULT_FAILED_LOGIN_WINDOW, DEFAULT_MAX_FAILED_LOGINS, MetalCloudFake, nest_error_body

DEMO_ACCOUNTS: list[dict[str, Any]] = [
    {"email": "admin@metalcloud.test", "password": "admin-password", "accessLevel": "root"},
    {
        "email": "mfa@metalcloud.test",
        "password": "mfa-password",
        "accessLevel": "admin",
        "totpSecret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    },
    {"email": "user@metalcloud.test", "password": "user-password", "accessLevel": "user"},
]


PROG = "python -m metalcloud_async.testing"

DESCRIPTION = """\
Run the MetalCloud v2 fake (API keys, JWT login with 2FA, If-Match revisions, user
administration) on a loopback port. Seeded with demo accounts, printed at start with their
API keys and TOTP secrets (a test server)."""

EPILOG = """\
examples:
  python -m metalcloud_async.testing --port 8080 --users 2500
  python -m metalcloud_async.testing --port 0 --no-demo --accounts accounts.json --fault-rate 0.1

--accounts FILE adds accounts from a JSON list of objects:
  {"email": ..., "password": ..., "displayName"?, "accessLevel"? ("user", "admin", "root"),
   "totpSecret"? (base32: 2FA on), "apiKey"?, "revision"?, "suspended"?, "archived"?}"""


def build_parser() -> argparse.ArgumentParser:
    parser = server_argument_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument("--accounts", type=Path, metavar="FILE", help="JSON file with extra accounts")
    parser.add_argument("--users", type=int, default=0, metavar="N", help="seed this many plain users")
    parser.add_argument("--no-demo", action="store_true", help="do not create the demo accounts")
    parser.add_argument("--jwt-ttl", type=float, default=3600.0, help="JWT lifetime in seconds")
    parser.add_argument(
        "--max-failed-logins",
        type=int,
        default=DEFAULT_MAX_FAILED_LOGINS,
        help="failed logins of one address that lock it out (the real server's default: 5)",
    )
    parser.add_argument(
        "--failed-login-window",
        type=float,
        default=DEFAULT_FAILED_LOGIN_WINDOW,
        help="seconds the failed logins are counted over (default 300)",
    )
    add_control_arguments(parser)
    return parser


def load_accounts(fake: MetalCloudFake, accounts: Sequence[dict[str, Any]]) -> None:
    """Create ``accounts`` (the JSON shape of ``--accounts``) in ``fake``."""
    for account in accounts:
        fake.add_user(
            account["email"],
            account["password"],
            display_name=account.get("displayName"),
            access_level=account.get("accessLevel", "user"),
            user_id=account.get("id"),
            revision=int(account.get("revision", 1)),
            totp_secret=account.get("totpSecret"),
            api_key=account.get("apiKey"),
            suspended=bool(account.get("suspended", False)),
            archived=bool(account.get("archived", False)),
        )


def banner(fake: MetalCloudFake, emails: Sequence[str]) -> str:
    lines = ["MetalCloud v2 fake server. Accounts:"]
    for email in emails:
        user = fake.user(email)
        lines.append(f"  {user.email}  password={user.password}  access={user.access_level}")
        lines.append(f"      Authorization: Bearer {user.api_key}")
        if user.totp_secret:
            lines.append(f"      TOTP secret: {user.totp_secret}")
    extra = len(fake.users) - len(emails)
    if extra > 0:
        lines.append(f"  ... and {extra} seeded users")
    return "\n".join(lines)


def build_fake(args: argparse.Namespace) -> tuple[MetalCloudFake, list[str]]:
    """The fake the command line describes, and the e-mails of its listed accounts."""
    controls = controls_from_arguments(args, error_body=nest_error_body)
    fake = MetalCloudFake(
        controls=controls,
        jwt_ttl=args.jwt_ttl,
        seed=args.seed,
        max_failed_logins=args.max_failed_logins,
        failed_login_window=args.failed_login_window,
    )
    accounts: list[dict[str, Any]] = [] if args.no_demo else list(DEMO_ACCOUNTS)
    if args.accounts:
        loaded = json.loads(args.accounts.read_text())
        if not isinstance(loaded, list):
            raise ValueError("--accounts: expected a JSON list of accounts")
        accounts.extend(loaded)
    load_accounts(fake, accounts)
    if args.users:
        fake.seed_users(args.users)
    return fake, [a["email"] for a in accounts]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        fake, emails = build_fake(args)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    run_forever(fake.app, args.host, args.port, banner(fake, emails), prog=PROG)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
