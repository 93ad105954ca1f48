"""BaseClient: lifecycle, retries, deadline, error mapping, transport rules."""

from __future__ import annotations

import json
import logging

import anyio
import httpx
import pytest

from mfa_common import errors
from mfa_common.auth import BasicAuth
from mfa_common.client import BaseClient, RequestOptions, check_transport_security, is_loopback_host
from mfa_common.options import ClientOptions
from mfa_common.requestor import Requestor
from mfa_common.retry import RetryPolicy

FAST = RetryPolicy(max_retries=3, initial_backoff=0.001, max_backoff=0.002)


def client_for(handler, auth=None, **options) -> BaseClient:  # type: ignore[no-untyped-def]
    options.setdefault("retry", FAST)
    return BaseClient(
        "http://127.0.0.1:9/api",
        auth=auth,
        transport=httpx.MockTransport(handler),
        options=ClientOptions(**options),
    )


@pytest.mark.anyio
async def test_get_is_retried_on_503_then_succeeds() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503 if len(calls) < 3 else 200, json={"ok": True})

    async with client_for(handler) as client:
        response = await client.requestor.request("GET", "thing")
    assert response.status_code == 200
    assert len(calls) == 3
    assert str(calls[0].url) == "http://127.0.0.1:9/api/thing"


@pytest.mark.anyio
async def test_post_is_not_retried_on_500() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500, json={"message": "boom"})

    async with client_for(handler) as client:
        with pytest.raises(errors.ServerError) as info:
            await client.requestor.request("POST", "write", json={"a": 1})
    assert len(calls) == 1
    assert info.value.status_code == 500
    assert info.value.server_message == "boom"


@pytest.mark.anyio
async def test_post_is_retried_when_connection_never_made() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(201, json={})

    async with client_for(handler) as client:
        response = await client.requestor.request("POST", "write", json={})
    assert response.status_code == 201 and calls == 2


@pytest.mark.anyio
async def test_post_is_not_retried_when_connection_dropped_after_send() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.RemoteProtocolError("peer closed", request=request)

    async with client_for(handler) as client:
        with pytest.raises(errors.APIConnectionError) as info:
            await client.requestor.request("POST", "write", json={})
    assert calls == 1
    assert info.value.request_sent is True


@pytest.mark.anyio
async def test_429_retry_after_is_honoured_for_any_method() -> None:
    stamps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(anyio.current_time())
        if len(stamps) == 1:
            return httpx.Response(429, headers={"Retry-After": "0.2"}, json={})
        return httpx.Response(200, json={})

    async with client_for(handler) as client:
        await client.requestor.request("POST", "write", json={})
    assert len(stamps) == 2
    assert stamps[1] - stamps[0] >= 0.19


@pytest.mark.anyio
async def test_retry_after_beyond_cap_is_not_waited() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3600"}, json={"message": "slow down"})

    async with client_for(handler) as client:
        with pytest.raises(errors.RateLimitError) as info:
            await client.requestor.request("GET", "x")
    assert info.value.retry_after == pytest.approx(3600)


@pytest.mark.anyio
async def test_total_deadline_spans_retries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={})

    # The server keeps answering 503: the 50 retries the policy allows (5 s of backoff) end at the
    # 0.3 s deadline. When the next backoff would end past it, the call ends at once with the
    # server's own answer; a loaded machine may overrun a sleep into the deadline instead.
    slow = RetryPolicy(max_retries=50, initial_backoff=0.1, max_backoff=0.1)
    async with client_for(handler, retry=slow, deadline=0.3) as client:
        start = anyio.current_time()
        with pytest.raises((errors.ServerError, errors.APITimeoutError)):
            await client.requestor.request("GET", "x")
        assert anyio.current_time() - start < 1.0


@pytest.mark.anyio
async def test_per_call_options_override_retries() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, json={})

    async with client_for(handler) as client:
        with pytest.raises(errors.ServerError):
            await client.requestor.request(
                "GET", "x", options=RequestOptions(max_retries=0, headers={"X-T": "1"})
            )
    assert calls == 1


@pytest.mark.anyio
async def test_status_classes_and_request_id() -> None:
    statuses = iter([400, 401, 403, 404, 409, 412, 428])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses), json={"msg": "nope"}, headers={"X-Request-Id": "rid-1"})

    expected = [
        errors.BadRequestError,
        errors.AuthenticationError,
        errors.PermissionDeniedError,
        errors.NotFoundError,
        errors.ConflictError,
        errors.PreconditionFailedError,
        errors.PreconditionRequiredError,
    ]
    async with client_for(handler) as client:
        for cls in expected:
            with pytest.raises(cls) as info:
                await client.requestor.request("POST", "x")
            assert info.value.request_id == "rid-1"
            assert info.value.server_message == "nope"


@pytest.mark.anyio
async def test_error_message_never_contains_query_secrets() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={})

    async with client_for(handler) as client:
        with pytest.raises(errors.BadRequestError) as info:
            await client.requestor.request("GET", "verify", params={"token": "s3cr3t-token"})
    assert "s3cr3t-token" not in str(info.value)
    assert "token=***" in str(info.value)


@pytest.mark.anyio
async def test_path_template_hides_secret_path_segment() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={})

    async with client_for(handler) as client:
        with pytest.raises(errors.NotFoundError) as info:
            await client.requestor.request("PUT", "reset/abc-secret", path_template="/api/reset/{token}")
    assert "abc-secret" not in str(info.value)
    assert "{token}" in str(info.value)


@pytest.mark.anyio
async def test_closed_client_refuses() -> None:
    client = client_for(lambda r: httpx.Response(200))
    await client.aclose()
    with pytest.raises(errors.ClientClosedError):
        await client.requestor.request("GET", "x")


def test_plain_http_to_remote_host_with_credentials_is_refused() -> None:
    with pytest.raises(errors.InsecureTransportError):
        BaseClient("http://api.example.com", auth=BasicAuth("a", "b"))
    BaseClient(
        "http://api.example.com", auth=BasicAuth("a", "b"), options=ClientOptions(allow_insecure_http=True)
    )
    BaseClient("http://127.0.0.1:8000", auth=BasicAuth("a", "b"))
    BaseClient("https://api.example.com", auth=BasicAuth("a", "b"))
    BaseClient("http://api.example.com")  # no credentials: allowed


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("example.com", False),
        ("127.0.0.1.example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_insecure_error_is_a_value_error_with_clear_message() -> None:
    with pytest.raises(ValueError, match="plain http"):
        check_transport_security("http://example.org", allow_insecure_http=False)


@pytest.mark.anyio
@pytest.mark.parametrize("status", [301, 302, 303, 304, 307, 308])
async def test_redirects_are_not_followed_and_are_not_success(status: int) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(status, headers={"Location": "https://evil.example/steal?token=tok-123"})

    async with client_for(handler, auth=BasicAuth("u", "p")) as client:
        for raise_for_status in (True, False):
            with pytest.raises(errors.RedirectError) as caught:
                await client.requestor.request("GET", "x", raise_for_status=raise_for_status)
            assert caught.value.status_code == status
            assert caught.value.location == "https://evil.example/steal?token=***"
            assert "tok-123" not in str(caught.value)
            assert "http://127.0.0.1:9/api/x" in str(caught.value)
        # A login step (statuses returned to the login machine) does not follow one either,
        # and does not return it as an answer.
        with pytest.raises(errors.RedirectError):
            await client.requestor.request(
                "POST", "login", json={}, authenticated=False, raise_for_status=False
            )
    assert seen == ["http://127.0.0.1:9/api/x"] * 2 + ["http://127.0.0.1:9/api/login"]


@pytest.mark.anyio
async def test_debug_log_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"token": "tok-123"})

    caplog.set_level(logging.DEBUG, logger="mfa_common")
    async with client_for(handler, auth=BasicAuth("user@example.com", "pa55word")) as client:
        await client.requestor.request("GET", "x", params={"code": "123456"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET" in text and "-> 200" in text
    for secret in ("pa55word", "123456", "tok-123", "dXNlckBleGFtcGxlLmNvbTpwYTU1d29yZA"):
        assert secret not in text


@pytest.mark.anyio
async def test_malformed_json_is_a_decode_error() -> None:
    from mfa_common.client import parse_json_body

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=b'{"session_id": "abc', headers={"content-type": "application/json"}
        )

    async with client_for(handler) as client:
        response = await client.requestor.request("GET", "x")
        with pytest.raises(errors.ResponseDecodeError) as info:
            parse_json_body(response)
    assert "abc" not in str(info.value)
    assert json.dumps(info.value.status_code) == "200"


@pytest.mark.anyio
async def test_lockout_429_is_never_retried() -> None:
    from mfa_common.retry import account_locked_out
    from mfa_common.xmfa import XMfaClient

    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(429, headers={"X-Account-Lockout": "1900000000", "Retry-After": "0"})

    # The lockout rule is the retry policy's own, for every API.
    assert account_locked_out in XMfaClient("http://127.0.0.1:9").retry_policy.final_answer
    assert account_locked_out in BaseClient("http://127.0.0.1:9").retry_policy.final_answer
    async with client_for(handler) as client:
        with pytest.raises(errors.RateLimitError):
            await client.requestor.request("POST", "login", json={})
    # A login step (sent by the requestor, statuses returned to the login machine) alike.
    requestor = Requestor(
        "http://127.0.0.1:9/api", transport=httpx.MockTransport(handler), options=ClientOptions(retry=FAST)
    )
    response = await requestor.send(requestor.build("POST", "login", json={}))
    await requestor.close()
    assert response.status_code == 429
    assert calls == 2  # one per call: no retry feeds the lockout counter


@pytest.mark.anyio
async def test_static_header_auth_sends_the_current_key_on_our_calls_only() -> None:
    from mfa_common.auth import ApiKeyAuth

    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json={})

    auth = ApiKeyAuth("1:key")
    async with client_for(handler, auth=auth) as client:
        await client.requestor.request("GET", "x")
        auth.set_key("1:rotated")
        await client.requestor.request("GET", "x")
        await client.requestor.request("GET", "x", authenticated=False)
    assert seen == ["Bearer 1:key", "Bearer 1:rotated", None]


@pytest.mark.anyio
async def test_broken_json_on_a_read_is_retried_but_not_on_a_write() -> None:
    from mfa_common.client import parse_json_body

    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) % 2 == 1:
            return httpx.Response(200, content=b'{"a": [1, 2', headers={"content-type": "application/json"})
        return httpx.Response(200, json={"a": [1, 2]})

    async with client_for(handler) as client:
        response = await client.requestor.request("GET", "x")
        assert parse_json_body(response) == {"a": [1, 2]}
        assert calls == ["GET", "GET"]
        calls.clear()
        # A write answered 2xx with an unreadable body may have been applied: unknown, not failed.
        with pytest.raises(errors.OutcomeUnknownError) as caught:
            await client.requestor.request("POST", "x", json={})
        assert caught.value.request_sent and caught.value.status_code == 200
        assert calls == ["POST"]


@pytest.mark.parametrize("bad", ["", " ", ".", "..", "a\nb", "x" * 2000])
def test_path_segments_refuse_what_could_escape_the_resource(bad: str) -> None:
    from mfa_common.client import path_segment

    with pytest.raises(errors.InvalidInputError):
        path_segment(bad)


def test_path_segment_encodes_slashes() -> None:
    from mfa_common.client import path_segment

    assert path_segment("a/b?c") == "a%2Fb%3Fc"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "failure", "expected"),
    [
        ("POST", httpx.ReadTimeout, errors.OutcomeUnknownTimeoutError),
        ("POST", httpx.ReadError, errors.OutcomeUnknownError),
        ("GET", httpx.ReadTimeout, errors.APITimeoutError),
        ("POST", httpx.ConnectTimeout, errors.APITimeoutError),
    ],
)
async def test_a_non_idempotent_request_lost_after_sending_is_an_unknown_outcome(
    method: str, failure: type[httpx.TransportError], expected: type[errors.APIConnectionError]
) -> None:
    """A POST that timed out (or whose connection broke) after it was sent may have been
    applied: the same unknown-outcome error as an answer lost mid-body, still an
    APITimeoutError for a timeout. A GET, or a POST that never left, is not."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise failure("boom", request=request)

    async with client_for(handler) as client:
        with pytest.raises(errors.APIConnectionError) as info:
            await client.requestor.request(method, "thing", options=RequestOptions(max_retries=0))
    assert type(info.value) is expected
    unknown = isinstance(info.value, errors.OutcomeUnknownError)
    assert unknown is (method == "POST" and failure is not httpx.ConnectTimeout)
    assert info.value.request_sent is unknown or method == "GET"
    if failure is not httpx.ReadError:
        assert isinstance(info.value, errors.APITimeoutError)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5", "1e12"])
def test_a_unix_seconds_header_out_of_range_or_nan_is_absent(value: str) -> None:
    """Found by the hostile-input test: ``X-Expires-At: nan`` crashed the X-MFA recovery step."""
    assert errors.unix_to_datetime(value) is None
    assert errors.unix_to_datetime("1700000000") is not None


def test_per_call_headers_replace_defaults_of_the_same_name_in_any_case() -> None:
    client = Requestor("http://127.0.0.1:9/api", options=ClientOptions(headers={"X-Team": "blue"}))
    request = client.build(
        "POST",
        "things",
        json={"n": 1},
        headers={"content-type": "application/merge-patch+json", "ACCEPT": "*/*"},
    )
    pairs = [(name.lower(), value) for name, value in request.headers.raw]
    names = [name for name, _ in pairs]
    assert names[0] == b"host" and dict(pairs)[b"host"] == b"127.0.0.1:9"
    assert sorted(names) == sorted(set(names)), "a header is sent twice"
    assert dict(pairs)[b"content-type"] == b"application/merge-patch+json"
    assert dict(pairs)[b"accept"] == b"*/*"
    assert dict(pairs)[b"x-team"] == b"blue"
    assert dict(pairs)[b"content-length"] == str(len(request.content)).encode()
    assert json.loads(request.content) == {"n": 1}


def test_a_body_method_without_json_sends_a_zero_length_and_a_read_sends_none() -> None:
    client = Requestor("http://127.0.0.1:9/api")
    post = client.build("POST", "things")
    get = client.build("GET", "things")
    assert post.headers["content-length"] == "0" and post.content == b""
    assert "content-length" not in get.headers and "content-type" not in get.headers
    assert get.headers["accept"] == "application/json"


def test_an_absolute_url_to_another_host_carries_that_host_in_front() -> None:
    client = Requestor("http://127.0.0.1:9/api")
    request = client.build("GET", "http://127.0.0.2:81/elsewhere")
    assert request.headers.raw[0] == (b"Host", b"127.0.0.2:81")
    assert [name.lower() for name, _ in request.headers.raw].count(b"host") == 1
    same = client.build("GET", "http://127.0.0.1:9/api/x")
    assert same.headers.raw[0] == (b"Host", b"127.0.0.1:9")


def test_a_header_value_no_header_may_carry_is_a_typed_error() -> None:
    client = Requestor("http://127.0.0.1:9/api")
    with pytest.raises(errors.InvalidInputError, match="header value"):
        client.build("GET", "x", headers={"X-Name": "caf\u00e9 \u2615"})
