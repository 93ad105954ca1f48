"""Reading a QR code's text from a PNG image, so a program can enrol a TOTP secret unattended.

A server that shows the enrolment secret only as a QR image (Quatrix's ``GET /profile/2fa/generate``)
leaves a service account nothing to type; decoding the image gives back the ``otpauth://`` URI.

* :func:`png_bytes` accepts the forms such an answer takes: raw PNG bytes (``\\x89PNG``), base64
  text of a PNG, or a ``data:image/png;base64,`` URI.
* :func:`decode_qr_text` reads the QR code. It needs the optional ``qr`` extra (zxing-cpp, a
  maintained port of the ZXing decoder, and Pillow to read the PNG); without it,
  :class:`QrDecoderMissingError` says which extra to install.

Neither the image nor the decoded text ever appears in an error message: both hold the secret.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from .errors import MfaSdkError
from .secret import Secret

__all__ = [
    "QR_EXTRA_INSTALL",
    "QrDecodeError",
    "QrDecoderMissingError",
    "decode_qr_text",
    "png_bytes",
    "qr_decoder_available",
]

#: How to get the decoder.
QR_EXTRA_INSTALL = "pip install 'mfa-sdks[qr]'"
#: Images larger than this are refused before their pixels are decompressed (a 4-megapixel QR
#: code is far larger than any server draws; this keeps memory bounded).
MAX_QR_PIXELS = 4_000_000

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class QrDecodeError(MfaSdkError, ValueError):
    """The data is not a PNG image holding a readable QR code."""


class QrDecoderMissingError(MfaSdkError, ImportError):
    """The optional QR decoder is not installed."""

    def __init__(self) -> None:
        super().__init__(f"decoding a QR code needs the 'qr' extra: {QR_EXTRA_INSTALL}")


def png_bytes(data: bytes | str) -> bytes:
    """The PNG bytes of ``data``: raw PNG, base64 text of a PNG, or a ``data:...;base64,`` URI.

    :class:`QrDecodeError` when it is none of these.
    """
    if isinstance(data, bytes) and data.startswith(_PNG_SIGNATURE):
        return data
    try:
        text = data.decode("ascii") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise QrDecodeError("the image is neither PNG bytes nor base64 text") from None
    text = text.strip().strip('"')
    if text[:5].lower() == "data:":
        header, comma, payload = text.partition(",")
        if not comma or ";base64" not in header.lower():
            raise QrDecodeError("the data URI is not base64-encoded")
        text = payload
    text = "".join(text.split())
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise QrDecodeError("the image is neither PNG bytes nor base64 text") from None
    if not decoded.startswith(_PNG_SIGNATURE):
        raise QrDecodeError("the base64 text does not hold a PNG image")
    return decoded


def _modules() -> tuple[Any, Any]:
    try:
        import zxingcpp
        from PIL import Image
    except ImportError:
        raise QrDecoderMissingError() from None
    return zxingcpp, Image


def qr_decoder_available() -> bool:
    """True when the ``qr`` extra is installed."""
    try:
        _modules()
    except QrDecoderMissingError:
        return False
    return True


def decode_qr_text(image: bytes | str | Secret[bytes] | Secret[str]) -> Secret[str]:
    """The text of the QR code in ``image`` (any form :func:`png_bytes` accepts), as a Secret.

    Raises :class:`QrDecoderMissingError` without the ``qr`` extra and :class:`QrDecodeError`
    when no QR code can be read.
    """
    zxingcpp, pil_image = _modules()
    png = png_bytes(image.reveal() if isinstance(image, Secret) else image)
    try:
        with pil_image.open(io.BytesIO(png)) as opened:
            width, height = opened.size
            if width * height > MAX_QR_PIXELS:
                raise QrDecodeError("the image is too large to be a QR code")
            pixels = opened.convert("L")
    except QrDecodeError:
        raise
    except (OSError, ValueError, SyntaxError):  # what Pillow raises for a broken image
        raise QrDecodeError("the PNG image could not be read") from None
    found = zxingcpp.read_barcodes(pixels, formats=zxingcpp.BarcodeFormat.QRCode)
    texts = [barcode.text for barcode in found if barcode.valid and barcode.text]
    if not texts:
        raise QrDecodeError("no QR code was found in the image")
    return Secret(texts[0])
