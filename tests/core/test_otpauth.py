from __future__ import annotations

import pickle

import pytest

from mfa_common.errors import InvalidInputError, InvalidOtpauthUriError, InvalidSecretError
from mfa_common.otpauth import OtpauthUri, build_otpauth_uri, parse_otpauth_uri
from mfa_common.secret import Secret

WEAK = "JBSWY3DPEHPK3PXP"
ACME = "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ"


def test_key_uri_wiki_examples() -> None:
    first = parse_otpauth_uri(f"otpauth://totp/Example:alice@google.com?secret={WEAK}&issuer=Example")
    assert first.type == "totp"
    assert first.secret.reveal() == WEAK
    assert (first.issuer, first.account) == ("Example", "alice@google.com")
    assert (first.algorithm, first.digits, first.period, first.counter) == ("SHA1", 6, 30, None)
    assert dict(first.extra) == {}

    second = parse_otpauth_uri(
        f"otpauth://totp/ACME%20Co:john.doe@email.com?secret={ACME}"
        "&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"
    )
    assert (second.issuer, second.account) == ("ACME Co", "john.doe@email.com")
    assert second.secret.reveal() == ACME


def test_encoded_colon_splits_when_issuer_matches() -> None:
    parsed = parse_otpauth_uri(
        f"otpauth://totp/Big%20Corporation%3A%20alice%40bigco.com?secret={WEAK}&issuer=Big%20Corporation"
    )
    assert parsed.issuer == "Big Corporation"
    assert parsed.account == "alice@bigco.com"


def test_encoded_colon_without_issuer_param_splits_the_label() -> None:
    """Key URI format: issuer prefix and account are separated by a literal or encoded colon."""
    parsed = parse_otpauth_uri(f"otpauth://totp/Example%3Aalice%40google.com?secret={WEAK}")
    assert (parsed.issuer, parsed.account) == ("Example", "alice@google.com")
    lower = parse_otpauth_uri(f"otpauth://totp/Big%20Corporation%3a%20alice?secret={WEAK}")
    assert (lower.issuer, lower.account) == ("Big Corporation", "alice")


def test_encoded_colon_in_account_stays_when_issuer_param_differs() -> None:
    parsed = parse_otpauth_uri(f"otpauth://totp/Example:team%3Aalice?secret={WEAK}&issuer=Example")
    assert (parsed.issuer, parsed.account) == ("Example", "team:alice")
    other = parse_otpauth_uri(f"otpauth://totp/team%3Aalice?secret={WEAK}&issuer=Example")
    assert (other.issuer, other.account) == ("Example", "team:alice")


def test_literal_colon_and_leading_spaces() -> None:
    parsed = parse_otpauth_uri(f"otpauth://totp/Example:%20%20alice?secret={WEAK}")
    assert (parsed.issuer, parsed.account) == ("Example", "alice")
    no_param = parse_otpauth_uri(f"otpauth://totp/Example:alice?secret={WEAK}")
    assert no_param.issuer == "Example"
    plain = parse_otpauth_uri(f"otpauth://totp/alice?secret={WEAK}&issuer=Example")
    assert (plain.issuer, plain.account) == ("Example", "alice")


def test_case_insensitive_scheme_type_and_algorithm() -> None:
    parsed = parse_otpauth_uri(
        f"OTPAUTH://TOTP/Example:alice?secret={WEAK.lower()}&algorithm=sha256&digits=8&period=60"
    )
    assert parsed.type == "totp"
    assert parsed.secret.reveal() == WEAK
    assert (parsed.algorithm, parsed.digits, parsed.period) == ("SHA256", 8, 60)
    assert parse_otpauth_uri(f"otpauth://totp/a?secret={WEAK}&algorithm=Sha512").algorithm == ("SHA512")


def test_hotp() -> None:
    parsed = parse_otpauth_uri(f"otpauth://hotp/X:y?secret={WEAK}&counter=42&issuer=X")
    assert (parsed.type, parsed.counter) == ("hotp", 42)
    with pytest.raises(InvalidOtpauthUriError, match="counter"):
        parse_otpauth_uri(f"otpauth://hotp/X:y?secret={WEAK}")


@pytest.mark.parametrize("param", ["secret", "issuer", "algorithm", "digits", "period", "counter"])
def test_duplicates_rejected(param: str) -> None:
    values = {
        "secret": WEAK,
        "issuer": "X",
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
        "counter": "1",
    }
    uri = f"otpauth://totp/X:y?secret={WEAK}&{param}={values[param]}"
    if param != "secret":
        uri += f"&{param}={values[param]}"
    with pytest.raises(InvalidOtpauthUriError, match=param) as info:
        parse_otpauth_uri(uri)
    assert WEAK not in str(info.value)


def test_duplicate_with_different_case_rejected() -> None:
    with pytest.raises(InvalidOtpauthUriError):
        parse_otpauth_uri(f"otpauth://totp/X:y?secret={WEAK}&SECRET={ACME}")


def test_issuer_mismatch_rejected() -> None:
    with pytest.raises(InvalidOtpauthUriError, match="issuer"):
        parse_otpauth_uri(f"otpauth://totp/Bank:alice?secret={WEAK}&issuer=Evil")


def test_unknown_params_kept() -> None:
    parsed = parse_otpauth_uri(
        f"otpauth://totp/X:y?secret={WEAK}&image=https%3A%2F%2Fx%2Fa.png&foo=bar&foo=baz"
    )
    assert dict(parsed.extra) == {"image": "https://x/a.png", "foo": "bar"}
    with pytest.raises(TypeError):
        parsed.extra["new"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("https://totp/X:y?secret=JBSWY3DPEHPK3PXP", "scheme"),
        ("otpauth://motp/X:y?secret=JBSWY3DPEHPK3PXP", "type"),
        ("otpauth://totp/X:y?issuer=X", "secret"),
        ("otpauth://totp/X:y?secret=", "secret"),
        ("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PX1", "secret"),
        ("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXPA", "secret"),
        ("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&digits=5", "digits"),
        ("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&digits=9", "digits"),
        ("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&digits=six", "digits"),
        ("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&digits=-6", "digits"),
        ("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&period=0", "period"),
        ("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&algorithm=MD5", "algorithm"),
        ("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&counter=-1", "counter"),
        ("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&" + "a=b&" * 100, "malformed"),
        ("otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&x=" + "a" * 5000, "longer"),
    ],
)
def test_invalid_uris(uri: str, fragment: str) -> None:
    with pytest.raises(InvalidOtpauthUriError, match=fragment) as info:
        parse_otpauth_uri(uri)
    message = str(info.value)
    assert "JBSWY3DPEHPK3P" not in message
    assert uri[:30] not in message


def test_no_secret_in_repr() -> None:
    parsed = parse_otpauth_uri(Secret(f"otpauth://totp/X:y?secret={ACME}&issuer=X"))
    assert isinstance(parsed, OtpauthUri)
    assert ACME not in repr(parsed)
    assert ACME not in str(parsed)
    assert parsed.secret.reveal() == ACME
    with pytest.raises(TypeError):
        pickle.dumps(parsed)


def test_build_defaults_omitted() -> None:
    uri = build_otpauth_uri(secret="jbsw y3dp ehpk 3pxp====", account="alice@google.com", issuer="Example")
    assert isinstance(uri, Secret)
    assert uri.reveal() == f"otpauth://totp/Example:alice%40google.com?secret={WEAK}&issuer=Example"
    assert WEAK not in repr(uri)


def test_build_non_defaults() -> None:
    uri = build_otpauth_uri(secret=ACME, account="a b", algorithm="sha512", digits=8, period=300).reveal()
    assert uri == f"otpauth://totp/a%20b?secret={ACME}&algorithm=SHA512&digits=8&period=300"


@pytest.mark.parametrize(
    ("account", "issuer", "algorithm", "digits", "period"),
    [
        ("alice@bigco.com", "Big Corporation", "SHA1", 6, 30),
        ("j/doe+x@e.com", "ACME & Co", "SHA256", 8, 60),
        ("user:with:colons", "Colons Inc", "SHA512", 7, 300),
        ("plain", None, "SHA512", 7, 300),
        ("ünïcødé", "Bänk", "SHA1", 6, 30),
        ("x", "A+B", "SHA1", 6, 45),
    ],
)
def test_round_trip(account: str, issuer: str | None, algorithm: str, digits: int, period: int) -> None:
    uri = build_otpauth_uri(
        secret=ACME, account=account, issuer=issuer, algorithm=algorithm, digits=digits, period=period
    )
    parsed = parse_otpauth_uri(uri)
    assert parsed.secret.reveal() == ACME
    assert (parsed.account, parsed.issuer) == (account, issuer)
    assert (parsed.algorithm, parsed.digits, parsed.period) == (algorithm, digits, period)


def test_build_rejects_bad_input() -> None:
    with pytest.raises(InvalidSecretError):
        build_otpauth_uri(secret="not base32!", account="a")
    with pytest.raises(InvalidInputError):
        build_otpauth_uri(secret=ACME, account="")
    with pytest.raises(InvalidInputError):
        build_otpauth_uri(secret=ACME, account="a", issuer="Bad:Issuer")
    with pytest.raises(InvalidInputError, match="needs an issuer"):
        build_otpauth_uri(secret=ACME, account="team:alice")
    with pytest.raises(InvalidInputError):
        build_otpauth_uri(secret=ACME, account="a", digits=9)
    with pytest.raises(InvalidInputError):
        build_otpauth_uri(secret=ACME, account="a", period=0)
    with pytest.raises(InvalidInputError):
        build_otpauth_uri(secret=ACME, account="a", algorithm="MD5")
