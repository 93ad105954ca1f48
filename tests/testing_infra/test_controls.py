"""FakeControls, FaultPlan, Ledger and the middleware, exercised in-process (httpx.ASGITransport)."""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import MutableMapping
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from mfa_common.testing import (
    FAULT_KINDS,
    FakeControls,
    FaultInjectionMiddleware,
    FaultPlan,
    InjectedDisconnect,
    Ledger,
    add_control_arguments,
    controls_from_arguments,
    find_controls,
)

from .conftest import inprocess_client, make_app

pytestmark = pytest.mark.timeout(10)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- Ledger ---------------------------------------------------------------------------------


def test_ledger_records_in_order_with_sequence_numbers() -> None:
    ledger = Ledger()
    first = ledger.record("enable_mfa", "alice", by="admin")
    second = ledger.record("disable_mfa", "bob")
    assert (first.seq, second.seq) == (1, 2)
    assert first.details == {"by": "admin"}
    assert first.timestamp <= second.timestamp
    assert [e.key for e in ledger.entries()] == ["alice", "bob"]
    assert [e.key for e in ledger.entries("disable_mfa")] == ["bob"]
    assert ledger.count("enable_mfa", "alice") == 1
    assert ledger.count("enable_mfa", "bob") == 0
    assert ledger.keys() == {"alice", "bob"}
    assert len(ledger) == 2


def test_ledger_duplicates() -> None:
    ledger = Ledger()
    for key in ["a", "b", "a", "c", "a", "b"]:
        ledger.record("reset", key)
    ledger.record("enable", "c")
    assert ledger.duplicates("reset") == {"a": 3, "b": 2}
    assert ledger.duplicates("enable") == {}
    # Without an operation, the same key under different operations is not a duplicate.
    assert ledger.duplicates() == {"reset:a": 3, "reset:b": 2}
    ledger.clear()
    assert ledger.entries() == []
    assert ledger.duplicates() == {}
    assert ledger.record("reset", "a").seq == 8


def test_ledger_is_thread_safe() -> None:
    ledger = Ledger()

    def worker(n: int) -> None:
        for i in range(200):
            ledger.record("write", f"{n}-{i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    entries = ledger.entries()
    assert len(entries) == 1600
    assert sorted(e.seq for e in entries) == list(range(1, 1601))
    assert ledger.duplicates() == {}


# -- FaultPlan -------------------------------------------------------------------------------


def test_fault_plan_validation() -> None:
    with pytest.raises(ValueError, match="sum"):
        FaultPlan(server_error=0.6, slow=0.5)
    with pytest.raises(ValueError, match="probability"):
        FaultPlan(malformed=1.5)
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultPlan.uniform(0.1, kinds=["boom"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        FaultPlan(retry_after=0)


def test_fault_plan_uniform_splits_rate_over_kinds() -> None:
    plan = FaultPlan.uniform(0.3, kinds=["server_error", "drop_after", "malformed"], seed=1)
    assert plan.server_error == pytest.approx(0.1)
    assert plan.drop_after == pytest.approx(0.1)
    assert plan.malformed == pytest.approx(0.1)
    assert plan.slow == 0.0
    assert plan.total == pytest.approx(0.3)
    everything = FaultPlan.uniform(0.1 * len(FAULT_KINDS))
    assert all(getattr(everything, kind) == pytest.approx(0.1) for kind in FAULT_KINDS)


def test_seeded_fault_plan_is_reproducible() -> None:
    def sequence(seed: int) -> list[str | None]:
        plan = FaultPlan.uniform(0.5, seed=seed)
        return [plan.draw() for _ in range(300)]

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)
    drawn = sequence(7)
    share = sum(kind is not None for kind in drawn) / len(drawn)
    assert 0.35 < share < 0.65
    assert set(drawn) - {None} == set(FAULT_KINDS)


def test_fault_plan_filters() -> None:
    plan = FaultPlan(server_error=1.0, only_paths=("/users/*",), methods=("post",))
    assert plan.applies_to("POST", "/users/42")
    assert not plan.applies_to("GET", "/users/42")
    assert not plan.applies_to("POST", "/session/login")


# -- configuration ---------------------------------------------------------------------------


def test_from_config_and_keywords() -> None:
    controls = FakeControls.from_config(
        {"latency": 0.05, "fault_rate": 0.2, "seed": 3}, fault_kinds="server_error,slow"
    )
    assert controls.latency == 0.05
    assert controls.faults.server_error == pytest.approx(0.1)
    assert controls.faults.slow == pytest.approx(0.1)
    assert controls.faults.malformed == 0.0
    assert controls.faults.seed == 3
    with pytest.raises(ValueError, match="unknown control option"):
        FakeControls.from_config({"latencyy": 1})
    controls.configure(malformed=0.5, slow_seconds=0.5)
    assert controls.faults.malformed == 0.5
    assert controls.faults.slow == 0.0  # fault options replace the plan as a whole
    assert controls.faults.slow_seconds == 0.5
    with pytest.raises(ValueError):
        controls.latency = -1
    controls.configure(seed=99)  # a seed alone restarts the sequence, keeping the plan
    assert controls.faults.malformed == 0.5
    reference = FaultPlan(malformed=0.5, seed=99)
    assert [controls.faults.draw() for _ in range(20)] == [reference.draw() for _ in range(20)]


def test_command_line_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_control_arguments(parser)
    args = parser.parse_args(
        ["--latency", "0.05", "--fault-rate", "0.1", "--seed", "42", "--rate-limit", "100"]
    )
    controls = controls_from_arguments(args)
    assert controls.latency == 0.05
    assert controls.faults.total == pytest.approx(0.1)
    assert controls.faults.seed == 42
    defaults = controls_from_arguments(parser.parse_args([]))
    assert defaults.latency == 0.0
    assert defaults.faults.total == 0.0


def test_find_controls(app: Starlette, controls: FakeControls) -> None:
    assert find_controls(app) is controls
    with pytest.raises(LookupError):
        find_controls(object())


def test_latency_jitter_is_bounded_and_seeded() -> None:
    a = FakeControls(latency=0.1, latency_jitter=0.05, seed=5)
    b = FakeControls(latency=0.1, latency_jitter=0.05, seed=5)
    delays_a = [a.decide("GET", "/x").delay for _ in range(50)]
    delays_b = [b.decide("GET", "/x").delay for _ in range(50)]
    assert delays_a == delays_b
    assert all(0.1 <= d <= 0.15 for d in delays_a)
    assert len(set(delays_a)) > 1


def test_token_bucket_with_injected_clock() -> None:
    clock = FakeClock()
    controls = FakeControls(clock=clock)
    controls.rate_limit(2.0, burst=3)
    decisions = [controls.decide("GET", "/item") for _ in range(4)]
    assert [d.throttled for d in decisions] == [False, False, False, True]
    assert decisions[-1].retry_after == 1
    clock.now += 0.5  # one token refilled
    assert not controls.decide("GET", "/item").throttled
    assert controls.decide("GET", "/item").throttled
    controls.rate_limit(0.1, burst=1)
    assert not controls.decide("GET", "/item").throttled
    slow_refill = controls.decide("GET", "/item")
    assert slow_refill.throttled
    assert slow_refill.retry_after == 10
    assert controls.throttled == 3
    controls.rate_limit(None)
    assert not any(controls.decide("GET", "/item").throttled for _ in range(20))


# -- the middleware, in-process --------------------------------------------------------------


@pytest.mark.anyio
async def test_plain_requests_pass_through_and_are_counted(app: Starlette, controls: FakeControls) -> None:
    async with inprocess_client(app) as client:
        assert (await client.get("/item")).json() == {"id": "1", "name": "widget"}
        response = await client.post("/write", json={"key": "k1"})
        assert response.status_code == 201
        await client.get("/item")
        assert (await client.get("/_control")).json() == {"requests": 3}
    assert controls.requests_seen == {("GET", "/item"): 2, ("POST", "/write"): 1}
    assert controls.requests_to("get", "/item") == 2
    assert controls.total_requests == 3  # the exempt control path is not counted
    assert controls.faults_injected == {}
    assert controls.ledger.count("write", "k1") == 1


@pytest.mark.anyio
async def test_latency_in_process(app: Starlette, controls: FakeControls) -> None:
    controls.latency = 0.1
    async with inprocess_client(app) as client:
        started = time.monotonic()
        response = await client.get("/item")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert 0.1 <= elapsed < 1.5


@pytest.mark.anyio
async def test_rate_limit_in_process(app: Starlette, controls: FakeControls) -> None:
    controls.rate_limit(0.5, burst=2)
    async with inprocess_client(app) as client:
        statuses = [(await client.get("/item")).status_code for _ in range(2)]
        limited = await client.get("/item")
    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json() == {"code": 429, "msg": "Too Many Requests"}
    assert controls.throttled == 1


@pytest.mark.anyio
async def test_server_error(app: Starlette, controls: FakeControls) -> None:
    controls.fail_next("server_error", path="/write")
    async with inprocess_client(app) as client:
        response = await client.post("/write", json={"key": "k"})
    assert response.status_code in (500, 503)
    assert response.json()["code"] == response.status_code
    assert len(controls.ledger) == 0
    assert controls.faults_injected == {"server_error": 1}


@pytest.mark.anyio
async def test_rate_limited_fault(app: Starlette, controls: FakeControls) -> None:
    controls.faults = FaultPlan(rate_limited=1.0, retry_after=3)
    async with inprocess_client(app) as client:
        response = await client.post("/write", json={"key": "k"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert len(controls.ledger) == 0


@pytest.mark.anyio
async def test_drop_before_in_process(app: Starlette, controls: FakeControls) -> None:
    controls.fail_next("drop_before")
    async with inprocess_client(app) as client:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await client.post("/write", json={"key": "k"})
        assert isinstance(caught.value, InjectedDisconnect)
        assert (await client.get("/item")).status_code == 200  # the client stays usable
    assert len(controls.ledger) == 0


@pytest.mark.anyio
async def test_drop_after_in_process(app: Starlette, controls: FakeControls) -> None:
    controls.fail_next("drop_after")
    async with inprocess_client(app) as client:
        with pytest.raises(httpx.TransportError):
            await client.post("/write", json={"key": "k", "value": 5})
    entries = controls.ledger.entries("write")
    assert [(e.key, e.details) for e in entries] == [("k", {"value": 5})]


@pytest.mark.anyio
async def test_drop_without_raising_app_exceptions_gives_truncated_body(
    app: Starlette, controls: FakeControls
) -> None:
    controls.fail_next("drop_after")
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(base_url="http://fake.test", transport=transport) as client:
        response = await client.post("/write", json={"key": "k"})
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert int(response.headers["content-length"]) > len(response.content)


@pytest.mark.anyio
async def test_slow_in_process_needs_a_deadline(app: Starlette, controls: FakeControls) -> None:
    controls.faults = FaultPlan(slow=1.0, slow_seconds=5.0)
    async with inprocess_client(app) as client:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.1):
                await client.post("/write", json={"key": "k"})
        assert time.monotonic() - started < 2.0
    assert controls.ledger.count("write", "k") == 1  # the handler ran before the delay


@pytest.mark.anyio
async def test_slow_in_process_answers_late(app: Starlette, controls: FakeControls) -> None:
    controls.faults = FaultPlan(slow=1.0, slow_seconds=0.15)
    async with inprocess_client(app) as client:
        started = time.monotonic()
        response = await client.post("/write", json={"key": "k"})
        elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert response.json() == {"ok": True, "key": "k"}
    assert 0.15 <= elapsed < 1.5


@pytest.mark.anyio
async def test_malformed(app: Starlette, controls: FakeControls) -> None:
    controls.fail_next("malformed", method="GET")
    async with inprocess_client(app) as client:
        response = await client.get("/item")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.anyio
async def test_garbled_after_applies_the_write_then_garbles_the_answer(
    app: Starlette, controls: FakeControls
) -> None:
    controls.fail_next("garbled_after", path="/write")
    async with inprocess_client(app) as client:
        response = await client.post("/write", json={"key": "k", "value": 7})
        assert response.status_code == 201  # the handler's own status: the write succeeded
        assert response.headers["content-type"] == "application/json"
        assert int(response.headers["content-length"]) == len(response.content)  # complete
        with pytest.raises(ValueError):
            response.json()
        again = await client.post("/write", json={"key": "k2"})
        assert again.json() == {"ok": True, "key": "k2"}
    assert [(e.key, e.details) for e in controls.ledger.entries("write")] == [
        ("k", {"value": 7}),
        ("k2", {"value": None}),
    ]
    assert controls.faults_injected == {"garbled_after": 1}


@pytest.mark.anyio
async def test_fail_next_is_deterministic(app: Starlette, controls: FakeControls) -> None:
    controls.fail_next("server_error", 2, path="/write")
    controls.fail_next("malformed", path="/it*")
    assert controls.pending_scripted == 3
    async with inprocess_client(app) as client:
        item = await client.get("/item")
        writes = [(await client.post("/write", json={"key": f"k{i}"})).status_code for i in range(3)]
        item_again = await client.get("/item")
    with pytest.raises(json.JSONDecodeError):
        item.json()
    assert writes[:2] in ([500, 500], [500, 503], [503, 500], [503, 503])
    assert writes[2] == 201
    assert item_again.json() == {"id": "1", "name": "widget"}
    assert controls.pending_scripted == 0
    assert controls.faults_injected == {"server_error": 2, "malformed": 1}
    assert controls.ledger.keys("write") == {"k2"}


@pytest.mark.anyio
async def test_random_faults_respect_filters(app: Starlette, controls: FakeControls) -> None:
    controls.faults = FaultPlan(server_error=1.0, only_paths=("/write",), methods=("POST",))
    async with inprocess_client(app) as client:
        assert (await client.get("/item")).status_code == 200
        assert (await client.post("/write", json={"key": "k"})).status_code >= 500
        controls.faults = FaultPlan(drop_before=1.0)
        assert (await client.get("/_control")).status_code == 200  # exempt path


@pytest.mark.anyio
async def test_seeded_faults_reproduce_over_requests() -> None:
    async def run(seed: int) -> list[int | str]:
        controls = FakeControls.from_config(
            fault_rate=0.5, fault_kinds="server_error,rate_limited,drop_before,malformed", seed=seed
        )
        outcomes: list[int | str] = []
        async with inprocess_client(make_app(controls)) as client:
            for i in range(60):
                try:
                    response = await client.post("/write", json={"key": str(i)})
                except httpx.TransportError:
                    outcomes.append("dropped")
                else:
                    outcomes.append(response.status_code)
        return outcomes

    first = await run(11)
    assert first == await run(11)
    assert first != await run(12)
    assert {"dropped", 201, 429} <= set(first)


@pytest.mark.anyio
async def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def inner(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        seen.append(str(scope["type"]))

    controls = FakeControls(faults=FaultPlan(server_error=1.0))
    middleware = FaultInjectionMiddleware(inner, controls)

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    await middleware({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]
    assert controls.total_requests == 0


def test_reset(controls: FakeControls) -> None:
    controls.latency = 1.0
    controls.faults = FaultPlan(server_error=1.0)
    controls.fail_next("slow")
    controls.rate_limit(1.0, burst=1)
    controls.decide("GET", "/item")
    controls.ledger.record("write", "k")
    controls.reset()
    assert controls.latency == 0.0
    assert controls.faults.total == 0.0
    assert controls.pending_scripted == 0
    assert controls.total_requests == 0
    assert len(controls.ledger) == 0
    assert not any(controls.decide("GET", "/item").throttled for _ in range(5))
