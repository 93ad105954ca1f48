"""Run the X-MFA-Token fake on a loopback port so any HTTP client can be tried against it.

    python -m mfa_common.testing --host 127.0.0.1 --port 8080
    python -m mfa_common.testing --accounts accounts.json --latency 0.05 --fault-rate 0.1 --seed 7
    python -m mfa_common.testing --auth-failure-status 401 --mfa-token-ttl 0

``--accounts`` names a JSON list of objects with the keywords of ``XMfaFake.add_user``
(``username``, ``password``, ``email``, ``recovery_email``, ``mfa``, ``mfa_secret``,
``recovery_codes``, ``name``, ``admin``); without it the demo accounts are used. The accounts,
their TOTP secrets and recovery codes are printed at start (this is a test server).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from mfa_common.testing._controls import add_control_arguments, controls_from_arguments
from mfa_common.testing._server import run_forever, server_argument_parser
from mfa_common.testing.xmfa_fake import DEMO_ACCOUNTS, SentEmail, XMfaFake, create_xmfa_app

_ACCOUNT_KEYS = frozenset(
    {
        "username",
        "password",
        "email",
        "recovery_email",
        "mfa",
        "mfa_secret",
        "recovery_codes",
        "name",
        "admin",
    }
)


def load_accounts(path: str) -> list[dict[str, Any]]:
    """Read and check an accounts file (a JSON list of objects)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, list):
        raise SystemExit(f"{path}: expected a JSON list of account objects")
    accounts: list[dict[str, Any]] = []
    for position, entry in enumerate(data):
        if not isinstance(entry, Mapping) or "username" not in entry or "password" not in entry:
            raise SystemExit(f"{path}: entry {position} needs at least 'username' and 'password'")
        unknown = set(entry) - _ACCOUNT_KEYS
        if unknown:
            raise SystemExit(f"{path}: entry {position} has unknown keys: {', '.join(sorted(unknown))}")
        accounts.append(dict(entry))
    return accounts


def banner(fake: XMfaFake) -> str:
    """The accounts of ``fake`` as text, secrets included (a test server prints them on purpose)."""
    lines = ["X-MFA-Token fake server (ShellHub MfaApi). Accounts:"]
    for username in sorted(u.username for u in fake.users):
        user = fake.user(username)
        lines.append(f"  {user.username} / {user.password}  <{user.email}>  id={user.id}")
        if user.mfa_secret:
            lines.append(f"    MFA on: TOTP secret {user.mfa_secret} (SHA1, 6 digits, 30 s)")
            lines.append(f"    recovery codes: {' '.join(user.recovery_codes)}")
        else:
            lines.append("    MFA off")
    lines.append("MFA-reset e-mails are printed here instead of being sent.")
    return "\n".join(lines)


def print_mail(mail: SentEmail) -> None:
    """Show a reset e-mail on the console (the fake sends no real mail)."""
    print(f"[mail] to {mail.to}: your {mail.kind} MFA reset code is {mail.code}", flush=True)


PROG = "python -m mfa_common.testing"

DESCRIPTION = """\
Run the X-MFA-Token fake (ShellHub MfaApi: password login, X-MFA-Token, TOTP, recovery codes,
MFA reset by e-mail) on a loopback port, so any HTTP client can be tried against it.
The accounts, their TOTP secrets and recovery codes are printed at start (a test server)."""

EPILOG = """\
examples:
  python -m mfa_common.testing --port 8080
  python -m mfa_common.testing --port 0 --accounts accounts.json --latency 0.05 --fault-rate 0.1 --seed 7
  python -m mfa_common.testing --port 8080 --auth-failure-status 401 --mfa-token-ttl 0

--accounts FILE holds a JSON list of objects with the keywords of XMfaFake.add_user:
  username, password (required), email, recovery_email, mfa (true/false), mfa_secret
  (base32), recovery_codes (list), name, admin.  Without it the demo accounts are used.
MFA-reset e-mails are printed on the console instead of being sent."""


def _seconds(text: str) -> float:
    """A duration in seconds: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (``--help`` lists them all)."""
    parser = server_argument_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument("--accounts", metavar="FILE", help="JSON file with the accounts to create")
    parser.add_argument("--jwt-ttl", type=float, default=72 * 3600.0, help="JWT lifetime in seconds")
    parser.add_argument(
        "--mfa-token-ttl",
        type=_seconds,
        default=30 * 60.0,
        metavar="SECONDS",
        help="lifetime of an X-MFA-Token (0: every token is born expired, to test expiry)",
    )
    parser.add_argument(
        "--auth-failure-status",
        type=int,
        choices=(500, 401),
        default=500,
        help="status of a wrong code on /api/user/mfa/auth: 500, what the official console was "
        "written against, or 401",
    )
    parser.add_argument("--legacy-reset", action="store_true", help="answer requestResetMFA with no body")
    add_control_arguments(parser)
    return parser


def build_fake(args: argparse.Namespace) -> XMfaFake:
    """The fake the command line describes."""
    accounts = load_accounts(args.accounts) if args.accounts else [dict(a) for a in DEMO_ACCOUNTS]
    return create_xmfa_app(
        accounts,
        controls=controls_from_arguments(args),
        seed=args.seed,
        jwt_ttl=args.jwt_ttl,
        mfa_token_ttl=args.mfa_token_ttl,
        auth_failure_status=args.auth_failure_status,
        legacy_reset=args.legacy_reset,
        on_mail=print_mail,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, build the fake and serve it until Ctrl-C."""
    args = build_parser().parse_args(argv)
    fake = build_fake(args)
    run_forever(fake, args.host, args.port, banner(fake), prog=PROG)
    return 0


if __name__ == "__main__":
    sys.exit(main())
