"""Quatrix timestamps are aware UTC datetimes in the models, whatever shape the wire uses."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from mfa_common.clock import FakeClock
from mfa_common.errors import ResponseDecodeError
from quatrix_async import ProfileResp, QuatrixClient, UserResp
from quatrix_async.models import converter
from quatrix_async.testing import QuatrixFake

T = 1_700_000_000.0
WHEN = datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "wire",
    [
        T,
        int(T),
        "1700000000",
        T * 1000,
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20+00:00",
        "2023-11-14T22:13:20",
    ],
)
def test_each_wire_shape_becomes_the_same_aware_datetime(wire: object) -> None:
    user = converter.structure({"id": "u", "created": wire, "modified": wire, "last_login": wire}, UserResp)
    for value in (user.created, user.modified, user.last_login):
        assert value == WHEN
        assert value is not None and value.tzinfo is not None


def test_absent_timestamps_stay_none_and_datetimes_go_back_as_unix_seconds() -> None:
    profile = converter.structure({"id": "p"}, ProfileResp)
    assert profile.created is None
    assert converter.unstructure(UserResp(id="u", created=WHEN))["created"] == T


@pytest.mark.parametrize("wire", ["yesterday", True, [], {"s": 1}, 1e300])
def test_a_timestamp_that_is_no_date_is_refused(wire: object) -> None:
    with pytest.raises(Exception):  # noqa: B017 - cattrs wraps the ValueError in its own group
        converter.structure({"id": "u", "created": wire}, UserResp)


@pytest.mark.anyio
async def test_the_client_returns_datetimes_from_the_fake() -> None:
    clock = FakeClock(T)
    fake = QuatrixFake(clock=clock)
    fake.add_user("ops@example.com", "ops-password", admin=True)
    async with QuatrixClient(
        "http://127.0.0.1:9",
        email="ops@example.com",
        password="ops-password",
        transport=httpx.ASGITransport(fake),
    ) as client:
        me = await client.profile.get()
        users = await client.users.list()
    assert me.created == WHEN
    assert [u.created for u in users] == [WHEN]
    assert isinstance(users[0].modified, datetime)


@pytest.mark.anyio
async def test_a_broken_timestamp_from_the_server_is_a_typed_decode_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "p", "created": "not a date"})

    async with QuatrixClient("http://127.0.0.1:9", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ResponseDecodeError):
            await client.profile.get()
