"""The base of every operation group (``client.profile``, ``client.users``, ...).

A group holds the :class:`~mfa_common.requestor.Requestor` of its client (as stripe's services
hold a requestor, not the client) and calls only its public methods; it reads answers with its
API's converter. The one helper every API with revisions shares is here too: the conditional
write (``If-Match``, an optional re-read and resend after 412, decided by the retry policy).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._httpx import Response
from .errors import PreconditionFailedError
from .wire import parse_json_body, structure

if TYPE_CHECKING:
    import cattrs

    from .converters import LazyConverter
    from .options import RequestOptions
    from .requestor import Requestor

__all__ = ["APIGroup"]

T = TypeVar("T")


class APIGroup:
    """One group of a client's operations; see the module docstring. Subclasses name their
    API's converter in :meth:`_converter`."""

    def __init__(self, requestor: Requestor) -> None:
        self._requestor = requestor

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _converter(self) -> LazyConverter | cattrs.Converter:
        """The converter that knows this API's wire names."""
        raise NotImplementedError

    def _decode(self, response: Response, cls: type[T]) -> T:
        """The JSON body of ``response`` as ``cls`` (ResponseDecodeError when it does not fit);
        an empty body reads as ``{}``."""
        data: Any = parse_json_body(response)
        return structure(self._converter(), {} if data is None else data, cls, response)

    async def _conditional_write(
        self,
        method: str,
        path: str,
        *,
        if_match: str | None,
        reread: Callable[[], Awaitable[str]],
        retry_on_stale: bool,
        options: RequestOptions | None,
        json: Any = None,
    ) -> Response:
        """A write sent with ``If-Match: if_match`` (none when None). When the server answers
        412 (the revision is stale) and the retry policy allows it (``retry_on_stale``),
        ``reread()`` gives the current revision and the write is sent once more."""
        policy = self._requestor.retry_policy
        attempt = 0
        while True:
            headers = {"If-Match": if_match} if if_match is not None else None
            try:
                return await self._requestor.request(
                    method, path, json=json, headers=headers, options=options
                )
            except PreconditionFailedError:
                if not policy.reread_on_stale(attempt=attempt, requested=retry_on_stale):
                    raise
                attempt += 1
                if_match = await reread()
