"""The one driver of every login machine (see :mod:`mfa_common.auth.machine`).

:func:`drive` runs a machine to its end: it sends the plain steps through the sender (with the
sender's retries), and owns everything about one-time codes:

* it asks the code provider for a code (a provider whose callback blocks runs in a worker
  thread, see :class:`~mfa_common.code_providers.CallbackCodeProvider`);
* it sends a code-bearing request with ``max_retries=0``: the transport never repeats a code;
* it settles the code by the API's settlement table without blocking the event loop (a
  recovery-code store writes its file in a worker thread), and when the server refused the request
  without looking at the code (``NOT_SENT``) it asks the client's
  :class:`~mfa_common.retry.RetryPolicy` whether and when to send again
  (:meth:`~mfa_common.retry.RetryPolicy.delay_before_new_code`), and does so **with a freshly
  issued code**;
* when a code took longer than the step's ``max_age`` to come (a TOTP wait behind other logins of
  the same user, a person typing), the partial login may have died meanwhile, so the machine is
  started again and the code, never sent, goes to the new partial login.

Manual login steps use it too, with a provider holding the caller's code and no code resends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import attrs

from .. import tracing
from .._httpx import Request, Response
from .._logging import log_debug
from ..clock import Clock
from ..code_providers import CodeProvider, IssuedCode, MfaChallenge, asettled_if_send_fails
from ..errors import APIError, InvalidInputError, MfaCodeRejectedError
from ..replay_guard import note_possible_replay
from ..retry import RetryPolicy
from .machine import Answer, LoginFlow, SendCode, SendStep, Settlement

__all__ = ["ProviderFor", "Sender", "drive"]

T = TypeVar("T")


class Sender(Protocol):
    """How login steps are sent: ``send(request, max_retries=None) -> Response`` (any status)."""

    def __call__(self, request: Request, *, max_retries: int | None = None) -> Awaitable[Response]: ...


ProviderFor = Callable[[MfaChallenge], CodeProvider | None]

_DEFAULT_POLICY = RetryPolicy()


@attrs.frozen
class _Finished(Generic[T]):
    value: T


def _advance(flow: LoginFlow[T], answer: Answer | None) -> SendStep | SendCode | _Finished[T]:
    try:
        return next(flow) if answer is None else flow.send(answer)
    except StopIteration as stop:
        return _Finished(stop.value)


def _throw(flow: LoginFlow[T], exc: APIError) -> SendStep | SendCode | _Finished[T]:
    try:
        return flow.throw(exc)
    except StopIteration as stop:
        return _Finished(stop.value)


async def _plain_steps(
    flow: LoginFlow[T], step: SendStep | SendCode | _Finished[T], send: Sender, clock: Clock
) -> SendCode | _Finished[T]:
    """Send plain steps until the machine needs a code or is done. A failed send is thrown
    into the machine, which may recover (a renewal falls back to a login) or let it pass."""
    while isinstance(step, SendStep):
        step.request.extensions[tracing.LOGIN_STEP_EXTENSION] = step.name
        try:
            response = await send(step.request)
        except APIError as exc:
            step = _throw(flow, exc)
            continue
        step = _advance(flow, Answer(response, clock.now()))
    return step


async def _send_code(
    step: SendCode,
    issued: IssuedCode,
    send: Sender,
    on_code_sent: Callable[[], None] | None,
    api: str,
) -> tuple[Response, Settlement]:
    try:
        request = step.build(issued)
    except BaseException:
        await issued.asettle("not_sent")
        raise
    request.extensions[tracing.LOGIN_STEP_EXTENSION] = step.name
    log_debug(
        "%s login step %s: sending a freshly issued code (kind %s)", api, step.name, step.challenge.kind
    )
    if on_code_sent is not None:
        on_code_sent()
    async with asettled_if_send_fails(issued):
        response = await send(request, max_retries=0)
    outcome = step.settle(response.status_code, response.headers, response.content)
    await issued.asettle(outcome.value)
    # The kind and the settlement only: never the code.
    log_debug(
        "%s login step %s: the code (kind %s) was %s", api, step.name, step.challenge.kind, outcome.value
    )
    tracing.code_settled(
        {
            "mfa.api": api,
            "mfa.login_step": step.name,
            "mfa.code.kind": step.challenge.kind,
            "mfa.code.settlement": outcome.value,
        }
    )
    return response, outcome


@tracing.traced_login
async def drive(
    start: Callable[[], LoginFlow[T]],
    *,
    send: Sender,
    provider_for: ProviderFor,
    clock: Clock,
    policy: RetryPolicy = _DEFAULT_POLICY,
    on_code_sent: Callable[[], None] | None = None,
    api: str = "http",
) -> T:
    """Run the machine made by ``start`` to its credential; see the module docstring.
    ``policy`` decides the resends of code-bearing steps; ``api`` names the API in log lines
    and spans."""
    flow = start()
    started = clock.now()
    try:
        step = await _plain_steps(flow, _advance(flow, None), send, clock)
        while isinstance(step, SendCode):
            provider = provider_for(step.challenge)
            if provider is None:
                raise step.unanswerable or InvalidInputError(
                    f"no code provider answers a {step.challenge.kind} challenge"
                )
            issued = await provider.issue(step.challenge)
            retries = 0
            while True:
                if clock.now() - started > step.max_age:
                    flow.close()
                    flow, started = start(), clock.now()
                    try:
                        restarted = await _plain_steps(flow, _advance(flow, None), send, clock)
                    except BaseException:
                        await issued.asettle("not_sent")
                        raise
                    if isinstance(restarted, _Finished):
                        await issued.asettle("not_sent")
                        return restarted.value
                    step = restarted
                response, outcome = await _send_code(step, issued, send, on_code_sent, api)
                delay = None
                if outcome is Settlement.NOT_SENT:
                    delay = policy.delay_before_new_code(response, retry=retries + 1, now=clock.now())
                if delay is None:
                    break
                retries += 1
                await clock.sleep(delay)
                issued = await provider.issue(step.challenge)
            try:
                step = await _plain_steps(flow, _advance(flow, Answer(response, clock.now())), send, clock)
            except MfaCodeRejectedError as exc:
                if issued.kind == "totp" and outcome is Settlement.REJECTED:
                    note_possible_replay(exc)
                raise
        return step.value
    finally:
        flow.close()
