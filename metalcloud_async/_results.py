"""Small helpers every MetalCloud API group shares: reading a ``User`` with its ``ETag``,
checking a ``revision`` argument before anything is sent, and turning a status error into the
operation's own error class."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from mfa_common._httpx import Response
from mfa_common.client import RequestOptions, parse_json_body, structure
from mfa_common.errors import APIStatusError, InvalidInputError

from .auth import status_error
from .models import User, converter
from .protocol import LATEST, Revision, if_match_value, user_resource

if TYPE_CHECKING:
    from .client import MetalCloudClient

T = TypeVar("T")

__all__ = ["change_user", "check_revision", "refined", "user_from", "user_revision_reader"]


def user_from(body: Any, response: Response) -> User:
    """The ``User`` of an answer, with its ``ETag`` header."""
    user = structure(converter, body, User, response)
    return attrs.evolve(user, etag=response.headers.get("etag"))


def user_revision_reader(
    client: MetalCloudClient, user_id: int, options: RequestOptions | None
) -> Callable[[], Awaitable[int]]:
    """What ``revision=LATEST`` reads before a user write: the user's current revision."""

    async def read() -> int:
        body, response = await client._json("GET", user_resource(user_id), options=options)
        return user_from(body, response).revision

    return read


async def change_user(
    client: MetalCloudClient,
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
    resource: the revision checked and sent as ``If-Match`` (read first for ``LATEST``), an empty
    ``payload`` refused with ``nothing`` before anything is sent, the answer structured as
    ``answer``."""
    check_revision(revision)
    if not payload:
        raise InvalidInputError(nothing)
    response = await client._write(
        user_resource(user_id, "actions", action),
        revision=revision,
        read_revision=user_revision_reader(client, user_id, options),
        retry_on_stale=retry_on_stale,
        options=options,
        json=payload,
        method=method,
    )
    return structure(converter, parse_json_body(response), answer, response)


def check_revision(revision: Revision) -> None:
    """InvalidInputError for a revision that could not go into ``If-Match``."""
    if revision is None or revision == LATEST:
        return
    if_match_value(revision)


@contextlib.contextmanager
def refined(general: type[APIStatusError], specific: type[APIStatusError]) -> Iterator[None]:
    """Re-raise a ``general`` status error (e.g. any 409) as the operation's ``specific`` class."""
    try:
        yield
    except general as exc:
        if exc.response is None or isinstance(exc, specific):
            raise
        raise status_error(exc.response, specific) from None
