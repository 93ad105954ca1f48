"""Every tunable of the SDK in one place. Clients accept overrides for each."""

from __future__ import annotations

# --- timeouts (seconds) -------------------------------------------------------------------
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
WRITE_TIMEOUT = 30.0
POOL_TIMEOUT = 30.0
# A whole call, across every retry and backoff sleep.
TOTAL_DEADLINE = 120.0

# --- connection pool ------------------------------------------------------------------------
MAX_CONNECTIONS = 100
MAX_KEEPALIVE_CONNECTIONS = 100
# An idle pooled connection is dropped after this many seconds, below the shortest common
# server keep-alive (uvicorn and Apache: 5 s), so a request (a login POST typed in after a
# pause) never goes out on a connection the server has already closed.
KEEPALIVE_EXPIRY = 4.0

# --- response size limits (bytes) --------------------------------------------------------------
# Every answer of these APIs is small JSON. A larger body is refused with ResponseTooLargeError
# while it streams in (memory stays bounded whatever the server sends); so are response headers
# above the header limit (all header lines together, and any single line). Never retried: the
# same server would send the same answer again.
MAX_RESPONSE_BODY_BYTES = 8 * 1024 * 1024
MAX_RESPONSE_HEADER_BYTES = 64 * 1024

# --- retries ----------------------------------------------------------------------------------
MAX_RETRIES = 3
INITIAL_BACKOFF = 0.25
MAX_BACKOFF = 8.0
# Retry-After values above this are not waited for: the error goes to the caller instead.
MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# An answer carrying this header (any value but "0") reports a locked account: never retried, since
# each retry of a refused login would count as one more failure.
LOCKOUT_HEADER = "X-Account-Lockout"
# A conditional write that met 412 is re-read and sent again at most this often (when asked).
STALE_RETRIES = 1

# --- TOTP -----------------------------------------------------------------------------------
# Never hand out a code with less than this many seconds left in its step.
TOTP_MIN_REMAINING = 3.0
# Digits of a TOTP code (RFC 6238 default; what every server here uses).
TOTP_DIGITS = 6
# Extra wait past a step boundary, for clock skew against the server.
TOTP_BOUNDARY_SLACK = 0.25

# --- credentials ------------------------------------------------------------------------------
# A half-made login (a password accepted, a second factor pending) older than this when its code
# is finally ready (a TOTP wait behind many logins of one user) is started again first: servers
# drop pending sessions after a few minutes.
PARTIAL_LOGIN_MAX_AGE = 60.0
# A code-bearing login step the server refused unread (429 / 503) is sent again at most this many
# times, each time with a freshly issued code.
CODE_STEP_RETRIES = 2
# Logging out when a client closes is best effort, shielded from cancellation and bounded by this.
LOGOUT_TIMEOUT = 5.0
# Refresh a JWT this many seconds before its ``exp``.
JWT_REFRESH_MARGIN = 60.0
# Quatrix sessions die after 15 idle minutes; re-login proactively a little before that.
QUATRIX_SESSION_IDLE_TIMEOUT = 15 * 60.0
QUATRIX_SESSION_IDLE_MARGIN = 30.0

# --- logging ------------------------------------------------------------------------------
LOGGER_NAME = "mfa_common"
# Header names whose values are never logged (lower case).
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-auth-token",
        "x-mfa-token",
        "x-api-key",
        "x-access-token",
        "x-jwt",
        "cookie",
        "set-cookie",
    }
)
# JSON fields whose values are never logged (lower case).
SENSITIVE_FIELDS = frozenset(
    {
        "password",
        "new_password",
        "newpassword",
        "oldpassword",
        "code",
        "token",
        "secret",
        "secret2fa",
        "recovery_code",
        "recovery_codes",
        "main_email_code",
        "recovery_email_code",
        "session_id",
        "apikey",
        "api_key",
        "link",
        "qrcode",
        "qr_code",
    }
)

USER_AGENT = "mfa-sdks/0.1 (python)"
