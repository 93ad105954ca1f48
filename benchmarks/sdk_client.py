"""The SDK side of the overhead benchmark: a small API client built the way the real ones are.

A :class:`~mfa_common.client.BaseClient` subclass with a static bearer token and typed methods
that decode JSON into frozen attrs models through the API's cattrs converter.
"""

from __future__ import annotations

from typing import Any

import attrs

from mfa_common.auth import BearerTokenAuth
from mfa_common.client import BaseClient, RequestOptions, parse_json_body, structure
from mfa_common.converters import make_converter


@attrs.frozen
class Profile:
    """The ``GET /profile`` document."""

    id: int
    username: str
    email: str
    display_name: str
    role: str
    active: bool
    mfa_enabled: bool
    created_at: str
    last_login: str | None
    quota_bytes: int
    used_bytes: int
    language: str
    tags: list[str] = attrs.field(factory=list)


@attrs.frozen
class ItemCreate:
    """The ``POST /items`` request body."""

    name: str
    quantity: int
    tags: list[str] = attrs.field(factory=list)
    note: str | None = None


@attrs.frozen
class Item:
    """The ``POST /items`` answer."""

    id: int
    name: str
    quantity: int
    tags: list[str] = attrs.field(factory=list)


converter = make_converter("snake")


class BenchClient(BaseClient):
    """An authenticated client for the benchmark server."""

    def __init__(self, base_url: str, token: str, **kwargs: Any) -> None:
        super().__init__(base_url, auth=BearerTokenAuth(token, base_url=base_url), **kwargs)

    async def get_profile(self, *, options: RequestOptions | None = None) -> Profile:
        """The caller's profile."""
        response = await self.requestor.request("GET", "profile", options=options)
        return structure(converter, parse_json_body(response), Profile, response)

    async def create_item(self, item: ItemCreate, *, options: RequestOptions | None = None) -> Item:
        """Create an item; the server echoes it with an id."""
        response = await self.requestor.request(
            "POST", "items", json=converter.unstructure(item), options=options
        )
        return structure(converter, parse_json_body(response), Item, response)


NEW_ITEM = ItemCreate(name="widget", quantity=3, tags=["a", "b"])
NEW_ITEM_JSON: dict[str, Any] = {"name": "widget", "quantity": 3, "tags": ["a", "b"]}
