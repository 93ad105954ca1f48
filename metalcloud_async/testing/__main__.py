"""``python -m metalcloud_async.testing``: run the MetalCloud fake on a loopback port.

Seeded with demo accounts (printed at start, with their API keys and TOTP secrets: this is a
fake, for trying clients out). ``--accounts FILE`` replaces them with the accounts of a JSON list
of objects whose keys are the keywords of :meth:`MetalCloudFake.add_user` (``email``,
``password``, ``display_name``, ``access_level``, ``totp_secret``, ``api_key``, ``user_id``,
...); ``--users N`` adds N plain users for listing; the fault-injection flags (``--latency``,
``--fault-rate``, ``--seed``, ...) come from :mod:`mfa_common.testing`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mfa_common.testing import add_control_arguments, controls_from_arguments, server_argument_parser
from mfa_common.testing._accounts import load_accounts
from mfa_common.testing._server import run_command

from ._fake import DEFAULT_FAILED_LOGIN_WINDOW, DEFAULT_MAX_FAILED_LOGINS, FakeUser, MetalCloudFake
from ._wire import nest_error_body

#: The accounts the command-line fake starts with (keywords of ``MetalCloudFake.add_user``).
DEMO_ACCOUNTS: tuple[dict[str, Any], ...] = (
    {"email": "admin@metalcloud.test", "password": "admin-password", "access_level": "root"},
    {
        "email": "mfa@metalcloud.test",
        "password": "mfa-password",
        "access_level": "admin",
        "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    },
    {"email": "user@metalcloud.test", "password": "user-password", "access_level": "user"},
)


PROG = "python -m metalcloud_async.testing"

DESCRIPTION = """\
Run the MetalCloud v2 fake (API keys, JWT login with 2FA, If-Match revisions, user
administration) on a loopback port. Seeded with demo accounts, printed at start with their
API keys and TOTP secrets (a test server)."""

EPILOG = """\
examples:
  python -m metalcloud_async.testing --port 8080 --users 2500
  python -m metalcloud_async.testing --port 0 --no-demo --accounts accounts.json --fault-rate 0.1

--accounts FILE holds a JSON list of objects with the keywords of MetalCloudFake.add_user; they
replace the demo accounts:
  {"email": ..., "password": ... (required), "display_name", "access_level": "user" | "admin"
   | "root", "totp_secret": <base32: 2FA on>, "mfa": true (a generated secret), "api_key",
   "user_id", "revision", "suspended", "archived", "account_id", "email_verified", ...}"""


def build_parser() -> argparse.ArgumentParser:
    parser = server_argument_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument("--accounts", type=Path, metavar="FILE", help="JSON file with extra accounts")
    parser.add_argument("--users", type=int, default=0, metavar="N", help="seed this many plain users")
    parser.add_argument("--no-demo", action="store_true", help="start without the demo accounts")
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


def banner(fake: MetalCloudFake, users: Sequence[FakeUser]) -> str:
    """``users`` of ``fake`` as text, secrets included (a test server prints them on purpose)."""
    lines = ["MetalCloud v2 fake server. Accounts:"]
    for user in users:
        lines.append(f"  {user.email}  password={user.password}  access={user.access_level}")
        lines.append(f"      Authorization: Bearer {user.api_key}")
        if user.totp_secret:
            lines.append(f"      totp_secret {user.totp_secret}")
    extra = len(fake.users) - len(users)
    if extra > 0:
        lines.append(f"  ... and {extra} seeded users")
    return "\n".join(lines)


def build_fake(args: argparse.Namespace) -> tuple[MetalCloudFake, list[FakeUser]]:
    """The fake the command line describes, and its listed accounts (ValueError for a bad
    accounts file)."""
    fake = MetalCloudFake(
        controls=controls_from_arguments(args, error_body=nest_error_body),
        jwt_ttl=args.jwt_ttl,
        seed=args.seed,
        max_failed_logins=args.max_failed_logins,
        failed_login_window=args.failed_login_window,
    )
    users = load_accounts(fake.add_user, args.accounts, () if args.no_demo else DEMO_ACCOUNTS)
    if args.users:
        fake.seed_users(args.users)
    return fake, users


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, build the fake and serve it until Ctrl-C."""

    def build(args: argparse.Namespace) -> tuple[MetalCloudFake, str]:
        fake, users = build_fake(args)
        return fake, banner(fake, users)

    return run_command(build_parser(), argv, build)


if __name__ == "__main__":
    raise SystemExit(main())
