"""The batch runner: streaming, concurrency and rate caps, outcomes, progress, summary."""

from __future__ import annotations

import gc
import itertools
import json
import math
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import psutil
import pytest
import sniffio

from mfa_common.batch import (
    OUTCOME_UNKNOWN,
    BatchProgress,
    BatchSummary,
    RateLimiter,
    Skip,
    describe_failure,
    is_outcome_unknown,
    run_batch,
)
from mfa_common.batch.runner import MAX_FAILURE_REASONS
from mfa_common.clock import FakeClock
from mfa_common.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    ResponseDecodeError,
    ServerError,
)
from mfa_common.replay_guard import STEP_REGISTRY, StepRegistry, next_totp
from mfa_common.replay_state import FileStepRegistry
from mfa_common.totp import Totp


def count_tasks() -> int:
    """Tasks alive right now in the running event loop (asyncio or Trio)."""
    if sniffio.current_async_library() == "asyncio":
        import asyncio

        return len(asyncio.all_tasks())
    import trio

    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for nursery in task.child_nurseries for child in nursery.child_tasks)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return walk(root)


# --------------------------------------------------------------------------- streaming


@pytest.mark.anyio
async def test_200k_items_stream_through_a_fixed_pool_with_flat_memory() -> None:
    """200,000 items, each ~1 KB, each producing a ~1 KB result: nothing accumulates."""
    concurrency = 20
    baseline_tasks = count_tasks()
    in_flight = peak_in_flight = peak_tasks = 0
    rss_at: dict[int, int] = {}
    process = psutil.Process()

    def source() -> Iterator[bytes]:
        for i in range(200_000):
            yield i.to_bytes(4, "big") + bytes(1020)

    async def op(item: bytes) -> bytes:
        nonlocal in_flight, peak_in_flight, peak_tasks
        in_flight += 1
        peak_in_flight = max(peak_in_flight, in_flight)
        n = int.from_bytes(item[:4], "big")
        if n % 2000 == 0:
            peak_tasks = max(peak_tasks, count_tasks() - baseline_tasks)
        if n in (10_000, 199_999):
            gc.collect()
            rss_at[n] = process.memory_info().rss
        if n % 2 == 0:
            await anyio.sleep(0)
        in_flight -= 1
        return bytes(1024)

    summary = await run_batch(
        source(), op, key=lambda b: str(int.from_bytes(b[:4], "big")), concurrency=concurrency
    )

    assert summary.total == summary.done == 200_000
    assert peak_in_flight == concurrency  # reached, never exceeded
    assert 0 < peak_tasks <= concurrency
    # Holding the items or the results would add ~200 MB each; allow allocator noise.
    assert rss_at[199_999] - rss_at[10_000] < 8 * 1024 * 1024


@pytest.mark.anyio
async def test_traced_peak_memory_does_not_grow_with_the_number_of_items() -> None:
    async def op(item: int) -> bytes:
        if item % 5 == 0:
            await anyio.sleep(0)
        return bytes(512)

    async def peak_for(n: int) -> int:
        gc.collect()
        tracemalloc.start()
        try:
            summary = await run_batch(range(n), op, concurrency=50)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert summary.done == n
        return peak

    small = await peak_for(1_000)
    large = await peak_for(10_000)
    # 9,000 more items and 512-byte results: keeping either would add >= 4.5 MB.
    assert large - small < 256 * 1024, (small, large)
    assert large < 2 * 1024 * 1024


@pytest.mark.anyio
async def test_concurrency_cap_is_honoured() -> None:
    in_flight = peak = 0

    async def op(item: int) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.001 * (item % 3))
        in_flight -= 1

    summary = await run_batch(range(500), op, concurrency=7)
    assert summary.done == 500
    assert peak == 7


class SteppedTime:
    """A fake monotonic clock that behaves like an event loop's: sleepers wake once the driver
    has moved time past their deadline, all together if it jumps (a stalled loop)."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        deadline = self.t + seconds - 1e-9  # the driver's float steps must not cost a tick
        while self.t < deadline:
            await anyio.lowlevel.checkpoint()


async def drive(time: SteppedTime, work: Any, *, tick: float, stall_at: float, stall: float) -> None:
    """Run ``work()`` while advancing ``time`` by ``tick`` per scheduler round, jumping
    ``stall`` seconds once it passes ``stall_at``: no wall clock anywhere."""
    finished = False

    async def run() -> None:
        nonlocal finished
        await work()
        finished = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        stalled = False
        for _ in range(1_000_000):  # bounded
            if finished:
                break
            # Several checkpoints per tick: every ready task runs before time moves on.
            for _ in range(4):
                await anyio.lowlevel.checkpoint()
            if not stalled and time.t >= stall_at:
                time.t += stall
                stalled = True
            else:
                time.t += tick
        assert finished


def max_in_window(starts: list[float], window: float) -> int:
    starts = sorted(starts)
    return max(sum(1 for s in starts[i:] if s < start + window) for i, start in enumerate(starts))


@pytest.mark.anyio
@pytest.mark.parametrize("burst", [1, 10])
async def test_rate_cap_holds_after_the_event_loop_stalls(burst: int) -> None:
    """rate 100: no window of one second holds more than ``burst + 100`` starts, even when the
    loop stalls for 0.3 s while 50 workers wait (a schedule of reserved slots lets ~30 extra
    through at once then)."""
    time = SteppedTime()
    limiter = RateLimiter(100, burst=burst, time=time)
    starts: list[float] = []

    async def op(item: int) -> None:
        starts.append(time.now())

    async def work() -> None:
        summary = await run_batch(range(300), op, concurrency=50, rate=limiter)
        assert summary.done == 300

    await drive(time, work, tick=0.001, stall_at=0.5, stall=0.3)
    assert len(starts) == 300
    assert max_in_window(starts, 1.0) <= burst + 100
    assert max_in_window(starts, 0.1) <= burst + 10
    # ... and the limiter does not fall far short of its rate either (300 starts ≈ 3 s).
    assert max(starts) - min(starts) < (300 - burst) / 100 + 0.3 + 0.1


@pytest.mark.anyio
async def test_rate_limiter_shared_between_batches_and_burst() -> None:
    time = SteppedTime()
    limiter = RateLimiter(100, burst=10, time=time)
    marks: list[float] = []

    async def op(item: int) -> None:
        pass

    async def work() -> None:
        await run_batch(range(10), op, rate=limiter)  # the burst: immediate
        marks.append(time.now())
        await run_batch(range(20), op, rate=limiter)  # the same bucket, now empty: 0.2 s
        marks.append(time.now())

    await drive(time, work, tick=0.001, stall_at=math.inf, stall=0.0)
    assert marks[0] < 0.01  # a few scheduler rounds, never a wait of 1/rate
    assert marks[1] == pytest.approx(0.2, abs=0.01)
    with pytest.raises(InvalidInputError):
        RateLimiter(0)
    with pytest.raises(InvalidInputError):
        RateLimiter(5, burst=0)


@pytest.mark.anyio
async def test_rate_limiter_on_the_event_loop_clock_spaces_starts() -> None:
    """The default time source: 20 starts at rate 200 take at least 19 gaps of 5 ms (a lower
    bound only, which no load can break)."""
    limiter = RateLimiter(200)
    t0 = anyio.current_time()
    summary = await run_batch(
        range(20), lambda item: anyio.lowlevel.checkpoint(), concurrency=5, rate=limiter
    )
    assert summary.done == 20
    assert anyio.current_time() - t0 >= 19 / 200 - 1e-6


# --------------------------------------------------------------------------- outcomes


@pytest.mark.anyio
async def test_one_failure_never_aborts_the_rest() -> None:
    seen: list[int] = []

    async def op(item: int) -> None:
        seen.append(item)
        if item % 10 == 3:
            raise NotFoundError("GET /user/x: not found", status_code=404)
        if item % 10 == 7:
            raise KeyError("password=hunter2")
        if item == 50:
            raise RuntimeError("boom with a secret s3cr3t")

    summary = await run_batch(range(100), op, concurrency=5, max_examples=3)
    assert sorted(seen) == list(range(100))
    assert summary.total == 100
    assert summary.failed == 21
    assert summary.done == 79
    assert summary.failures_by_reason["NotFoundError"].count == 10
    assert summary.failures_by_reason["KeyError"].count == 10
    assert len(summary.failures_by_reason["NotFoundError"].example_keys) == 3
    assert summary.failures_by_reason["NotFoundError"].example_message.startswith("NotFoundError: ")
    # Foreign exceptions are described by class only: their text may hold anything.
    assert summary.failures_by_reason["KeyError"].example_message == "KeyError"
    assert summary.failures_by_reason["RuntimeError"].example_message == "RuntimeError"
    text = str(summary) + json.dumps(summary.as_dict())
    assert "hunter2" not in text
    assert "s3cr3t" not in text
    assert not summary.ok


@pytest.mark.anyio
async def test_failure_reasons_are_bounded() -> None:
    classes = [type(f"Error{i}", (Exception,), {}) for i in range(MAX_FAILURE_REASONS + 20)]

    async def op(item: int) -> None:
        raise classes[item % len(classes)]()

    summary = await run_batch(range(len(classes) * 3), op, max_examples=2)
    assert summary.failed == len(classes) * 3
    assert len(summary.failures_by_reason) == MAX_FAILURE_REASONS + 1
    assert summary.failures_by_reason["other"].count == 20 * 3
    assert all(len(g.example_keys) <= 2 for g in summary.failures_by_reason.values())


@pytest.mark.anyio
async def test_skip_raised_or_returned() -> None:
    async def op(item: int) -> object:
        if item % 3 == 0:
            raise Skip("already enrolled")
        if item % 3 == 1:
            return Skip("no MFA to reset")
        return "changed"

    summary = await run_batch(range(30), op)
    assert (summary.done, summary.skipped, summary.failed) == (10, 20, 0)
    assert summary.skipped_by_reason == {"already enrolled": 10, "no MFA to reset": 10}
    assert summary.ok


@pytest.mark.anyio
async def test_unknown_outcome_in_run_is_verified_or_reported() -> None:
    async def op(item: int) -> None:
        if item % 4 == 0:
            raise APITimeoutError("POST /x timed out", request_sent=True)
        if item % 4 == 1:
            raise APIConnectionError("connect failed", request_sent=False)
        if item % 4 == 2:
            raise ServerError("bad gateway", status_code=502)

    summary = await run_batch(range(40), op)
    assert summary.unknown == 20  # timeouts after sending, and 502s
    assert summary.failed == 10  # the request never left: a plain, retryable failure
    assert summary.done == 10
    assert summary.failures_by_reason[OUTCOME_UNKNOWN].count == 20
    assert summary.total == 40

    async def applied(item: int) -> bool | None:
        return True if item % 4 == 0 else None

    summary = await run_batch(range(40), op, verify_unknown=applied)
    assert summary.unknown == 10
    assert summary.done == 20


@pytest.mark.anyio
async def test_stop_on_drains_in_flight_and_reports() -> None:
    started: list[int] = []

    async def op(item: int) -> None:
        started.append(item)
        await anyio.sleep(0.005)
        if item == 20:
            raise AuthenticationError("token revoked", status_code=401)

    summary = await run_batch(range(10_000), op, concurrency=5, stop_on=AuthenticationError)
    assert summary.stopped == "stop_on matched AuthenticationError"
    assert len(started) < 40
    assert summary.total == len(started)  # in-flight items finished and were counted
    assert summary.failed == 1
    assert not summary.ok

    summary = await run_batch(range(100), op, concurrency=5, stop_on=lambda exc: "revoked" in str(exc))
    assert summary.stopped is not None


@pytest.mark.anyio
async def test_source_error_is_raised_after_in_flight_items_finish() -> None:
    finished: list[int] = []

    def source() -> Iterator[int]:
        yield from range(10)
        raise ValueError("the CSV is broken")

    async def op(item: int) -> None:
        await anyio.sleep(0.001)
        finished.append(item)

    with pytest.raises(ValueError, match="CSV"):
        await run_batch(source(), op, concurrency=3)
    assert sorted(finished) == list(range(10))


@pytest.mark.anyio
async def test_async_iterable_source_and_early_close() -> None:
    closed = False

    async def source() -> AsyncIterator[dict[str, Any]]:
        nonlocal closed
        try:
            for i in range(300):
                if i % 10 == 0:
                    await anyio.sleep(0)
                yield {"id": f"u{i}", "password": "pw"}
        finally:
            closed = True

    async def op(user: dict[str, Any]) -> None:
        await anyio.sleep(0)

    summary = await run_batch(source(), op, key=lambda u: u["id"], concurrency=16)
    assert summary.done == 300
    assert closed

    closed = False

    async def failing(user: dict[str, Any]) -> None:
        raise AuthenticationError("revoked", status_code=401)

    summary = await run_batch(source(), failing, key=lambda u: u["id"], stop_on=AuthenticationError)
    assert summary.stopped is not None
    assert summary.total < 300
    assert closed  # the half-consumed generator was closed, not leaked


@pytest.mark.anyio
async def test_progress_callback_is_throttled_and_final() -> None:
    # Ordered by events, not by sleeps: every operation waits until a progress report has shown
    # all ten of them in flight, so a mid-run report exists whatever the machine's load.
    reports: list[BatchProgress] = []
    release = anyio.Event()

    def on_progress(progress: BatchProgress) -> None:
        reports.append(progress)
        if not progress.final and progress.in_flight == 10:
            release.set()

    async def op(item: int) -> None:
        await release.wait()

    t0 = anyio.current_time()
    with anyio.fail_after(30):
        summary = await run_batch(
            range(100), op, concurrency=10, on_progress=on_progress, progress_interval=0.02
        )
    elapsed = anyio.current_time() - t0
    assert summary.done == 100
    middle = [r for r in reports if not r.final and r.in_flight == 10]
    assert middle, "no report while the operations were in flight"
    assert middle[0].done + middle[0].in_flight <= middle[0].seen
    # Throttled: the reporter sleeps a full interval between reports (a sleep never ends early,
    # so this bound holds however slow the machine is), plus the first and the final report.
    assert len(reports) <= elapsed / 0.02 + 2
    assert [r.final for r in reports].count(True) == 1 and reports[-1].final
    assert reports[-1].done == 100
    assert reports[-1].in_flight == 0
    assert reports[-1].seen == 100
    assert all(a.finished <= b.finished for a, b in itertools.pairwise(reports))


@pytest.mark.anyio
async def test_progress_callback_error_stops_and_raises() -> None:
    def broken(progress: BatchProgress) -> None:
        raise RuntimeError("display broke")

    async def op(item: int) -> None:
        await anyio.sleep(0.001)

    with pytest.raises(RuntimeError, match="display broke"):
        await run_batch(range(100_000), op, concurrency=4, on_progress=broken, progress_interval=0.01)


@pytest.mark.anyio
async def test_cancellation_stops_promptly_without_a_journal() -> None:
    started = 0

    async def op(item: int) -> None:
        nonlocal started
        started += 1
        await anyio.sleep(10)

    t0 = anyio.current_time()
    with anyio.move_on_after(0.1) as scope:
        await run_batch(range(1000), op, concurrency=5)
        pytest.fail("the cancellation must propagate")
    assert scope.cancelled_caught
    assert anyio.current_time() - t0 < 1.0
    assert started == 5


@pytest.mark.anyio
async def test_keys_default_and_errors() -> None:
    async def op(item: object) -> None:
        pass

    summary = await run_batch([{"a": 1}, ("t",), "s", 3], op)  # no journal: keys are positions
    assert summary.done == 4

    def bad_key(item: int) -> str:
        if item == 2:
            raise LookupError("no id column")
        return str(item)

    summary = await run_batch(range(5), op, key=bad_key)
    assert summary.failed == 1
    assert summary.failures_by_reason["LookupError"].example_keys == ("#3",)

    with pytest.raises(InvalidInputError):
        await run_batch(range(3), op, concurrency=0)
    with pytest.raises(InvalidInputError):
        await run_batch(42, op)  # type: ignore[arg-type]


def test_summary_text_and_json() -> None:
    from mfa_common.batch import FailureReason

    summary = BatchSummary(
        total=10,
        done=6,
        failed=2,
        skipped=1,
        unknown=1,
        failures_by_reason={
            "ConflictError": FailureReason("ConflictError", 2, ("u1", "u2"), "ConflictError: 409"),
            OUTCOME_UNKNOWN: FailureReason(OUTCOME_UNKNOWN, 1, ("u3",), OUTCOME_UNKNOWN),
        },
        skipped_by_reason={"already done (journal)": 1},
        elapsed=2.0,
        throughput=5.0,
    )
    text = str(summary)
    assert text.splitlines()[0] == "Batch summary"
    assert "ConflictError" in text and "u1, u2" in text and "5.0 items/s" in text
    data = json.loads(json.dumps(summary.as_dict()))
    assert data["failures_by_reason"]["ConflictError"]["count"] == 2
    assert data["unknown"] == 1
    assert not summary.ok


def test_describe_failure_uses_text_only_for_sdk_errors() -> None:
    assert describe_failure(ValueError("password=x")) == ("ValueError", "ValueError")
    kind, message = describe_failure(NotFoundError("GET /users/7: not found", status_code=404))
    assert kind == "NotFoundError"
    assert message == "NotFoundError: GET /users/7: not found"
    long = describe_failure(NotFoundError("x" * 1000 + "\nsecond line", status_code=404))[1]
    assert len(long) <= 230 and "\n" not in long


@pytest.mark.anyio
async def test_a_journaled_run_records_totp_steps_across_processes(tmp_path: Path) -> None:
    """With a journal, codes issued inside the run go to the user's state file (shared with any
    other process), not only to this process's registry: a resumed run waits for a new step."""
    clock = FakeClock(1_000_000_005.0)
    totp = Totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    steps: list[int] = []

    async def login(key: str) -> None:
        steps.append((await next_totp(totp, clock=clock)).step)

    await run_batch(["first"], login, journal=tmp_path / "a.journal")
    assert STEP_REGISTRY.last_used(STEP_REGISTRY.key_for(totp)) is None
    state = FileStepRegistry()  # the default path, as another process would open it
    assert state.last_used(state.key_for(totp)) == steps[0]
    await run_batch(["second"], login, journal=tmp_path / "a.journal")
    assert steps[1] == steps[0] + 1
    # An explicit registry wins over the state file.
    private = StepRegistry()
    await run_batch(["third"], login, journal=tmp_path / "b.journal", step_registry=private)
    assert private.last_used(private.key_for(totp)) == steps[2]
    assert state.last_used(state.key_for(totp)) == steps[1]


def test_an_unreadable_success_answer_is_an_unknown_outcome() -> None:
    """A 2xx whose body could not be read: the server may have applied the write."""
    assert is_outcome_unknown(ResponseDecodeError("POST /x: body is not JSON", status_code=200))
    assert is_outcome_unknown(ResponseDecodeError("POST /x: body is not JSON", status_code=201))
    assert is_outcome_unknown(ResponseDecodeError("POST /x: body is not JSON"))
    assert not is_outcome_unknown(ResponseDecodeError("POST /x: error body is not JSON", status_code=400))


@pytest.mark.anyio
async def test_a_write_answered_with_a_garbled_success_is_recorded_unknown(tmp_path: Path) -> None:
    calls = 0

    async def write(key: str) -> None:
        nonlocal calls
        calls += 1
        raise ResponseDecodeError("POST /reset: response body is not valid JSON", status_code=200)

    first = await run_batch(["a"], write, journal=tmp_path / "j")
    assert (first.unknown, first.failed) == (1, 0)
    second = await run_batch(["a"], write, journal=tmp_path / "j")  # not repeated blindly
    assert calls == 1 and second.unknown == 1
