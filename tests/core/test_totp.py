from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import pickle
import struct
import warnings

import pyotp
import pytest

from mfa_common import totp as totp_module
from mfa_common.errors import InvalidCodeError, InvalidInputError, InvalidSecretError
from mfa_common.secret import Secret
from mfa_common.totp import (
    Algorithm,
    Totp,
    WeakSecretWarning,
    normalize_base32,
    validate_code_format,
)

SEED20 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
SEED32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA"
SEED64 = (
    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA"
)
SEEDS = {"SHA1": SEED20, "SHA256": SEED32, "SHA512": SEED64}
WEAK = "JBSWY3DPEHPK3PXP"
STRONG = "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ"

RFC4226 = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]

RFC6238 = [
    (59, "SHA1", "94287082"),
    (59, "SHA256", "46119246"),
    (59, "SHA512", "90693936"),
    (1111111109, "SHA1", "07081804"),
    (1111111109, "SHA256", "68084774"),
    (1111111109, "SHA512", "25091201"),
    (1111111111, "SHA1", "14050471"),
    (1111111111, "SHA256", "67062674"),
    (1111111111, "SHA512", "99943326"),
    (1234567890, "SHA1", "89005924"),
    (1234567890, "SHA256", "91819424"),
    (1234567890, "SHA512", "93441116"),
    (2000000000, "SHA1", "69279037"),
    (2000000000, "SHA256", "90698825"),
    (2000000000, "SHA512", "38618901"),
    (20000000000, "SHA1", "65353130"),
    (20000000000, "SHA256", "77737706"),
    (20000000000, "SHA512", "47863826"),
]


def fullwidth(text: str) -> str:
    """The full-width (NFKC-foldable) form of an ASCII string."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


def reference_hotp(base32: str, counter: int, digits: int = 6, digest: str = "sha1") -> str:
    key = base64.b32decode(base32 + "=" * (-len(base32) % 8))
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


@pytest.fixture(autouse=True)
def fresh_weak_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(totp_module, "_warned_weak", set())


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(RFC4226)))
def test_rfc4226_hotp_vectors(counter: int, expected: str) -> None:
    assert Totp(SEED20).code_at_step(counter) == expected


@pytest.mark.parametrize(("ts", "algorithm", "expected"), RFC6238)
def test_rfc6238_vectors(ts: int, algorithm: str, expected: str) -> None:
    totp = Totp(SEEDS[algorithm], digits=8, algorithm=algorithm)
    assert totp.code_at(ts) == expected
    assert totp.code_at(float(ts)) == expected
    assert totp.verify(expected, at=ts, window=0) == ts // 30


@pytest.mark.parametrize(
    ("ts", "expected"),
    [(59, "287082"), (1111111111, "050471"), (1234567890, "005924"), (2000000000, "279037")],
)
def test_rfc6238_six_digit_sha1(ts: int, expected: str) -> None:
    assert Totp(SEED20).code_at(ts) == expected


def test_64_bit_step() -> None:
    totp = Totp(SEED20, digits=8)
    assert totp.step_at(20000000000) == 0x27BC86AA
    assert totp.step_at(2**40 * 30 + 29.9) == 2**40
    assert totp.code_at_step(2**40) == reference_hotp(SEED20, 2**40, 8)
    assert totp.code_at_step(2**64 - 1) == reference_hotp(SEED20, 2**64 - 1, 8)
    with pytest.raises(InvalidInputError):
        totp.code_at_step(2**64)
    with pytest.raises(InvalidInputError):
        totp.code_at_step(-1)
    with pytest.raises(InvalidInputError):
        totp.code_at(-1.0)


def test_wrong_seed_length_gives_the_documented_wrong_code() -> None:
    assert Totp(SEED20, digits=8, algorithm="SHA256").code_at(59) == "32247374"


@pytest.mark.parametrize(
    "variant",
    [
        "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
        "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
        "GEZD-GNBV-GY3T-QOJQ-GEZD-GNBV-GY3T-QOJQ",
        "  GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n",
        fullwidth("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
    ],
)
def test_secret_variants_normalise(variant: str) -> None:
    assert normalize_base32(variant) == SEED20
    assert Totp(variant).code_at(59) == "287082"


def test_missing_and_present_padding() -> None:
    assert normalize_base32(SEED32) == SEED32
    assert normalize_base32(SEED32 + "====") == SEED32
    assert Totp(SEED32 + "====", digits=8, algorithm="sha256").code_at(59) == "46119246"
    assert Totp(SEED64, digits=8, algorithm="SHA512").code_at(59) == "90693936"


def test_weak_80_bit_secret_works_and_warns_once() -> None:
    with pytest.warns(WeakSecretWarning) as record:
        weak = Totp(WEAK)
    assert len(record) == 1
    assert WEAK not in str(record[0].message)
    assert weak.weak is True
    assert weak.code_at(1_700_000_000) == reference_hotp(WEAK, 1_700_000_000 // 30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Totp(WEAK.lower())
        assert Totp(STRONG).weak is False


def test_pyotp_itself_rejects_the_weak_secret() -> None:
    with pytest.raises(ValueError, match="112"):
        pyotp.TOTP(WEAK)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "----",
        "JBSWY3DPEHPK3PX1",
        "JBSWY3DPEHPK3PX!",
        "JBSWY3DPEHPK3PXÄ",
        "JBSW=Y3DPEHPK3PXP",
        "A",
        "ABC",
        "ABCDEF",
        "JBSWY3DPEHPK3PXPA",
        "JBSWY3DPEHPK3PXPABC",
        "JBSWY3DPEHPK3PXPABCDEF",
        "A" * 2000,
    ],
)
def test_invalid_secret_raises_without_echoing(bad: str) -> None:
    with pytest.raises(InvalidSecretError) as info:
        Totp(bad)
    with pytest.raises(InvalidSecretError):
        normalize_base32(bad)
    if bad.strip("- "):
        assert bad.strip() not in str(info.value)
        assert bad.strip() not in repr(info.value)


def test_valid_short_lengths() -> None:
    for length in (2, 4, 5, 7, 8):
        assert normalize_base32("A" * length) == "A" * length


@pytest.mark.parametrize("period", [30, 60, 300])
def test_periods(period: int) -> None:
    totp = Totp(STRONG, period=period)
    for ts in (0, 29.5, 59, 299, 300, 1_700_000_123.25, 2_000_000_000):
        step = int(ts // period)
        assert totp.step_at(ts) == step
        assert totp.code_at(ts) == reference_hotp(STRONG, step)
    assert totp.seconds_left_in_step(period * 10 + 1.5) == pytest.approx(period - 1.5)
    assert totp.seconds_left_in_step(period * 10) == period


def test_cross_check_with_pyotp_160_bit() -> None:
    secret = pyotp.random_base32()
    for algorithm, digest in (("SHA1", hashlib.sha1), ("SHA256", hashlib.sha256)):
        for digits in (6, 7, 8):
            for interval in (30, 60):
                ours = Totp(secret, digits=digits, algorithm=algorithm, period=interval)
                theirs = pyotp.TOTP(secret, digits=digits, digest=digest, interval=interval)
                for ts in (0, 59, 1_111_111_111, 1_700_000_000, 4_102_444_800):
                    assert ours.code_at(ts) == theirs.at(ts)


def test_verify_window_and_formats() -> None:
    totp = Totp(STRONG)
    now = 1_700_000_015
    step = totp.step_at(now)
    assert totp.verify(totp.code_at_step(step), at=now) == step
    assert totp.verify(totp.code_at_step(step - 1), at=now) == step - 1
    assert totp.verify(totp.code_at_step(step + 1), at=now) == step + 1
    assert totp.verify(totp.code_at_step(step + 2), at=now) is None
    assert totp.verify(totp.code_at_step(step + 2), at=now, window=2) == step + 2
    assert totp.verify(totp.code_at_step(step - 1), at=now, window=0) is None
    code = totp.code_at_step(step)
    assert totp.verify(f"{code[:3]} {code[3:]}", at=now) == step
    wrong = str((int(code) + 1) % 1_000_000).zfill(6)
    assert totp.verify(wrong, at=now, window=0) is None
    for malformed in ("", "12345", "1234567", "12a456", code + "0", "x" * 5000):
        assert totp.verify(malformed, at=now) is None
    with pytest.raises(InvalidInputError):
        totp.verify(code, at=now, window=-1)
    assert Totp(STRONG).verify(Totp(STRONG).code_at(10), at=10) == 0


def test_validate_code_format() -> None:
    assert validate_code_format("123456", digits=6) == "123456"
    assert validate_code_format(" 123 456 ", digits=6) == "123456"
    assert validate_code_format(fullwidth("123456"), digits=6) == "123456"
    assert validate_code_format("12345678", digits=8) == "12345678"
    for bad in ("12345", "1234567", "12345a", "١٢٣٤٥٦", "123-456", "", "9" * 100):
        with pytest.raises(InvalidCodeError) as info:
            validate_code_format(bad, digits=6)
        if bad:
            assert bad not in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"digits": 5},
        {"digits": 9},
        {"digits": True},
        {"period": 0},
        {"period": -30},
        {"period": 30.0},
        {"algorithm": "MD5"},
        {"algorithm": "sha3"},
    ],
)
def test_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError) as info:
        Totp(STRONG, **kwargs)  # type: ignore[arg-type]
    assert not isinstance(info.value, InvalidSecretError)


def test_algorithm_parsing() -> None:
    assert Algorithm("sha256") is Algorithm.SHA256
    assert Algorithm("Sha-512") is Algorithm.SHA512
    assert Algorithm("SHA1") is Algorithm.SHA1
    assert str(Algorithm.SHA1) == "SHA1"
    with pytest.raises(ValueError):
        Algorithm("md5")
    assert Totp(STRONG, algorithm="sha512").algorithm is Algorithm.SHA512


def test_no_secret_leaks() -> None:
    totp = Totp(STRONG, issuer="Example", account="alice@example.com")
    for text in (repr(totp), str(totp), f"{totp}", repr(totp.secret), str(totp.to_uri())):
        assert STRONG not in text
        assert STRONG.lower() not in text
    assert "issuer='Example'" in repr(totp)
    assert "period=30" in repr(totp)
    assert not hasattr(totp, "__dict__")
    with pytest.raises(TypeError):
        vars(totp)
    for attr in totp.__slots__:
        assert STRONG not in repr(getattr(totp, attr))
        inner = getattr(getattr(totp, attr), "__dict__", {})
        assert all(STRONG not in repr(value) for value in inner.values())
    with pytest.raises(TypeError):
        pickle.dumps(totp)
    with pytest.raises(TypeError):
        pickle.dumps(totp._otp)
    assert totp.secret.reveal() == STRONG


def test_immutable_and_equality() -> None:
    a = Totp(STRONG, issuer="A")
    b = Totp(STRONG.lower(), issuer="B")
    with pytest.raises(AttributeError):
        a.digits = 8
    with pytest.raises(AttributeError):
        del a.period
    assert a == b
    assert hash(a) == hash(b)
    assert a.fingerprint == b.fingerprint
    assert a != Totp(STRONG, digits=8)
    assert a != Totp(STRONG, period=60)
    assert a != Totp(STRONG, algorithm="SHA256")
    assert a != Totp(SEED20)
    assert a.fingerprint != Totp(SEED20).fingerprint
    assert a.fingerprint == Secret(base64.b32decode(STRONG)).fingerprint()
    assert copy.deepcopy(a) is a


def test_uri_round_trip() -> None:
    totp = Totp(STRONG, digits=8, algorithm="SHA256", period=60, issuer="ACME Co", account="j@x")
    uri = totp.to_uri()
    assert isinstance(uri, Secret)
    assert uri.reveal() == (
        f"otpauth://totp/ACME%20Co:j%40x?secret={STRONG}&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60"
    )
    again = Totp.from_uri(uri)
    assert again == totp
    assert (again.issuer, again.account) == ("ACME Co", "j@x")
    assert Totp.from_uri(totp.to_uri(account="other", issuer="Else")).account == "other"
    with pytest.raises(InvalidInputError):
        Totp(STRONG).to_uri()


def test_long_period_from_uri() -> None:
    totp = Totp.from_uri(f"otpauth://totp/X:y?secret={STRONG}&issuer=X&period=300")
    assert totp.period == 300
    assert totp.code_at(1_700_000_000) == reference_hotp(STRONG, 1_700_000_000 // 300)


def test_hotp_uri_refused_by_totp() -> None:
    from mfa_common.errors import InvalidOtpauthUriError

    with pytest.raises(InvalidOtpauthUriError):
        Totp.from_uri(f"otpauth://hotp/X:y?secret={STRONG}&counter=0")
