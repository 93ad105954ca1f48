"""Tunables and wire constants of the MetalCloud v2 API (see the package docstring for sources)."""

from __future__ import annotations

API_PREFIX = "/api/v2"

# --- pagination (nestjs-paginate convention) -------------------------------------------------
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# The page size the list iterator asks for unless told otherwise (the official CLI uses 100).
ITERATOR_PAGE_SIZE = 100

# --- authentication ---------------------------------------------------------------------------
DEFAULT_PROVIDER = "mysql"
# Where a login response may carry the JWT. How the real server returns it is UNCONFIRMED;
# these are the variants the client accepts, in the order it looks for them.
JWT_COOKIE_NAMES = ("jwt", "token", "access_token", "accessToken", "Authorization", "auth", "session")
JWT_HEADER_NAMES = ("authorization", "x-auth-token", "x-access-token", "x-jwt", "x-jwt-token")
JWT_BODY_FIELDS = ("token", "jwt", "accessToken", "access_token")
# Words in an error message that mean "the second factor is required" (a variant of the login
# flow in which /login answers 401/403 instead of 200 for a 2FA user).
TWO_FACTOR_HINTS = ("2fa", "two-factor", "two factor", "authenticator", "otp")

# Access levels the official CLI treats as administrators.
ADMIN_ACCESS_LEVELS = frozenset({"root", "admin", "full_admin"})
