"""quatrix_async: an async client for the Quatrix API 1.0 session login with 2FA / PIN."""

from __future__ import annotations
