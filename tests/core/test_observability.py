"""Login steps in the DEBUG log, OpenTelemetry spans around every call and login step, and no
secret in either: for each API, a full login and a few calls against its in-process fake."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mfa_common import tracing
from quatrix_async import QuatrixClient
from tests import secret_scan
from tests.core._observed_runs import BASE, SCENARIOS, Run, quatrix_run

pytestmark = pytest.mark.anyio


def _assert_no_secret(texts: list[tuple[str, str]], run: Run) -> None:
    for source, text in texts:
        for secret in run.secrets:
            assert secret not in text, f"a secret of the test appears in {source}"
    # And no value the suite wrapped in a Secret so far (tokens, session ids, JWTs, API keys).
    assert secret_scan.SCANNER.scan_texts(texts) == []


# -- logs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", sorted(SCENARIOS))
async def test_login_steps_are_logged_at_debug_without_secrets(
    api: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="mfa_common"):
        run = await SCENARIOS[api]()
    lines = [(r.name, r.getMessage()) for r in caplog.records if r.name.startswith("mfa_common")]
    debug = [text for _, text in lines]
    password_lines = [
        t
        for t in debug
        if t.startswith(f"{api} login step password: {run.login_method} {BASE}{run.login_route} -> ")
    ]
    assert len(password_lines) == 1, debug
    assert password_lines[0].endswith("(attempt 1)")
    code_lines = [
        t for t in debug if t.startswith(f"{api} login step code: POST {BASE}{run.code_route} -> 200 ")
    ]
    assert len(code_lines) == 1, debug
    assert f"{api} login step code: sending a freshly issued code (kind totp)" in debug
    assert f"{api} login step code: the code (kind totp) was accepted" in debug
    # Calls after the login are plain lines, not login steps.
    assert sum(" login step " not in t and "(attempt 1)" in t for t in debug) >= 2
    _assert_no_secret(lines, run)


async def test_a_wait_for_the_next_code_window_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mfa_common"):
        run = await quatrix_run(logins=2)  # the second login must wait for a fresh code step
    waits = [r for r in caplog.records if "for the next code window" in r.getMessage()]
    assert len(waits) == 1 and waits[0].levelno == logging.INFO
    assert waits[0].getMessage().startswith("waiting ")
    _assert_no_secret([(r.name, r.getMessage()) for r in caplog.records], run)


# -- spans -------------------------------------------------------------------------------------


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable_tracing(provider)
    try:
        yield exporter
    finally:
        tracing.disable_tracing()
        provider.shutdown()


def _span_texts(spans: tuple[ReadableSpan, ...]) -> list[tuple[str, str]]:
    texts: list[tuple[str, str]] = []
    for span in spans:
        texts.append(("span name", span.name))
        for key, value in (span.attributes or {}).items():
            texts.append((f"attribute {key} of {span.name}", f"{key}={value}"))
        for event in span.events:
            texts.append((f"event of {span.name}", event.name))
            for key, value in (event.attributes or {}).items():
                texts.append((f"event attribute {key} of {span.name}", f"{key}={value}"))
        if span.status.description:
            texts.append((f"status of {span.name}", span.status.description))
    return texts


@pytest.mark.parametrize("api", sorted(SCENARIOS))
async def test_spans_cover_every_call_and_login_step_without_secrets(
    api: str, exporter: InMemorySpanExporter
) -> None:
    run = await SCENARIOS[api]()
    spans = exporter.get_finished_spans()
    http = [s for s in spans if s.name != "mfa.login"]
    assert all(s.attributes and s.attributes["mfa.api"] == api for s in http)
    steps = {
        s.attributes["mfa.login_step"]: s for s in http if s.attributes and "mfa.login_step" in s.attributes
    }
    assert set(steps) == {"password", "code"}
    password, code = steps["password"], steps["code"]
    assert password.name == f"{run.login_method} {run.login_route}"
    assert password.attributes and password.attributes["url.template"] == run.login_route
    assert password.attributes["http.request.method"] == run.login_method
    assert password.attributes["mfa.attempt"] == 1
    assert code.attributes and code.attributes["url.template"] == run.code_route
    assert code.attributes["http.response.status_code"] == 200
    calls = [s for s in http if s.attributes and "mfa.login_step" not in s.attributes]
    assert len(calls) >= 2 and all(
        s.attributes and s.attributes["http.response.status_code"] == 200 for s in calls
    )
    # One login span; its steps are its children, and it holds the code's settlement.
    (login,) = [s for s in spans if s.name == "mfa.login"]
    assert login.context is not None
    assert login.attributes is not None and login.attributes["mfa.api"] == api
    assert password.parent is not None and password.parent.span_id == login.context.span_id
    assert code.parent is not None and code.parent.span_id == login.context.span_id
    settled = [e for e in login.events if e.name == "mfa.code.settled"]
    assert len(settled) == 1 and settled[0].attributes is not None
    assert dict(settled[0].attributes) == {
        "mfa.api": api,
        "mfa.login_step": "code",
        "mfa.code.kind": "totp",
        "mfa.code.settlement": "accepted",
    }
    _assert_no_secret(_span_texts(spans), run)


async def test_a_route_template_replaces_a_secret_path_and_no_query_value_is_kept(
    exporter: InMemorySpanExporter,
) -> None:
    token = "reset-token-abcdef123456"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"message": "no such token"})

    async with QuatrixClient(BASE, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(Exception) as info:
            await client.requestor.request(
                "GET",
                f"reset/{token}",
                params={"email": "someone@example.com"},
                path_template="reset/{token}?email=***",
                authenticated=False,
            )
        await client.requestor.request(
            "GET", "plain", params={"q": "hidden-query-value"}, raise_for_status=False
        )
    assert type(info.value).__name__ == "NotFoundError"
    templated, plain = exporter.get_finished_spans()
    assert templated.name == "GET /api/1.0/reset/{token}"
    assert templated.attributes is not None and templated.attributes["error.type"] == "404"
    assert plain.name == "GET /api/1.0/plain" and plain.attributes is not None
    assert plain.attributes["url.template"] == "/api/1.0/plain"
    texts = " ".join(t for _, t in _span_texts((templated, plain)))
    for secret in (token, "someone@example.com", "hidden-query-value"):
        assert secret not in texts


async def test_a_retried_attempt_is_a_span_of_its_own_and_errors_carry_their_type_only(
    exporter: InMemorySpanExporter,
) -> None:
    answers = iter([httpx.ConnectError("connection refused by 10.0.0.9 with secret detail")])

    def handler(request: httpx.Request) -> httpx.Response:
        exc = next(answers, None)
        if exc is not None:
            raise exc
        return httpx.Response(200, json={})

    async with QuatrixClient(BASE, transport=httpx.MockTransport(handler)) as client:
        await client.requestor.request("GET", "things", authenticated=False)
    first, second = exporter.get_finished_spans()
    assert first.attributes is not None and second.attributes is not None
    assert (first.attributes["mfa.attempt"], second.attributes["mfa.attempt"]) == (1, 2)
    assert first.attributes["error.type"] == "ConnectError"
    assert second.attributes["http.request.resend_count"] == 1
    assert second.attributes["http.response.status_code"] == 200
    assert first.events == () and not first.status.description  # no exception text recorded


async def test_tracing_off_makes_no_span(exporter: InMemorySpanExporter) -> None:
    tracing.disable_tracing()
    await quatrix_run()
    assert exporter.get_finished_spans() == ()


# -- optional import ---------------------------------------------------------------------------

_BLOCKED = textwrap.dedent(
    """
    import asyncio, sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, Block())
    from tests.core._observed_runs import metalcloud_run, quatrix_run, xmfa_run
    from mfa_common import tracing

    async def main():
        for run in (quatrix_run, metalcloud_run, xmfa_run):
            await run()

    asyncio.run(main())
    assert not [m for m in sys.modules if m.startswith("opentelemetry")], "imported"
    try:
        tracing.enable_tracing()
    except ImportError as exc:
        print("refused:", exc)
    """
)


def test_without_opentelemetry_nothing_imports_it_and_enabling_says_what_to_install() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "refused: tracing needs opentelemetry-api: pip install 'mfa-sdks[otel]'" in done.stdout
