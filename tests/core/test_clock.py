from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from email.utils import format_datetime

import anyio
import pytest

from mfa_common.clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock
from mfa_common.totp import Totp


def http_date(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, tz=timezone.utc), usegmt=True)


def test_protocol_conformance() -> None:
    assert isinstance(SYSTEM_CLOCK, Clock)
    assert isinstance(FakeClock(), Clock)
    assert isinstance(SYSTEM_CLOCK, SystemClock)


def test_system_clock_offset() -> None:
    clock = SystemClock()
    assert abs(clock.now() - time.time()) < 1
    clock.offset = 100.0
    assert 99 < clock.now() - time.time() < 101
    assert "offset=100.000" in repr(clock)


def test_learn_offset_from_date_header() -> None:
    clock = SystemClock()
    sent = clock.now()
    server_now = sent + 120.0
    clock.learn_offset_from_date_header(http_date(server_now), sent_at=sent, received_at=sent + 0.2)
    assert clock.offset == pytest.approx(120.0, abs=1.0)
    before = clock.offset
    again = clock.now()
    clock.learn_offset_from_date_header(http_date(again), sent_at=again, received_at=again + 0.2)
    assert clock.offset == before


def test_learn_offset_ignores_small_differences() -> None:
    clock = SystemClock()
    sent = clock.now()
    for delta in (-1.0, 0.0, 0.9):
        clock.learn_offset_from_date_header(http_date(sent + delta), sent_at=sent, received_at=sent + 0.1)
        assert clock.offset == 0.0


def test_learn_offset_behind_server() -> None:
    clock = SystemClock()
    sent = 1_700_000_000.0
    clock.learn_offset_from_date_header("Tue, 14 Nov 2023 22:13:10 GMT", sent_at=sent, received_at=sent + 1.0)
    assert clock.offset == pytest.approx(1_700_000_000 - 10 + 0.5 - (sent + 0.5))


@pytest.mark.parametrize("header", ["", "garbage", "Mon, 99 Foo 2024 25:61:00 GMT", "Tue, 14 Nov"])
def test_learn_offset_ignores_unparseable(header: str) -> None:
    clock = SystemClock()
    now = clock.now()
    clock.learn_offset_from_date_header(header, sent_at=now, received_at=now)
    assert clock.offset == 0.0


def test_learn_offset_bounded_by_max_offset() -> None:
    clock = SystemClock()
    now = clock.now()
    clock.learn_offset_from_date_header(http_date(now + 86_400 * 30), sent_at=now, received_at=now)
    assert clock.offset == 0.0
    unbounded = SystemClock(max_offset=None)
    unbounded.learn_offset_from_date_header(http_date(now + 86_400 * 30), sent_at=now, received_at=now)
    assert unbounded.offset == pytest.approx(86_400 * 30, abs=1.0)


def test_learn_offset_ignores_inconsistent_timestamps() -> None:
    clock = SystemClock()
    now = clock.now()
    clock.learn_offset_from_date_header(http_date(now + 100), sent_at=now, received_at=now - 5)
    assert clock.offset == 0.0


def test_fake_clock_basics() -> None:
    clock = FakeClock(1000.0)
    assert clock.now() == 1000.0
    clock.advance(29.5)
    assert clock.now() == 1029.5
    clock.set(5.0)
    assert clock.now() == 5.0
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(float("nan"))
    assert "now=5.000" in repr(clock)


@pytest.mark.anyio
async def test_fake_sleep_is_instant_and_advances() -> None:
    clock = FakeClock(1_700_000_020.0)
    totp = Totp("HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ")
    first_step = totp.step_at(clock.now())
    started = time.monotonic()
    await clock.sleep(totp.seconds_left_in_step(clock.now()))
    await clock.sleep(-5)
    assert time.monotonic() - started < 0.5
    assert totp.step_at(clock.now()) == first_step + 1
    assert clock.sleeps == [pytest.approx(20.0), 0.0]


@pytest.mark.anyio
async def test_fake_sleep_is_a_checkpoint() -> None:
    clock = FakeClock(0.0)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await clock.sleep(1)
        pytest.fail("sleep did not reach a cancellation point")
    assert scope.cancelled_caught
    assert clock.now() == 1.0


@pytest.mark.anyio
async def test_system_sleep() -> None:
    started = time.monotonic()
    await SystemClock().sleep(0.01)
    await SystemClock().sleep(-1)
    assert time.monotonic() - started >= 0.009


def test_fake_clock_thread_safety() -> None:
    clock = FakeClock(0.0)

    def worker() -> None:
        for _ in range(2000):
            clock.advance(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == 8000.0
