"""Server-side TOTP verification with replay rejection, against the RFC vectors."""

from __future__ import annotations

import base64
import random
import threading

import pytest

from mfa_common.testing import (
    ReplayRejectingVerifier,
    generate_base32_secret,
    generate_recovery_codes,
)
from mfa_common.testing.totp_verifier import decode_base32_secret, hotp, totp

pytestmark = pytest.mark.timeout(10)

RFC_KEYS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238_VECTORS = [
    (59, {"SHA1": "94287082", "SHA256": "46119246", "SHA512": "90693936"}),
    (1111111109, {"SHA1": "07081804", "SHA256": "68084774", "SHA512": "25091201"}),
    (1111111111, {"SHA1": "14050471", "SHA256": "67062674", "SHA512": "99943326"}),
    (1234567890, {"SHA1": "89005924", "SHA256": "91819424", "SHA512": "93441116"}),
    (2000000000, {"SHA1": "69279037", "SHA256": "90698825", "SHA512": "38618901"}),
    (20000000000, {"SHA1": "65353130", "SHA256": "77737706", "SHA512": "47863826"}),
]
RFC4226_VECTORS = [
    "755224", "287082", "359152", "969429", "338314",
    "254676", "287922", "162583", "399871", "520489",
]  # fmt: skip

SECRET = base64.b32encode(RFC_KEYS["SHA1"]).decode()  # GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
NOW = 1_699_999_980.0  # the start of a 30-second step
STEP = int(NOW // 30)
assert STEP * 30 == NOW


def b32(key: bytes) -> str:
    return base64.b32encode(key).decode()


def code_at(step: int, secret: str = SECRET) -> str:
    return hotp(decode_base32_secret(secret), step)


def test_rfc4226_hotp_vectors() -> None:
    assert [hotp(RFC_KEYS["SHA1"], counter) for counter in range(10)] == RFC4226_VECTORS


@pytest.mark.parametrize(("when", "codes"), RFC6238_VECTORS)
@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
def test_rfc6238_vectors(when: int, codes: dict[str, str], algorithm: str) -> None:
    secret = b32(RFC_KEYS[algorithm])
    assert totp(secret, when, digits=8, algorithm=algorithm) == codes[algorithm]
    verifier = ReplayRejectingVerifier()
    verdict = verifier.verify(
        "user", codes[algorithm], secret_base32=secret, now=when, window=0, digits=8,
        algorithm=algorithm,
    )  # fmt: skip
    assert verdict == "ok"


def test_rfc6238_sha1_t59_through_the_verifier() -> None:
    verifier = ReplayRejectingVerifier()
    assert verifier.verify("u", "94287082", secret_base32=SECRET, now=59, digits=8) == "ok"
    assert verifier.last_step("u") == 1


def test_accepts_codes_within_one_step_either_way() -> None:
    for offset in (-1, 0, 1):
        verifier = ReplayRejectingVerifier()
        assert verifier.verify("u", code_at(STEP + offset), secret_base32=SECRET, now=NOW) == "ok"
        assert verifier.last_step("u") == STEP + offset
    verifier = ReplayRejectingVerifier()
    for offset in (-2, 2):
        assert verifier.verify("u", code_at(STEP + offset), secret_base32=SECRET, now=NOW) == "wrong"
    assert verifier.verify("u", code_at(STEP + 2), secret_base32=SECRET, now=NOW, window=2) == "ok"


def test_rejects_replay_within_the_same_step_then_accepts_the_next() -> None:
    verifier = ReplayRejectingVerifier()
    code = code_at(STEP)
    assert verifier.verify("u", code, secret_base32=SECRET, now=NOW) == "ok"
    assert verifier.verify("u", code, secret_base32=SECRET, now=NOW + 10) == "replayed"
    # The previous step's code is now also too old, although it was never used.
    assert verifier.verify("u", code_at(STEP - 1), secret_base32=SECRET, now=NOW + 10) == "replayed"
    assert verifier.verify("u", code_at(STEP + 1), secret_base32=SECRET, now=NOW + 30) == "ok"
    assert verifier.verify("u", code_at(STEP + 1), secret_base32=SECRET, now=NOW + 31) == "replayed"


def test_replay_state_is_per_user() -> None:
    verifier = ReplayRejectingVerifier()
    code = code_at(STEP)
    assert verifier.verify("alice", code, secret_base32=SECRET, now=NOW) == "ok"
    assert verifier.verify("bob", code, secret_base32=SECRET, now=NOW) == "ok"
    verifier.forget("alice")
    assert verifier.last_step("alice") is None
    assert verifier.verify("alice", code, secret_base32=SECRET, now=NOW) == "ok"
    verifier.clear()
    assert verifier.last_step("bob") is None


@pytest.mark.parametrize(
    "bad", ["", "12345", "1234567", "abcdef", "\uff11\uff12\uff13\uff14\uff15\uff16", "12 34 5x"]
)
def test_rejects_malformed_codes(bad: str) -> None:
    assert ReplayRejectingVerifier().verify("u", bad, secret_base32=SECRET, now=NOW) == "wrong"


def test_rejects_wrong_codes() -> None:
    verifier = ReplayRejectingVerifier()
    valid = {code_at(STEP + offset) for offset in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "123456", "999999") if c not in valid)
    assert verifier.verify("u", wrong, secret_base32=SECRET, now=NOW) == "wrong"
    assert verifier.last_step("u") is None
    # A wrong code does not consume the step.
    assert verifier.verify("u", code_at(STEP), secret_base32=SECRET, now=NOW) == "ok"


def test_tolerates_spaces_in_codes() -> None:
    code = code_at(STEP)
    spaced = f"{code[:3]} {code[3:]}"
    assert ReplayRejectingVerifier().verify("u", spaced, secret_base32=SECRET, now=NOW) == "ok"


def test_secret_decoding_is_tolerant() -> None:
    key = bytes(range(10))  # an 80-bit secret: 16 base32 characters, no padding needed
    canonical = b32(key)
    assert len(canonical) == 16
    assert decode_base32_secret(canonical.lower()) == key
    assert decode_base32_secret(" ".join(canonical[i : i + 4] for i in range(0, 16, 4))) == key
    odd = bytes(range(13))  # padding needed
    assert decode_base32_secret(b32(odd).rstrip("=")) == odd
    assert decode_base32_secret("-".join([b32(odd).rstrip("=")[:8], b32(odd).rstrip("=")[8:]])) == odd
    with pytest.raises(ValueError):
        decode_base32_secret("not base32!")
    with pytest.raises(ValueError):
        decode_base32_secret("")
    short_secret = canonical.lower()
    code = hotp(key, STEP)
    assert ReplayRejectingVerifier().verify("u", code, secret_base32=short_secret, now=NOW) == "ok"


def test_concurrent_use_of_one_code_succeeds_once() -> None:
    verifier = ReplayRejectingVerifier()
    code = code_at(STEP)
    verdicts: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait(5)
        verdict = verifier.verify("u", code, secret_base32=SECRET, now=NOW)
        with lock:
            verdicts.append(verdict)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(verdicts) == ["ok"] + ["replayed"] * 7


def test_generate_base32_secret() -> None:
    secret = generate_base32_secret()
    assert len(secret) == 32
    assert len(decode_base32_secret(secret)) == 20
    assert generate_base32_secret() != secret
    assert len(generate_base32_secret(10)) == 16
    assert generate_base32_secret(20, random.Random(1)) == generate_base32_secret(20, random.Random(1))


def test_generate_recovery_codes() -> None:
    codes = generate_recovery_codes(10, "abcdef0123", 8, random.Random(3))
    assert len(codes) == len(set(codes)) == 10
    assert all(len(c) == 8 and set(c) <= set("abcdef0123") for c in codes)
    assert codes == generate_recovery_codes(10, "abcdef0123", 8, random.Random(3))
    assert len(set(generate_recovery_codes(16))) == 16
    with pytest.raises(ValueError):
        generate_recovery_codes(10, "ab", 2)
