"""Static auth backends, JWT expiry reading, the tolerant converters, log redaction."""

from __future__ import annotations

import base64
import enum
import json
import logging

import attrs
import httpx
import pytest

from mfa_common._logging import RedactingFilter, redact_text
from mfa_common.auth import ApiKeyAuth, BasicAuth, BearerTokenAuth, jwt_expiry
from mfa_common.converters import make_converter
from mfa_common.secret import Secret


def _capture(auth: httpx.Auth, *urls: str) -> list[dict[str, str | None]]:
    seen: list[dict[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({"auth": request.headers.get("Authorization"), "key": request.headers.get("X-API-KEY")})
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        for url in urls:
            client.build_request("GET", url)
    return seen


@pytest.mark.anyio
async def test_static_backends_apply_headers_and_stay_on_their_origin() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("Authorization")))
        return httpx.Response(200)

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handler), auth=BasicAuth("u@example.com", "pw")
    ) as client:
        await client.get("https://a.test/x")
        await client.get("https://b.test/x")
    expected = "Basic " + base64.b64encode(b"u@example.com:pw").decode()
    assert seen == [("a.test", expected), ("b.test", None)]


@pytest.mark.anyio
async def test_api_key_header_variants_and_rotation() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200)

    bearer = ApiKeyAuth("1:abc", base_url="https://api.test")
    raw = ApiKeyAuth("k", header="X-API-KEY", scheme=None, base_url="https://api.test")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await client.get("https://api.test/x", auth=bearer)
        bearer.set_key("1:new")
        await client.get("https://api.test/x", auth=bearer)
        await client.get("https://api.test/x", auth=raw)
        await client.get("https://elsewhere.test/x", auth=bearer)
    assert seen[0]["Authorization"] == "Bearer 1:abc"
    assert seen[1]["Authorization"] == "Bearer 1:new"
    assert seen[2]["X-API-KEY"] == "k"
    assert "Authorization" not in seen[3]


def test_reprs_hide_credentials() -> None:
    text = (
        repr(BasicAuth("u", "pw-secret"))
        + repr(ApiKeyAuth("key-secret"))
        + repr(BearerTokenAuth("jwt-secret"))
    )
    assert "secret" not in text.replace("Secret(", "")


def _jwt(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part(claims)}.sig"


def test_jwt_expiry() -> None:
    assert jwt_expiry(_jwt({"exp": 1_900_000_000})) == 1_900_000_000.0
    assert jwt_expiry(Secret(_jwt({"exp": 12.5}))) == 12.5
    for bad in ("abc", "a.b", _jwt({}), _jwt({"exp": "soon"}), _jwt({"exp": True}), "a.!!!.c"):
        assert jwt_expiry(bad) is None


class Level(str, enum.Enum):
    ADMIN = "admin"
    USER = "user"


@attrs.frozen
class Model:
    __wire_names__ = {"secret_2fa": "secret2FA"}
    user_id: int
    display_name: str
    secret_2fa: str
    level: Level
    nickname: str | None = None


def test_converter_wire_names_unknown_fields_and_enums() -> None:
    conv = make_converter("camel")
    model = conv.structure(
        {"userId": 1, "displayName": "A", "secret2FA": "S", "level": "superuser", "extra": [1]}, Model
    )
    assert model.level == "superuser"  # an unknown enum value is kept, not an error
    assert (
        conv.structure({"userId": 1, "displayName": "A", "secret2FA": "S", "level": "admin"}, Model).level
        is Level.ADMIN
    )
    assert conv.unstructure(model) == {
        "userId": 1,
        "displayName": "A",
        "secret2FA": "S",
        "level": "superuser",
    }
    snake = make_converter("snake")
    assert "display_name" in snake.unstructure(model)


def test_redact_text_and_filter() -> None:
    text = 'body {"password": "pw1", "code":"123456"} Authorization: Bearer abc.def.ghi x-auth-token=sess-1'
    redacted = redact_text(text)
    for secret in ("pw1", "123456", "abc.def.ghi", "sess-1"):
        assert secret not in redacted
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "sent %s", ("Bearer tok-9",), None)
    RedactingFilter().filter(record)
    assert "tok-9" not in record.getMessage()
