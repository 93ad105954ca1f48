"""``GET /profile/2fa/generate``: an ``application/octet-stream`` QR image and nothing else.

The fake serves base64 text of a real PNG QR code (drawn with segno) of the pending
``otpauth://`` URI; the SDK reads every known form of the answer (raw PNG, base64 text, a
``data:image/png;base64,`` URI, the older JSON objects) and, with the ``qr`` extra, decodes the
URI from the image so an unattended program can enrol.
"""

from __future__ import annotations

import base64
import builtins
import io
import json
from typing import Any

import httpx
import pytest
import segno

from mfa_common.clock import FakeClock
from mfa_common.errors import ResponseDecodeError
from mfa_common.options import ClientOptions
from mfa_common.qr_decode import (
    QR_EXTRA_INSTALL,
    QrDecodeError,
    QrDecoderMissingError,
    decode_qr_text,
    png_bytes,
)
from mfa_common.retry import RetryPolicy
from mfa_common.totp import Totp
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake

from .conftest import PASSWORD, ClientFactory

pytestmark = pytest.mark.anyio

zxingcpp = pytest.importorskip("zxingcpp", reason="the qr extra (zxing-cpp) is not installed")

URI = "otpauth://totp/Quatrix:svc%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Quatrix"


def qr_png(text: str = URI) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=4)
    return buffer.getvalue()


PNG = qr_png()
B64 = base64.b64encode(PNG)


@pytest.fixture
def no_qr_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import zxingcpp`` fail, as on an install without the ``qr`` extra."""
    real_import = builtins.__import__

    def guarded(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "zxingcpp" or name.startswith("zxingcpp."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", guarded)


# -- the fake ------------------------------------------------------------------------------------


async def test_fake_serves_base64_text_of_a_png_qr_of_the_pending_uri(fake: QuatrixFake) -> None:
    user = fake.add_user(email="svc@example.com", password=PASSWORD)
    sid = fake.open_session(user.email)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fake), base_url="http://q.test") as http:
        answer = await http.get("/api/1.0/profile/2fa/generate", headers={"X-Auth-Token": sid})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/octet-stream"
    with pytest.raises(ValueError):
        json.loads(answer.content)
    png = base64.b64decode(answer.content, validate=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    uri = decode_qr_text(png).reveal()
    assert uri.startswith("otpauth://totp/Quatrix:svc%40example.com?")
    assert f"secret={user.pending_totp_secret}" in uri


# -- the SDK against the fake --------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["base64", "png", "data-uri", "json"])
async def test_a_service_account_enrols_from_the_qr_image_alone(
    fake: QuatrixFake, make_client: ClientFactory, clock: FakeClock, encoding: Any
) -> None:
    fake.two_factor_image = encoding
    fake.add_user(email="svc@example.com", password=PASSWORD)
    async with make_client(email="svc@example.com", password=PASSWORD, validate=False) as client:
        generated = await client.profile.generate_2fa()
        assert generated.qr_png.reveal().startswith(b"\x89PNG")
        assert generated.uri is not None and generated.secret is not None
        assert generated.secret.reveal() == fake.user("svc@example.com").pending_totp_secret
        await client.profile.set_mfa("2FA", generated.totp().code_at(clock.now()))
        assert (await client.profile.get()).auth_methods == ["2FA"]
    assert fake.user("svc@example.com").totp_secret == generated.secret.reveal()


async def test_without_the_qr_extra_the_png_is_returned_and_the_message_names_the_extra(
    fake: QuatrixFake, make_client: ClientFactory, no_qr_extra: None
) -> None:
    fake.add_user(email="svc@example.com", password=PASSWORD)
    async with make_client(email="svc@example.com", password=PASSWORD) as client:
        generated = await client.profile.generate_2fa()
    assert generated.qr_png.reveal().startswith(b"\x89PNG")
    assert generated.uri is None and generated.secret is None
    with pytest.raises(QrDecoderMissingError) as info:
        generated.otpauth_uri()
    assert (
        QR_EXTRA_INSTALL in str(info.value) == "decoding a QR code needs the 'qr' extra: " + QR_EXTRA_INSTALL
    )
    with pytest.raises(QrDecoderMissingError):
        generated.totp()


# -- the SDK against each known answer -----------------------------------------------------------


def mock_client(body: bytes, content_type: str | None) -> QuatrixClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/1.0/profile/2fa/generate"
        headers = {"Content-Type": content_type} if content_type else {}
        return httpx.Response(200, content=body, headers=headers)

    return QuatrixClient(
        "https://acme.quatrix.example",
        transport=httpx.MockTransport(handler),
        options=ClientOptions(retry=RetryPolicy(max_retries=0)),
    )


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (B64, "application/octet-stream"),
        (PNG, "application/octet-stream"),
        (b"data:image/png;base64," + B64, "application/octet-stream"),
        (B64[:60] + b"\n" + B64[60:] + b"\n", "application/octet-stream"),
        (B64, None),
        (PNG, "image/png"),
        (json.dumps(B64.decode()).encode(), "application/json"),
        (json.dumps({"qr_code": B64.decode()}).encode(), "application/json"),
        (
            json.dumps(
                {"qr_code": B64.decode(), "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "uri": URI}
            ).encode(),
            "application/json",
        ),
    ],
    ids=[
        "base64",
        "png",
        "data-uri",
        "wrapped-base64",
        "no-content-type",
        "image-png",
        "json-string",
        "json-object",
        "json-with-secret",
    ],
)
async def test_every_known_form_of_the_answer_gives_the_png_and_the_uri(
    body: bytes, content_type: str | None
) -> None:
    async with mock_client(body, content_type) as client:
        generated = await client.profile.generate_2fa()
    assert generated.qr_png.reveal() == PNG
    assert generated.otpauth_uri().reveal() == URI
    assert generated.secret is not None and generated.secret.reveal() == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert generated.totp().fingerprint == Totp("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").fingerprint
    assert "JBSWY3DP" not in repr(generated)


@pytest.mark.parametrize(
    "body",
    [b"", b"not an image", base64.b64encode(b"GIF89a..."), b'{"message": "no"}'],
    ids=["empty", "text", "gif", "json"],
)
async def test_an_answer_without_a_png_is_a_decode_error(body: bytes) -> None:
    async with mock_client(body, "application/octet-stream") as client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.profile.generate_2fa()
    assert body.decode() not in str(info.value) or not body


async def test_a_png_without_a_qr_code_leaves_the_uri_empty_and_says_why() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (64, 64), color=255).save(buffer, format="PNG")
    async with mock_client(buffer.getvalue(), "application/octet-stream") as client:
        generated = await client.profile.generate_2fa()
    assert generated.uri is None
    with pytest.raises(QrDecodeError, match="no QR code"):
        generated.otpauth_uri()


def test_png_bytes_reads_each_form_and_refuses_others() -> None:
    for form in (PNG, B64, B64.decode(), b"data:image/png;base64," + B64, b'"' + B64 + b'"'):
        assert png_bytes(form) == PNG
    for bad in (b"\xff\xfe", b"data:image/png,raw", b"@@@", base64.b64encode(b"not a png")):
        with pytest.raises(QrDecodeError):
            png_bytes(bad)


def test_an_oversized_image_is_refused_before_its_pixels_are_read() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (2100, 2100), color=1).save(buffer, format="PNG")
    with pytest.raises(QrDecodeError, match="too large"):
        decode_qr_text(buffer.getvalue())
