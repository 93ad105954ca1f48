"""The settlement table of each API, as pure functions: (status, headers, body) of a code-bearing
answer → accepted / rejected / not sent / unknown. Each table's docstring gives its reasons."""

from __future__ import annotations

import httpx
import pytest

from metalcloud_async import login_machine as metalcloud
from mfa_common.auth.machine import Settlement
from mfa_common.xmfa import login_machine as xmfa
from quatrix_async import login_machine as quatrix

A, R, N, U = Settlement.ACCEPTED, Settlement.REJECTED, Settlement.NOT_SENT, Settlement.UNKNOWN
NO_HEADERS = httpx.Headers()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"session_id": "s"}', A),
        (401, b'{"code": 83, "msg": "Wrong authentication code"}', R),
        (401, b'{"code": 84, "msg": "Wrong user PIN"}', R),
        (401, b'{"code": 14, "msg": "no login waiting"}', U),  # the partial session died
        (400, b'{"code": 10}', N),
        (429, b"", N),
        (500, b"", U),
        (502, b"", U),
    ],
)
def test_quatrix_code_settlement(status: int, body: bytes, expected: Settlement) -> None:
    assert quatrix.code_settlement(status, NO_HEADERS, body) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, A), (400, R), (401, R), (403, R), (404, N), (429, N), (500, U), (503, U)],
)
def test_metalcloud_login_2fa_settlement(status: int, expected: Settlement) -> None:
    assert metalcloud.code_settlement(status, NO_HEADERS, b"") is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, A), (204, A), (400, R), (429, N), (409, U), (412, U), (428, U), (500, U)],
)
def test_metalcloud_2fa_enable_settlement(status: int, expected: Settlement) -> None:
    assert metalcloud.enable_2fa_settlement(status, NO_HEADERS, b"") is expected


@pytest.mark.parametrize(
    ("status", "auth", "recover"),
    [
        (200, A, A),
        (401, R, R),
        (403, R, R),
        (500, R, U),  # /mfa/auth: the console's "wrong code"; a recovery code is set aside
        (400, N, N),
        (404, N, N),
        (429, N, N),
        (502, U, U),
    ],
)
def test_xmfa_settlements(status: int, auth: Settlement, recover: Settlement) -> None:
    assert xmfa.code_settlement(status, NO_HEADERS, b"") is auth
    assert xmfa.recover_settlement(status, NO_HEADERS, b"") is recover
