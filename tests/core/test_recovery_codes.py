from __future__ import annotations

import json
import os
import pickle
import secrets
import stat
import sys
import threading
from pathlib import Path

import anyio
import pytest

from mfa_common.code_providers import MfaChallenge, RecoveryCodeProvider
from mfa_common.errors import (
    InvalidInputError,
    InvalidRecoveryCodeError,
    RecoveryCodesExhaustedError,
)
from mfa_common.recovery_codes import (
    RecoveryCodeFormat,
    RecoveryCodeStore,
    RecoveryCodeStoreMismatchError,
    classify_code,
    normalize_recovery_code,
)
from mfa_common.secret import Secret

F = RecoveryCodeFormat


def fullwidth(text: str) -> str:
    """The full-width (NFKC-foldable) form of an ASCII string."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


def hex_codes(count: int) -> list[str]:
    return [secrets.token_hex(8) for _ in range(count)]


@pytest.mark.parametrize(
    ("fmt", "raw", "canonical"),
    [
        (F.SHELLHUB, "MLNSPOB2L2ZRO2D5", "MLNSPOB2L2ZRO2D5"),
        (F.SHELLHUB, "mlns-pob2 l2zr_o2d5", "MLNSPOB2L2ZRO2D5"),
        (F.SHELLHUB, fullwidth("MLNSPOB2L2ZRO2D5"), "MLNSPOB2L2ZRO2D5"),
        (F.GITHUB, "abcde-12345", "abcde-12345"),
        (F.GITHUB, "ABCDE12345", "abcde-12345"),
        (F.GITHUB, " abcde_12345\n", "abcde-12345"),
        (F.GITHUB, "abc.de-123.45", "abcde-12345"),
        (F.NUMERIC8, "1234 5678", "12345678"),
        (F.NUMERIC8, "1234-5678", "12345678"),
        (F.NUMERIC8, fullwidth("12345678"), "12345678"),
        (F.HEX16, "0123-4567-89AB-CDEF", "0123456789abcdef"),
        (F.HEX16, "0123456789abcdef", "0123456789abcdef"),
        (F.DJANGO_OTP, "ABCD 2345", "abcd2345"),
        (F.DJANGO_OTP, "abcd-2345", "abcd2345"),
        (F.GENERIC, " Foo-Bar_Baz.9 ", "Foo-Bar_Baz.9"),
        (F.GENERIC, "ab cd\tef", "abcdef"),
        (F.GENERIC, fullwidth("wxyz"), "wxyz"),
    ],
)
def test_normalisation_table(fmt: RecoveryCodeFormat, raw: str, canonical: str) -> None:
    result = normalize_recovery_code(raw, fmt)
    assert isinstance(result, Secret)
    assert result.reveal() == canonical
    assert normalize_recovery_code(Secret(raw), fmt).reveal() == canonical


@pytest.mark.parametrize(
    ("fmt", "raw"),
    [
        (F.SHELLHUB, "MLNSPOB2L2ZRO2D1"),
        (F.SHELLHUB, "MLNSPOB2L2ZRO2D"),
        (F.SHELLHUB, "MLNSPOB2L2ZRO2D55"),
        (F.GITHUB, "abcdg-12345"),
        (F.GITHUB, "abcd-12345"),
        (F.GITHUB, "abcde-123456"),
        (F.NUMERIC8, "1234567"),
        (F.NUMERIC8, "1234567a"),
        (F.NUMERIC8, "١٢٣٤٥٦٧٨"),
        (F.HEX16, "0123456789abcde"),
        (F.HEX16, "0123456789abcdeg"),
        (F.DJANGO_OTP, "abcdefg1"),
        (F.DJANGO_OTP, "abcdefgha"),
        (F.GENERIC, "abc"),
        (F.GENERIC, "a" * 65),
        (F.GENERIC, "abc\x00def"),
        (F.GENERIC, "x" * 300),
    ],
)
def test_rejection(fmt: RecoveryCodeFormat, raw: str) -> None:
    with pytest.raises(InvalidRecoveryCodeError) as info:
        normalize_recovery_code(raw, fmt)
    message = str(info.value)
    assert fmt.value in message
    assert raw not in message
    assert raw[:4] not in message.replace(fmt.value, "")


@pytest.mark.parametrize(
    ("raw", "fmt", "expected"),
    [
        ("123456", None, "totp"),
        ("123 456", None, "totp"),
        ("1234567", None, "totp"),
        ("12345678", None, "totp"),
        ("12345678", F.NUMERIC8, "recovery"),
        ("23456723", F.DJANGO_OTP, "recovery"),
        ("123456", F.NUMERIC8, "totp"),
        ("abcde-12345", None, "recovery"),
        ("MLNSPOB2L2ZRO2D5", None, "recovery"),
        ("0123456789abcdef", None, "recovery"),
        ("abcd2345", None, "recovery"),
        ("hello", None, "unknown"),
        ("12345", None, "unknown"),
        ("MLNSPOB2L2ZRO2D5", F.GITHUB, "unknown"),
        ("abcde-12345", F.GITHUB, "recovery"),
        ("123456", F.GENERIC, "totp"),
        ("anything-goes", F.GENERIC, "recovery"),
        ("x" * 1000, None, "unknown"),
    ],
)
def test_classify(raw: str, fmt: RecoveryCodeFormat | None, expected: str) -> None:
    assert classify_code(raw, recovery_format=fmt) == expected


def test_reserve_settle_and_counts() -> None:
    store = RecoveryCodeStore(["aaaaa-11111", "bbbbb-22222", "ccccc-33333"], format=F.GITHUB)
    assert store.remaining == 3
    first = store.reserve()
    assert first.index == 0
    assert first.code.reveal() == "aaaaa-11111"
    assert store.remaining == 2
    first.mark_used()
    second = store.reserve()
    second.mark_rejected()
    third = store.reserve()
    third.mark_uncertain()
    assert store.counts() == {"unused": 0, "reserved": 0, "used": 1, "rejected": 1, "uncertain": 1}
    with pytest.raises(RecoveryCodesExhaustedError) as info:
        store.reserve()
    assert "11111" not in str(info.value)


def test_release_returns_code() -> None:
    store = RecoveryCodeStore(hex_codes(2), format=F.HEX16)
    reservation = store.reserve()
    code = reservation.code
    assert store.remaining == 1
    reservation.release()
    assert store.remaining == 2
    again = store.reserve()
    assert again.index == reservation.index
    assert again.code == code


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("mark_used", "mark_used"),
        ("mark_used", "release"),
        ("release", "mark_used"),
        ("mark_uncertain", "mark_rejected"),
        ("mark_rejected", "release"),
    ],
)
def test_settling_twice_raises(first: str, second: str) -> None:
    store = RecoveryCodeStore(hex_codes(1), format=F.HEX16)
    reservation = store.reserve()
    getattr(reservation, first)()
    with pytest.raises(RuntimeError):
        getattr(reservation, second)()


def test_uncertain_never_handed_out_again() -> None:
    store = RecoveryCodeStore(hex_codes(2), format=F.HEX16)
    store.reserve().mark_uncertain()
    second = store.reserve()
    assert second.index == 1
    second.release()
    assert store.reserve().index == 1
    with pytest.raises(RecoveryCodesExhaustedError):
        store.reserve()


def test_duplicates_and_invalid_input() -> None:
    store = RecoveryCodeStore(["ABCDE-12345", "abcde12345", "fffff-00000"], format=F.GITHUB)
    assert len(store) == 2
    with pytest.raises(InvalidRecoveryCodeError):
        RecoveryCodeStore(["nope"], format=F.GITHUB)
    with pytest.raises(RecoveryCodesExhaustedError):
        RecoveryCodeStore([]).reserve()


@pytest.mark.anyio
async def test_concurrent_tasks_never_share_a_code() -> None:
    codes = hex_codes(150)
    store = RecoveryCodeStore(codes, format=F.HEX16)
    handed_out: list[str] = []
    exhausted = 0

    async def worker() -> None:
        nonlocal exhausted
        await anyio.sleep(0)
        try:
            reservation = store.reserve()
        except RecoveryCodesExhaustedError:
            exhausted += 1
            return
        await anyio.sleep(0)
        handed_out.append(reservation.code.reveal())
        await anyio.sleep(0)
        reservation.mark_used()

    async with anyio.create_task_group() as tg:
        for _ in range(200):
            tg.start_soon(worker)

    assert len(handed_out) == 150
    assert len(set(handed_out)) == 150
    assert set(handed_out) == set(codes)
    assert exhausted == 50
    assert store.counts()["used"] == 150


def test_concurrent_threads_never_share_a_code() -> None:
    store = RecoveryCodeStore(hex_codes(2000), format=F.HEX16)
    taken: list[list[int]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def worker(slot: int) -> None:
        start.wait()
        while True:
            try:
                reservation = store.reserve()
            except RecoveryCodesExhaustedError:
                return
            taken[slot].append(reservation.index)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(old_interval)
    indices = [index for chunk in taken for index in chunk]
    assert sorted(indices) == list(range(2000))
    assert store.counts()["reserved"] == 2000


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_persistence_mode_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "codes.json"
    codes = ["MLNSPOB2L2ZRO2D5", "AAAABBBBCCCCDDDD", "EEEEFFFFGGGGHHHH", "IIIIJJJJKKKKLLLL"]
    old_umask = os.umask(0)
    try:
        store = RecoveryCodeStore(codes, format=F.SHELLHUB, path=path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.reserve().mark_used()
    store.reserve().mark_rejected()
    store.reserve()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Beside it only the lock processes sharing the file take turns on, owner-only too.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.json", "codes.json.lock"]
    assert stat.S_IMODE((tmp_path / "codes.json.lock").stat().st_mode) == 0o600

    document = json.loads(path.read_text())
    assert document["version"] == 1
    assert document["format"] == "shellhub"
    assert [entry["state"] for entry in document["codes"]] == [
        "used",
        "rejected",
        "reserved",
        "unused",
    ]
    assert [entry["code"] for entry in document["codes"]] == codes

    reloaded = RecoveryCodeStore.load(path)
    assert reloaded.format is F.SHELLHUB
    assert reloaded.counts() == {
        "unused": 1,
        "reserved": 0,
        "used": 1,
        "rejected": 1,
        "uncertain": 1,
    }
    assert json.loads(path.read_text())["codes"][2]["state"] == "uncertain"
    reservation = reloaded.reserve()
    assert reservation.index == 3
    assert reservation.code.reveal() == codes[3]
    reservation.release()
    again = RecoveryCodeStore.load(str(path), format=F.SHELLHUB)
    assert again.remaining == 1


def test_two_stores_on_one_file_never_hand_out_one_code(tmp_path: Path) -> None:
    """Two processes that opened one store file each hold their own copy of the states: each
    reservation and settlement reads the file first, under its lock."""
    path = tmp_path / "codes.json"
    codes = hex_codes(4)
    RecoveryCodeStore(codes, format=F.HEX16, path=path)
    first, second = RecoveryCodeStore.load(path), RecoveryCodeStore.load(path)

    a = first.reserve()
    b = second.reserve()
    assert a.code.reveal() != b.code.reveal()
    a.mark_used()
    b.mark_rejected()
    c = first.reserve()
    assert c.code.reveal() not in (a.code.reveal(), b.code.reveal())
    c.mark_used()
    # The file holds every settlement, whichever store wrote last.
    states = [entry["state"] for entry in json.loads(path.read_text())["codes"]]
    assert sorted(states) == ["rejected", "unused", "used", "used"]
    d = second.reserve()
    assert d.code.reveal() not in (a.code.reveal(), b.code.reveal(), c.code.reveal())
    d.release()
    assert RecoveryCodeStore.load(path).remaining == 1


def test_a_code_reserved_elsewhere_and_then_used_is_taken_in_as_used(tmp_path: Path) -> None:
    path = tmp_path / "codes.json"
    RecoveryCodeStore(hex_codes(2), format=F.HEX16, path=path)
    holder = RecoveryCodeStore.load(path)
    reservation = holder.reserve()
    # Another process opens the file while the code is out: it must not hand that code out.
    other = RecoveryCodeStore.load(path)
    assert other.counts()["uncertain"] == 1
    reservation.mark_used()  # the holder settles its own reservation as usual
    spare = other.reserve()
    assert spare.code.reveal() != reservation.code.reveal()
    spare.mark_used()
    assert sorted(e["state"] for e in json.loads(path.read_text())["codes"]) == ["used", "used"]


def test_a_store_whose_file_got_other_codes_refuses_to_overwrite_it(tmp_path: Path) -> None:
    path = tmp_path / "codes.json"
    RecoveryCodeStore(hex_codes(2), format=F.HEX16, path=path)
    stale = RecoveryCodeStore.load(path)
    fresh_codes = hex_codes(2)
    RecoveryCodeStore(fresh_codes, format=F.HEX16, path=path, replace=True)  # newly issued ones
    with pytest.raises(RecoveryCodeStoreMismatchError, match=r"codes\.json"):
        stale.reserve()
    assert [e["code"] for e in json.loads(path.read_text())["codes"]] == fresh_codes


_RESERVE_IN_A_PROCESS = """
import sys
from mfa_common.recovery_codes import RecoveryCodeStore
store = RecoveryCodeStore.load(sys.argv[1])
sys.stdin.readline()  # every process has loaded the file before any reserves
for _ in range(int(sys.argv[2])):
    reservation = store.reserve()
    print(reservation.code.reveal(), flush=True)
    reservation.mark_used()
"""


def test_processes_sharing_a_store_file_never_use_one_code_twice(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "codes.json"
    processes, each = 4, 5
    RecoveryCodeStore(hex_codes(processes * each), format=F.HEX16, path=path)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RESERVE_IN_A_PROCESS, str(path), str(each)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(processes)
    ]
    outputs = [proc.communicate("go\n", timeout=60) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    handed_out = [line for out, _ in outputs for line in out.split()]
    assert len(handed_out) == processes * each
    assert len(set(handed_out)) == len(handed_out)
    assert RecoveryCodeStore.load(path).counts()["used"] == processes * each


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_load_refuses_shared_file(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "codes.json"
    RecoveryCodeStore(["abcde-12345"], format=F.GITHUB, path=path)
    path.chmod(mode)
    with pytest.raises(InvalidInputError, match="chmod 600") as info:
        RecoveryCodeStore.load(path)
    assert "abcde" not in str(info.value)


def test_load_rejects_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "codes.json"

    def write(document: object) -> None:
        path.write_text(json.dumps(document) if not isinstance(document, str) else document)
        path.chmod(0o600)

    write("{not json abcde-12345")
    with pytest.raises(InvalidInputError, match="not valid JSON") as info:
        RecoveryCodeStore.load(path)
    assert "abcde" not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__

    write({"version": 2, "format": "github", "codes": []})
    with pytest.raises(InvalidInputError, match="version"):
        RecoveryCodeStore.load(path)
    write({"version": 1, "format": "nope", "codes": []})
    with pytest.raises(InvalidInputError, match="format"):
        RecoveryCodeStore.load(path)
    write({"version": 1, "format": "github", "codes": [{"code": "abcde-12345", "state": "x"}]})
    with pytest.raises(InvalidInputError, match="state"):
        RecoveryCodeStore.load(path)
    write({"version": 1, "format": "github", "codes": [{"code": "zzzzz-12345", "state": "unused"}]})
    with pytest.raises(InvalidRecoveryCodeError) as bad_code:
        RecoveryCodeStore.load(path)
    assert "zzzzz" not in str(bad_code.value)
    write({"version": 1, "format": "github", "codes": []})
    with pytest.raises(InvalidInputError, match="not hex16"):
        RecoveryCodeStore.load(path, format=F.HEX16)


def test_failed_write_leaves_state_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "codes.json"
    store = RecoveryCodeStore(hex_codes(2), format=F.HEX16, path=path)
    reservation = store.reserve()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.reserve()
    with pytest.raises(OSError, match="disk full"):
        reservation.mark_used()
    assert store.counts()["unused"] == 1
    assert store.counts()["reserved"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.json", "codes.json.lock"]
    monkeypatch.undo()
    reservation.mark_used()
    assert json.loads(path.read_text())["codes"][0]["state"] == "used"


def test_no_code_in_repr_and_not_picklable(tmp_path: Path) -> None:
    codes = hex_codes(3)
    store = RecoveryCodeStore(codes, format=F.HEX16, path=tmp_path / "c.json")
    reservation = store.reserve()
    texts = [repr(store), str(store), f"{store}", repr(reservation), str(reservation)]
    texts.append(repr(reservation.code))
    for text in texts:
        for code in codes:
            assert code not in text
    assert "unused=2" in repr(store)
    assert "reserved=1" in repr(store)
    assert "index=0" in repr(reservation)
    with pytest.raises(TypeError):
        pickle.dumps(store)
    with pytest.raises(TypeError):
        pickle.dumps(reservation)


# ------------------------------------------------------------ reopening a path, off-loop file I/O

SHELLHUB_CODES = ["MLNSPOB2L2ZRO2D5", "AAAABBBBCCCCDDDD", "EEEEFFFFGGGGHHHH"]


def test_constructing_on_an_existing_store_keeps_its_states(tmp_path: Path) -> None:
    path = tmp_path / "codes.json"
    store = RecoveryCodeStore(SHELLHUB_CODES, format=F.SHELLHUB, path=path)
    spent = store.reserve()
    spent.mark_used()
    store.reserve()  # left reserved: the process "dies" here
    again = RecoveryCodeStore(list(reversed(SHELLHUB_CODES)), format=F.SHELLHUB, path=path)
    assert again.counts() == {"unused": 1, "reserved": 0, "used": 1, "rejected": 0, "uncertain": 1}
    offered = again.reserve()
    assert offered.code.reveal() == SHELLHUB_CODES[2]
    assert offered.code != spent.code
    assert json.loads(path.read_text())["codes"][0]["state"] == "used"


def test_constructing_on_a_store_of_other_codes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "codes.json"
    RecoveryCodeStore(SHELLHUB_CODES, format=F.SHELLHUB, path=path).reserve().mark_used()
    before = path.read_text()
    with pytest.raises(RecoveryCodeStoreMismatchError, match="replace=True") as info:
        RecoveryCodeStore(SHELLHUB_CODES[:2], format=F.SHELLHUB, path=path)
    assert isinstance(info.value, InvalidInputError)
    assert not any(code in str(info.value) for code in SHELLHUB_CODES)
    with pytest.raises(RecoveryCodeStoreMismatchError):
        RecoveryCodeStore(["MLNSPOB2L2ZRO2D5"], format=F.GENERIC, path=path)
    assert path.read_text() == before  # nothing lost
    fresh = RecoveryCodeStore(["IIIIJJJJKKKKLLLL"], format=F.SHELLHUB, path=path, replace=True)
    assert fresh.remaining == 1
    assert RecoveryCodeStore.load(path).remaining == 1


def _record_store_writers(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The threads that write store files from now on, in order."""
    import mfa_common.recovery_codes as module

    writers: list[threading.Thread] = []
    original = module._write_private_json

    def recording_write(path: str, document: object) -> None:
        writers.append(threading.current_thread())
        original(path, document)

    monkeypatch.setattr(module, "_write_private_json", recording_write)
    return writers


@pytest.mark.anyio
async def test_async_store_methods_write_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.current_thread()
    writers = _record_store_writers(monkeypatch)
    path = tmp_path / "codes.json"
    codes = [*SHELLHUB_CODES, "IIIIJJJJKKKKLLLL"]
    store = await RecoveryCodeStore.acreate(codes, format=F.SHELLHUB, path=path)
    first = await store.areserve()
    await first.amark_used()
    second = await store.areserve()
    await second.arelease()
    third = await store.areserve()
    await third.amark_rejected()
    fourth = await store.areserve()
    await fourth.amark_uncertain()
    reloaded = await RecoveryCodeStore.aload(path, format=F.SHELLHUB)
    issued = await RecoveryCodeProvider(reloaded).issue(MfaChallenge(kind="recovery"))
    assert reloaded.counts()["reserved"] == 1
    await issued.asettle("not_sent")
    assert len(writers) == 11
    assert all(thread is not loop_thread for thread in writers)
    assert reloaded.counts() == {"unused": 1, "reserved": 0, "used": 1, "rejected": 1, "uncertain": 1}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "state"),
    [(200, "used"), (401, "rejected"), (500, "uncertain"), ("not sent", "unused"), ("dropped", "uncertain")],
)
async def test_the_login_driver_settles_recovery_codes_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: int | str, state: str
) -> None:
    """Every settlement the driver makes (by the settlement table, or after a failed send)
    writes the store file in a worker thread, and records the right state."""
    import httpx

    from mfa_common.auth.driver import drive
    from mfa_common.auth.machine import SendCode, Settlement
    from mfa_common.clock import FakeClock
    from mfa_common.errors import APIConnectionError

    loop_thread = threading.current_thread()
    path = tmp_path / "codes.json"
    store = await RecoveryCodeStore.acreate(SHELLHUB_CODES, format=F.SHELLHUB, path=path)
    provider = RecoveryCodeProvider(store)
    writers = _record_store_writers(monkeypatch)
    table = {200: Settlement.ACCEPTED, 401: Settlement.REJECTED}

    def flow():  # type: ignore[no-untyped-def]
        yield SendCode(
            challenge=MfaChallenge(kind="recovery"),
            build=lambda issued: httpx.Request(
                "POST", "http://127.0.0.1:9/mfa", content=issued.value.reveal()
            ),
            settle=lambda status, headers, body: table.get(status, Settlement.UNKNOWN),
        )
        return "session"

    async def send(request: httpx.Request, *, max_retries: int | None = None) -> httpx.Response:
        if answer == "not sent":
            raise APIConnectionError("connect failed", request_sent=False)
        if answer == "dropped":
            raise APIConnectionError("connection reset mid-answer", request_sent=True)
        assert isinstance(answer, int)
        return httpx.Response(answer, request=request)

    try:
        assert await drive(flow, send=send, provider_for=lambda c: provider, clock=FakeClock()) == "session"
    except APIConnectionError:
        assert isinstance(answer, str)
    reloaded = RecoveryCodeStore.load(path, format=F.SHELLHUB)
    assert reloaded.counts()[state] == (len(SHELLHUB_CODES) if state == "unused" else 1)
    assert reloaded.counts()["reserved"] == 0
    assert len(writers) == 2  # the reservation, then the settlement
    assert all(thread is not loop_thread for thread in writers)


@pytest.mark.anyio
async def test_a_reservation_cancelled_during_its_write_goes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mfa_common.recovery_codes as module

    path = tmp_path / "codes.json"
    store = RecoveryCodeStore(SHELLHUB_CODES, format=F.SHELLHUB, path=path)
    entered, release = threading.Event(), threading.Event()
    original = module._write_private_json

    def gated_write(file_path: str, document: object) -> None:
        if not release.is_set():
            entered.set()
            assert release.wait(30)
        original(file_path, document)

    monkeypatch.setattr(module, "_write_private_json", gated_write)
    outcome: list[object] = []
    async with anyio.create_task_group() as tg:

        async def reserve() -> None:
            with anyio.CancelScope() as scope:
                cancel_scopes.append(scope)
                outcome.append(await store.areserve())
            outcome.append("cancelled" if scope.cancelled_caught else "done")

        cancel_scopes: list[anyio.CancelScope] = []
        tg.start_soon(reserve)
        # The write is under way in its thread (bounded: a broken store must fail, not hang).
        assert await anyio.to_thread.run_sync(entered.wait, 30)
        cancel_scopes[0].cancel()
        release.set()
    assert outcome == ["cancelled"]
    assert store.remaining == 3
    assert RecoveryCodeStore.load(path).remaining == 3
