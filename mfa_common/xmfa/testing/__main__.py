"""Run the X-MFA-Token fake on a loopback port so any HTTP client can be tried against it.

    python -m mfa_common.xmfa.testing --host 127.0.0.1 --port 8080
    python -m mfa_common.xmfa.testing --accounts accounts.json --latency 0.05 --fault-rate 0.1 --seed 7
    python -m mfa_common.xmfa.testing --auth-failure-status 401 --mfa-token-ttl 0

``--accounts`` names a JSON list of objects with the keywords of ``XMfaFake.add_user``
(``username``, ``password``, ``email``, ``recovery_email``, ``mfa``, ``totp_secret``,
``recovery_codes``, ``name``, ``admin``, ...); they replace the demo accounts. The accounts,
their TOTP secrets and recovery codes are printed at start (this is a test server).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from mfa_common.testing._accounts import load_accounts
from mfa_common.testing._controls import add_control_arguments, controls_from_arguments
from mfa_common.testing._server import run_command, server_argument_parser

from ._fake import DEMO_ACCOUNTS, SentEmail, XMfaFake


def banner(fake: XMfaFake) -> str:
    """The accounts of ``fake`` as text, secrets included (a test server prints them on purpose)."""
    lines = ["X-MFA-Token fake server (ShellHub MfaApi). Accounts:"]
    for username in sorted(u.username for u in fake.users):
        user = fake.user(username)
        lines.append(f"  {user.username} / {user.password}  <{user.email}>  id={user.id}")
        if user.totp_secret:
            lines.append(f"    MFA on: totp_secret {user.totp_secret} (SHA1, 6 digits, 30 s)")
            lines.append(f"    recovery codes: {' '.join(user.recovery_codes)}")
        else:
            lines.append("    MFA off")
    lines.append("MFA-reset e-mails are printed here instead of being sent.")
    return "\n".join(lines)


def print_mail(mail: SentEmail) -> None:
    """Show a reset e-mail on the console (the fake sends no real mail)."""
    print(f"[mail] to {mail.to}: your {mail.kind} MFA reset code is {mail.code}", flush=True)


PROG = "python -m mfa_common.xmfa.testing"

DESCRIPTION = """\
Run the X-MFA-Token fake (ShellHub MfaApi: password login, X-MFA-Token, TOTP, recovery codes,
MFA reset by e-mail) on a loopback port, so any HTTP client can be tried against it.
The accounts, their TOTP secrets and recovery codes are printed at start (a test server)."""

EPILOG = """\
examples:
  python -m mfa_common.xmfa.testing --port 8080
  python -m mfa_common.xmfa.testing --port 0 --accounts accounts.json --latency 0.05 --fault-rate 0.1 --seed 7
  python -m mfa_common.xmfa.testing --port 8080 --auth-failure-status 401 --mfa-token-ttl 0

--accounts FILE holds a JSON list of objects with the keywords of XMfaFake.add_user; they
replace the demo accounts:
  {"username": ..., "password": ... (required), "email", "recovery_email", "mfa": true
   (a generated secret), "totp_secret": <base32>, "recovery_codes": [...], "name", "admin",
   "user_id", "status": "confirmed" | "not-confirmed" | "pending", "local_auth"}
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
    """The fake the command line describes (ValueError for a bad accounts file)."""
    fake = XMfaFake(
        controls=controls_from_arguments(args),
        seed=args.seed,
        jwt_ttl=args.jwt_ttl,
        mfa_token_ttl=args.mfa_token_ttl,
        auth_failure_status=args.auth_failure_status,
        legacy_reset=args.legacy_reset,
        on_mail=print_mail,
    )
    load_accounts(fake.add_user, args.accounts, DEMO_ACCOUNTS)
    return fake


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, build the fake and serve it until Ctrl-C."""

    def build(args: argparse.Namespace) -> tuple[XMfaFake, str]:
        fake = build_fake(args)
        return fake, banner(fake)

    return run_command(build_parser(), argv, build)


if __name__ == "__main__":
    sys.exit(main())
