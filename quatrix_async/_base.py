"""Helpers shared by the API group modules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from mfa_common._httpx import Response
from mfa_common.client import parse_json_body, structure
from mfa_common.errors import InvalidInputError

if TYPE_CHECKING:
    from .client import QuatrixClient
    from .models import AuthType

T = TypeVar("T")


class ApiGroup:
    """One group of operations; holds the client it sends through."""

    def __init__(self, client: QuatrixClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def decode(response: Response, cls: type[T]) -> T:
    """The response body as ``cls`` (ResponseDecodeError when it does not fit)."""
    from .models import converter  # the models load with the first answer read

    data: Any = parse_json_body(response)
    if data is None:
        data = {}
    return structure(converter, data, cls, response)


def auth_type_of(value: AuthType | str) -> AuthType:
    """``AuthType`` from an enum member or ``"2FA"`` / ``"PIN"`` (case-insensitive)."""
    from .models import AuthType

    if isinstance(value, AuthType):
        return value
    try:
        return AuthType(str(value).strip().upper())
    except ValueError:
        raise InvalidInputError(f"auth_type must be '2FA' or 'PIN', not {value!r}") from None


def user_ids(ids: Iterable[str]) -> list[str]:
    """A non-empty list of user ids (strings), order kept, duplicates removed."""
    if isinstance(ids, str):
        ids = [ids]
    result = list(dict.fromkeys(ids))
    if not result:
        raise InvalidInputError("at least one user id is required")
    if not all(isinstance(i, str) and i.strip() for i in result):
        raise InvalidInputError("user ids must be non-empty strings")
    return result
