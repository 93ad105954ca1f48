"""The base of the MetalCloud operation groups: an :class:`~mfa_common.api_group.APIGroup` that
reads answers with the MetalCloud converter, reads a ``User`` with its ``ETag``, and sends a
write with the revision it takes (``If-Match``; ``LATEST`` reads it first)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from mfa_common._httpx import Response
from mfa_common.api_group import APIGroup
from mfa_common.errors import InvalidInputError

from .models import User, converter
from .protocol import LATEST, Revision, check_revision, if_match_value, user_resource

if TYPE_CHECKING:
    from mfa_common.converters import LazyConverter
    from mfa_common.options import RequestOptions

__all__ = ["MetalCloudAPIGroup"]

T = TypeVar("T")


class MetalCloudAPIGroup(APIGroup):
    """One group of ``MetalCloudClient`` operations."""

    def _converter(self) -> LazyConverter:
        return converter

    async def _get(self, path: str, cls: type[T], *, options: RequestOptions | None, params: Any = None) -> T:
        """``GET path`` read as ``cls``."""
        return self._decode(await self._requestor.request("GET", path, params=params, options=options), cls)

    def _user(self, response: Response) -> User:
        """The ``User`` of an answer, with its ``ETag`` header."""
        return attrs.evolve(self._decode(response, User), etag=response.headers.get("etag"))

    async def _get_user(self, path: str, *, recursion: int | None, options: RequestOptions | None) -> User:
        params = {"recursion": str(recursion)} if recursion is not None else None
        return self._user(await self._requestor.request("GET", path, params=params, options=options))

    def _user_revision(self, user_id: int, options: RequestOptions | None) -> Callable[[], Awaitable[int]]:
        """What ``revision=LATEST`` reads before a write to a user: its current revision."""

        async def read() -> int:
            return (await self._get_user(user_resource(user_id), recursion=None, options=options)).revision

        return read

    async def _write(
        self,
        path: str,
        *,
        revision: Revision,
        read_revision: Callable[[], Awaitable[int]],
        retry_on_stale: bool,
        options: RequestOptions | None,
        json: Any = None,
        method: str = "POST",
    ) -> Response:
        """A conditional write: ``If-Match`` from ``revision`` (read first for ``LATEST``; none
        for None), and on 412 one re-read and resend when ``retry_on_stale``."""
        check_revision(revision)
        if revision == LATEST:
            revision = await read_revision()

        async def reread() -> str:
            return if_match_value(await read_revision())

        return await self._conditional_write(
            method,
            path,
            if_match=if_match_value(revision) if revision is not None else None,
            reread=reread,
            retry_on_stale=retry_on_stale,
            options=options,
            json=json,
        )

    async def _write_user(
        self,
        user_id: int,
        *segments: str,
        revision: Revision,
        retry_on_stale: bool,
        options: RequestOptions | None,
        json: Any = None,
        method: str = "POST",
    ) -> Response:
        """A conditional write to ``/api/v2/users/{id}/<segments>`` with the user's revision
        (read first for ``LATEST``, re-read on 412 when ``retry_on_stale``)."""
        return await self._write(
            user_resource(user_id, *segments),
            revision=revision,
            read_revision=self._user_revision(user_id, options),
            retry_on_stale=retry_on_stale,
            options=options,
            json=json,
            method=method,
        )

    async def _change_user(
        self,
        user_id: int,
        action: str,
        payload: dict[str, Any],
        answer: type[T],
        *,
        nothing: str,
        revision: Revision,
        retry_on_stale: bool,
        options: RequestOptions | None,
        method: str = "POST",
    ) -> T:
        """One user action (``.../users/{id}/actions/<action>``) whose answer is the changed
        resource: an empty ``payload`` refused with ``nothing`` before anything is sent, the
        user's revision sent as ``If-Match``, the answer read as ``answer``."""
        check_revision(revision)
        if not payload:
            raise InvalidInputError(nothing)
        response = await self._write_user(
            user_id,
            "actions",
            action,
            revision=revision,
            retry_on_stale=retry_on_stale,
            options=options,
            json=payload,
            method=method,
        )
        return self._decode(response, answer)
