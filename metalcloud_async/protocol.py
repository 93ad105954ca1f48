"""Sans-I/O pieces of the MetalCloud v2 protocol: paths, ``If-Match`` values, list queries,
pagination arithmetic, and reading the JWT out of a login response.

Nothing here performs I/O, so every rule can be unit-tested on plain values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from http.cookies import CookieError, SimpleCookie
from typing import Any, Literal

import attrs

from mfa_common._httpx import Response
from mfa_common.errors import InvalidInputError
from mfa_common.secret import Secret

from . import _constants as C

__all__ = [
    "FILTER_FIELDS",
    "LATEST",
    "SORT_FIELDS",
    "JwtFound",
    "ListQuery",
    "Revision",
    "check_id",
    "check_revision",
    "extract_jwt",
    "filter_eq",
    "filter_in",
    "filter_not",
    "if_match_value",
    "next_page",
    "revision_from_etag",
    "user_resource",
]

#: Pass as ``revision`` to have the client read the latest revision before writing.
LATEST: Literal["latest"] = "latest"

#: What a write accepts as ``revision``: a number, ``"latest"`` (read it first) or ``None``
#: (send no ``If-Match`` at all; the real server then answers 428).
Revision = int | str | None

FILTER_FIELDS = frozenset(
    {
        "id",
        "displayName",
        "email",
        "accountId",
        "archived",
        "infrastructureIdDefault",
        "accessLevel",
        "isBillable",
    }
)
SORT_FIELDS = frozenset({"id", "displayName"})
_SORT_RE = re.compile(r"^([A-Za-z]+):(ASC|DESC)$")
_ETAG_RE = re.compile(r'^\s*(?:W/)?"?\s*(\d+)\s*"?\s*$')

# ------------------------------------------------------------------------------ paths


def check_id(value: int, what: str = "user_id") -> int:
    """``value`` if it is a non-negative integer id, else InvalidInputError (nothing is sent)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{what} must be a non-negative integer")
    return value


def user_resource(user_id: int, *segments: str | int) -> str:
    """``/api/v2/users/{id}/<segments...>`` (``config``, ``ssh-keys/7``, ...); ids are checked."""
    check_id(user_id)
    tail = "/".join(str(s) for s in segments)
    return f"{C.API_PREFIX}/users/{user_id}" + (f"/{tail}" if tail else "")


# ------------------------------------------------------------------------------ revisions


def if_match_value(revision: int | float | str) -> str:
    """The ``If-Match`` value for ``revision``: the bare decimal number, as the official CLI
    sends it (``If-Match: 7``; no quotes, no ``W/``). Accepts 7, 7.0, "7" and an ETag such as
    ``"7"`` or ``W/"7"``; anything else is an InvalidInputError."""
    if isinstance(revision, bool):
        raise InvalidInputError("revision must be a number")
    if isinstance(revision, float):
        if not revision.is_integer():
            raise InvalidInputError("revision must be an integral number")
        revision = int(revision)
    if isinstance(revision, int):
        if revision < 0:
            raise InvalidInputError("revision must be >= 0")
        return str(revision)
    if isinstance(revision, str):
        parsed = revision_from_etag(revision)
        if parsed is not None:
            return str(parsed)
    raise InvalidInputError("revision must be a number or an ETag holding one")


def check_revision(revision: Revision) -> None:
    """InvalidInputError for a ``revision`` argument that could not go into ``If-Match``
    (checked before anything is sent; ``LATEST`` and None pass)."""
    if revision is None or revision == LATEST:
        return
    if_match_value(revision)


def revision_from_etag(etag: str | None) -> int | None:
    """The revision in an ``ETag`` header: bare (``7``), quoted (``"7"``) or weak (``W/"7"``).
    The real format is UNCONFIRMED; all three are accepted. None when it holds no number."""
    if not etag:
        return None
    match = _ETAG_RE.match(etag)
    return int(match.group(1)) if match else None


# ------------------------------------------------------------------------------ list queries


def filter_eq(value: object) -> str:
    """``$eq:<value>`` (booleans as 1/0, the official CLI's ``filter.archived=0`` style)."""
    return f"$eq:{_filter_value(value)}"


def filter_in(values: Iterable[object]) -> str:
    """``$in:<a>,<b>,...``."""
    return "$in:" + ",".join(_filter_value(v) for v in values)


def filter_not(expression: str) -> str:
    """Negate an operation: ``$not:$eq:5``."""
    return f"$not:{expression}"


def _filter_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


FilterValue = str | int | bool | Sequence[str | int | bool]


@attrs.frozen
class ListQuery:
    """The query of ``GET /api/v2/users`` (nestjs-paginate): page, limit (1..100, larger values
    are clamped to 100 as the server does), ``filter.<field>`` (each repeatable; a plain value
    means ``$eq:<value>``), ``sortBy`` (``field:ASC|DESC``, repeatable), ``search``, ``searchBy``."""

    page: int = 1
    limit: int = C.DEFAULT_PAGE_SIZE
    filters: Mapping[str, FilterValue] = attrs.Factory(dict)
    sort_by: Sequence[str] = ()
    search: str | None = None
    search_by: Sequence[str] = ()

    def __attrs_post_init__(self) -> None:
        if isinstance(self.page, bool) or not isinstance(self.page, int) or self.page < 1:
            raise InvalidInputError("page must be an integer >= 1")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise InvalidInputError("limit must be an integer >= 1")
        for field in self.filters:
            if field not in FILTER_FIELDS:
                raise InvalidInputError(
                    f"cannot filter users by {field!r}; filterable: {', '.join(sorted(FILTER_FIELDS))}"
                )
        for item in self.sort_by:
            match = _SORT_RE.match(item)
            if not match or match.group(1) not in SORT_FIELDS:
                raise InvalidInputError(f"sortBy must be id|displayName:ASC|DESC, got {item!r}")
        for item in self.search_by:
            if item not in ("displayName", "email"):
                raise InvalidInputError("searchBy fields are displayName and email")

    @property
    def page_size(self) -> int:
        """The effective page size (the server clamps to 100)."""
        return min(self.limit, C.MAX_PAGE_SIZE)

    def params(self) -> list[tuple[str, str]]:
        """Query parameters in wire order (repeated keys for repeatable parameters)."""
        out: list[tuple[str, str]] = [("page", str(self.page)), ("limit", str(self.page_size))]
        for field, value in self.filters.items():
            values = [value] if isinstance(value, (str, int, bool)) else list(value)
            for item in values:
                text = item if isinstance(item, str) and item.startswith("$") else filter_eq(item)
                out.append((f"filter.{field}", text))
        out.extend(("sortBy", item) for item in self.sort_by)
        if self.search:
            out.append(("search", self.search))
        out.extend(("searchBy", item) for item in self.search_by)
        return out

    def with_page(self, page: int) -> ListQuery:
        return attrs.evolve(self, page=page)


def next_page(
    *, page: int, limit: int, received: int, total_pages: int | None, total_items: int | None = None
) -> int | None:
    """The page to fetch after ``page``, or None when the listing is complete.

    Follows the official CLI: stop when ``meta.totalPages <= page``; when ``totalPages`` is
    absent, fall back to ``totalItems`` and finally to "a short page is the last one"; an empty
    page always ends the listing (a server that misreports totals cannot loop forever).
    """
    if received == 0:
        return None
    if total_pages is not None:
        return page + 1 if page < total_pages else None
    if total_items is not None:
        return page + 1 if page < math.ceil(total_items / max(limit, 1)) else None
    return page + 1 if received >= limit else None


# ------------------------------------------------------------------------------ the JWT


@attrs.frozen
class JwtFound:
    """A JWT read from a login response and where it was (``cookie:<name>``, ``header:<name>``,
    ``body:<field>``), plus every cookie the response set (to tie ``login-2fa`` to the session)."""

    token: Secret[str]
    source: str
    cookies: Mapping[str, Secret[str]] = attrs.Factory(dict)


def response_cookies(response: Response) -> dict[str, Secret[str]]:
    """The cookies a response sets (name -> value), ignoring deletions (empty values)."""
    out: dict[str, Secret[str]] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(header)
        except CookieError:
            continue
        for name, morsel in jar.items():
            if morsel.value:
                out[name] = Secret(morsel.value)
    return out


def _strip_bearer(value: str) -> str:
    value = value.strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    return value


def extract_jwt(response: Response, body: Any = None) -> JwtFound | None:
    """Find the session JWT in a login response.

    How the server hands it out is UNCONFIRMED (the spec documents only the ``User`` body). The
    most plausible and the one the fake uses: a ``jwt`` cookie set by ``/login`` (the facts'
    best inference: the browser session is a cookie, completed by ``/login-2fa``). Also
    accepted, in this order: other usual cookie names (``token``, ``access_token``, ...), a
    response header (``Authorization: Bearer <jwt>``, ``X-Auth-Token``, ``X-Access-Token``), and
    a body field (``token``, ``jwt``, ``accessToken``).
    """
    cookies = response_cookies(response)
    for name in C.JWT_COOKIE_NAMES:
        if name in cookies:
            token = _strip_bearer(cookies[name].reveal())
            if token:
                return JwtFound(Secret(token), f"cookie:{name}", cookies)
    for header in C.JWT_HEADER_NAMES:
        value = response.headers.get(header)
        if value and _strip_bearer(value):
            return JwtFound(Secret(_strip_bearer(value)), f"header:{header}", cookies)
    if isinstance(body, Mapping):
        for field in C.JWT_BODY_FIELDS:
            value = body.get(field)
            if isinstance(value, str) and value.strip():
                return JwtFound(Secret(_strip_bearer(value)), f"body:{field}", cookies)
    return None


def cookie_header(cookies: Mapping[str, Secret[str]]) -> str:
    """A ``Cookie`` request header carrying ``cookies``."""
    return "; ".join(f"{name}={value.reveal()}" for name, value in cookies.items())


def mentions_two_factor(message: str | None) -> bool:
    """Whether an error message says a second factor is needed (a login-flow variant)."""
    if not message:
        return False
    lowered = message.lower()
    return any(hint in lowered for hint in C.TWO_FACTOR_HINTS)
