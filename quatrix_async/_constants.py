"""Tunables and wire constants of the Quatrix API (derived from the public API 1.0 references)."""

from __future__ import annotations

from typing import Final

from mfa_common import _constants as _core

#: Path prefix of API 1.0 on an account host (``https://<account>.quatrix.it/api/1.0``).
API_PREFIX: Final = "/api/1.0"

#: A session dies after this many seconds without any API action.
SESSION_IDLE_TIMEOUT: Final = _core.QUATRIX_SESSION_IDLE_TIMEOUT
#: Re-login proactively when the session has been idle longer than the timeout minus this margin.
SESSION_IDLE_MARGIN: Final = _core.QUATRIX_SESSION_IDLE_MARGIN
#: A keepalive is only worth sending after this much idle time (the reference C# client pings
#: every 5 minutes); any ordinary call refreshes the session just as well.
KEEPALIVE_AFTER_IDLE: Final = 5 * 60.0
#: How often the opt-in background keepalive helper wakes up to check the idle time.
KEEPALIVE_CHECK_INTERVAL: Final = 60.0
#: Login rate limit (the v1.0 docs: "Requests / 15-min window (user auth) 15"): so many Basic
#: logins per user within the window; the fake enforces it, batch tools plan with it.
LOGIN_RATE_LIMIT: Final = 15
LOGIN_RATE_WINDOW: Final = 15 * 60.0
#: Upper bound on the best-effort logout when a client closes.
LOGOUT_TIMEOUT: Final = 5.0

# --- headers ---------------------------------------------------------------------------------
AUTH_TOKEN_HEADER: Final = "X-Auth-Token"
MFA_CODE_HEADER: Final = "Mfa-Code"

# --- values of the ``Mfa-Code`` header on a 207 login answer ------------------------------------
MFA_CODE_CAPTCHA: Final = 61  # UNCONFIRMED meaning; this SDK and its fake use it for CAPTCHA.
MFA_CODE_2FA: Final = 71
MFA_CODE_PIN: Final = 73

# --- client-side input checks (from the reference C# client) ----------------------------------
TOTP_DIGITS: Final = 6
PIN_LENGTH: Final = 5
PASSWORD_MIN_LENGTH: Final = 6
PASSWORD_MAX_LENGTH: Final = 64
