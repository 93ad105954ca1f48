"""The call deadline on asyncio: many calls' deadlines share one loop timer (``_alarms``).

What could break when deadlines stop having a timer each: a short deadline started while a long
one is in flight must still end on time; a deadline that never rings must leave nothing behind;
a cancellation from outside must stay a cancellation, not turn into a deadline error.
"""

from __future__ import annotations

import asyncio

import anyio
import httpx
import pytest

from mfa_common import errors
from mfa_common._alarms import Alarms
from mfa_common.client import BaseClient, RequestOptions
from mfa_common.options import ClientOptions

# Bounds a test that would otherwise hang; never reached when the code works.
GUARD = 20.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _client(handler: httpx.MockTransport, deadline: float | None = 60.0) -> BaseClient:
    return BaseClient("http://127.0.0.1:9", transport=handler, options=ClientOptions(deadline=deadline))


def _gated() -> tuple[httpx.MockTransport, asyncio.Event, list[str]]:
    """A transport whose answers wait for ``gate``; ``started`` lists the paths it received."""
    gate = asyncio.Event()
    started: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        started.append(request.url.path)
        await gate.wait()
        return httpx.Response(200, json={})

    return httpx.MockTransport(handler), gate, started


@pytest.mark.anyio
async def test_a_short_deadline_started_after_a_long_one_ends_on_time() -> None:
    transport, gate, started = _gated()
    async with _client(transport) as client:
        slow = asyncio.ensure_future(client.requestor.request("GET", "slow"))
        while not started:
            await asyncio.sleep(0)
        with anyio.fail_after(GUARD), pytest.raises(errors.APITimeoutError) as caught:
            await client.requestor.request("GET", "quick", options=RequestOptions(deadline=0.2))
        assert "0.2 s deadline" in str(caught.value)
        assert not slow.done()  # its own 60 s deadline has not rung
        gate.set()
        response = await slow
    assert response.status_code == 200


@pytest.mark.anyio
async def test_calls_that_end_in_time_leave_no_alarm_and_no_pending_cancellation() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    async with _client(transport) as client:
        for _ in range(20):
            await client.requestor.request("GET", "x")
        connection = client.requestor._connection
        alarms = connection.alarms_for(asyncio.get_running_loop())
        assert alarms._pending == set()
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0


@pytest.mark.anyio
async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    transport, gate, _ = _gated()
    async with _client(transport) as client:
        with anyio.move_on_after(0.2) as scope:
            await client.requestor.request("GET", "x")
        assert scope.cancelled_caught
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        gate.set()
        assert (await client.requestor.request("GET", "y")).status_code == 200


@pytest.mark.anyio
async def test_the_deadline_of_a_call_cancelled_from_outside_as_it_expires_is_still_ours() -> None:
    # The deadline rings while an outer scope with a later end is waiting: the call ends with
    # the deadline error, and the outer scope is not disturbed.
    transport, _, _ = _gated()
    async with _client(transport, deadline=0.2) as client:
        with anyio.move_on_after(GUARD) as scope, pytest.raises(errors.APITimeoutError):
            await client.requestor.request("GET", "x")
        assert not scope.cancelled_caught


@pytest.mark.anyio
async def test_alarms_ring_when_due_and_a_removed_one_never_rings() -> None:
    alarms = Alarms(asyncio.get_running_loop())
    rung: list[str] = []
    done = asyncio.Event()
    removed = alarms.add(0.05, lambda: rung.append("removed"))
    late = alarms.add(60, lambda: rung.append("late"))
    alarms.add(0.1, lambda: (rung.append("due"), done.set()))
    alarms.remove(removed)
    with anyio.fail_after(GUARD):
        await done.wait()
    assert rung == ["due"]
    assert not late.rung and late in alarms._pending
    alarms.remove(late)
