"""The fakes answer hostile input with a 4xx and keep their state sound (never a 5xx).

Each case here answered 500 before the shared strict parsing (``mfa_common.testing.load_json``,
``parse_int``): a lone UTF-16 surrogate in a JSON string, ``NaN`` / ``Infinity``, nesting deeper
than Python's recursion limit, and ``inf`` / ``1e400`` where the MetalCloud listing wants an
integer. A stored surrogate also broke every later read of the same record.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest

from metalcloud_async.testing import MetalCloudFake
from mfa_common.testing import BadJson, load_json, parse_int
from mfa_common.xmfa.testing import XMfaFake
from quatrix_async.testing import QuatrixFake

pytestmark = pytest.mark.anyio

LONE_SURROGATE = b'"\\ud800"'
DEEP = b"[" * 100_000 + b"]" * 100_000


def client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url="http://fake.test", transport=httpx.ASGITransport(app))  # type: ignore[arg-type]


def test_load_json_refuses_what_cannot_be_sent_back() -> None:
    for raw in (b'{"a": ' + LONE_SURROGATE + b"}", b"NaN", b"[Infinity]", b'{"\\udfff": 1}', DEEP, b"\xff"):
        with pytest.raises(BadJson):
            load_json(raw)
    assert load_json(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}  # a real pair is text
    assert load_json(b'{"a": ["x\\ud800y"]}', lone_surrogates="replace") == {"a": ["x\ufffdy"]}


def test_parse_int_reads_plain_integers_only() -> None:
    assert [parse_int(t) for t in ("7", " -3 ", "+12")] == [7, -3, 12]
    assert all(parse_int(t) is None for t in ("inf", "1e400", "1.5", "nan", "", None, "1" * 19, "0x10"))


# -- Quatrix -----------------------------------------------------------------------------------


def quatrix() -> tuple[QuatrixFake, str]:
    fake = QuatrixFake()
    user = fake.add_user(email="ann@example.test", password="correct-horse", admin=True, name="Ann")
    return fake, fake.open_session(user.email)


async def test_quatrix_profile_set_with_a_lone_surrogate_is_refused_and_reads_still_work() -> None:
    fake, sid = quatrix()
    headers = {"X-Auth-Token": sid, "Content-Type": "application/json"}
    async with client(fake) as http:
        answer = await http.post(
            "/api/1.0/profile/set", content=b'{"name": ' + LONE_SURROGATE + b"}", headers=headers
        )
        assert answer.status_code == 400
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["code"] == 10
        profile = await http.get("/api/1.0/profile", headers=headers)
        users = await http.get("/api/1.0/user", headers=headers)
    assert profile.status_code == 200 and profile.json()["name"] == "Ann"
    assert users.status_code == 200
    assert fake.user("ann@example.test").name == "Ann"
    assert fake.ledger.entries() == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"auth_type": "PIN", "code": ' + LONE_SURROGATE + b"}",
        b'{"auth_type": "2FA", "value": {"code": ' + LONE_SURROGATE + b"}}",
        b'{"auth_type": NaN, "code": "12345"}',
        DEEP,
    ],
    ids=["pin-surrogate", "legacy-code-surrogate", "nan", "deep"],
)
async def test_quatrix_mfa_step_refuses_hostile_bodies(body: bytes) -> None:
    fake = QuatrixFake()
    fake.add_user(email="pin@example.test", password="correct-horse", pin="12345")
    basic = base64.b64encode(b"pin@example.test:correct-horse").decode()
    async with client(fake) as http:
        first = await http.get("/api/1.0/session/login", headers={"Authorization": "Basic " + basic})
        assert first.status_code == 207
        sid = first.json()["session_id"]
        answer = await http.post("/api/1.0/session/login", content=body, headers={"X-Auth-Token": sid})
    assert answer.status_code == 400, answer.text


async def test_quatrix_set_password_with_a_surrogate_password_is_refused() -> None:
    fake, sid = quatrix()
    body = b'{"password": ' + LONE_SURROGATE + b', "new_password": "bmV3LXBhc3N3b3Jk"}'
    async with client(fake) as http:
        answer = await http.post("/api/1.0/profile/set-password", content=body, headers={"X-Auth-Token": sid})
    assert answer.status_code == 400
    assert fake.user("ann@example.test").password == "correct-horse"


# -- MetalCloud --------------------------------------------------------------------------------


def metalcloud() -> tuple[MetalCloudFake, dict[str, str]]:
    fake = MetalCloudFake()
    admin = fake.add_user("root@example.test", "root-password", access_level="root")
    fake.seed_users(30)
    return fake, {"Authorization": f"Bearer {admin.api_key}"}


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "inf"},
        {"page": "1e400"},
        {"limit": "-inf", "page": "nan"},
        {"filter.id": "$eq:inf"},
        {"filter.id": "$gt:1e400"},
        {"filter.id": "$in:1,inf,-inf"},
        {"page": "9" * 18},
    ],
)
async def test_metalcloud_listing_survives_non_integer_numbers(query: dict[str, str]) -> None:
    fake, auth = metalcloud()
    async with client(fake) as http:
        answer = await http.get("/api/v2/users", params=query, headers=auth)
    assert answer.status_code == 200, answer.text
    meta = answer.json()["meta"]
    assert meta["itemsPerPage"] in (20, 100) or "limit" not in query
    if "filter.id" in query and "$in" not in query["filter.id"]:
        assert answer.json()["data"] == []


async def test_metalcloud_listing_with_bad_numbers_uses_the_defaults() -> None:
    fake, auth = metalcloud()
    async with client(fake) as http:
        answer = await http.get("/api/v2/users", params={"limit": "inf", "page": "1e400"}, headers=auth)
    meta = answer.json()["meta"]
    assert (meta["itemsPerPage"], meta["currentPage"]) == (20, 1)
    assert len(answer.json()["data"]) == 20


@pytest.mark.parametrize(
    "body",
    [
        b'{"provider": "mysql", "properties": {"username": "root@example.test", "password": '
        + LONE_SURROGATE
        + b"}}",
        b'{"provider": "mysql", "properties": {"username": ' + LONE_SURROGATE + b', "password": "x"}}',
        b'{"provider": "mysql", "properties": {"username": "root@example.test", "password": NaN}}',
        DEEP,
    ],
    ids=["password-surrogate", "username-surrogate", "nan", "deep"],
)
async def test_metalcloud_login_refuses_hostile_bodies(body: bytes) -> None:
    fake, _ = metalcloud()
    async with client(fake) as http:
        answer = await http.post("/api/v2/login", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["statusCode"] == 400


async def test_metalcloud_token_with_an_infinite_subject_is_unauthorized() -> None:
    fake, _ = metalcloud()
    payload = base64.urlsafe_b64encode(b'{"sub": Infinity}').rstrip(b"=").decode()
    async with client(fake) as http:
        answer = await http.get(
            "/api/v2/user", headers={"Authorization": f"Bearer eyJhbGciOiJIUzI1NiJ9.{payload}.x"}
        )
    assert answer.status_code == 401


# -- X-MFA (ShellHub) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "alice", "password": ' + LONE_SURROGATE + b"}",
        b'{"username": ' + LONE_SURROGATE + b', "password": "alice-password"}',
    ],
    ids=["password", "username"],
)
async def test_xmfa_login_with_a_lone_surrogate_is_a_failed_login_as_on_a_go_server(body: bytes) -> None:
    fake = XMfaFake()
    fake.add_user("alice", "alice-password")
    async with client(fake) as http:
        answer = await http.post("/api/login", content=body)
    assert answer.status_code == 401
    assert answer.json() == {"message": "auth unauthorized"}


async def test_xmfa_deep_or_non_standard_json_is_an_invalid_entity() -> None:
    fake = XMfaFake()
    fake.add_user("alice", "alice-password")
    async with client(fake) as http:
        for body in (DEEP, b'{"username": "alice", "password": NaN}'):
            answer = await http.post("/api/login", content=body)
            assert answer.status_code == 400
            assert answer.json() == {"message": "invalid entity"}


# -- every operation of every fake, a battery of hostile bodies and query values ----------------

HOSTILE_BODIES = [
    b'{"a": ' + LONE_SURROGATE + b"}",
    b"NaN",
    b"[Infinity]",
    DEEP,
    b"\xff\xfe\x00",
    b"null",
    b"[]",
    b'"text"',
    b"1e400",
    b'{"code": {}, "token": [], "password": 1, "ids": {"a": 1}, "auth_type": [], "properties": "x", "email": 5}',
    b'{"name": "' + b"x" * 20_000 + b'"}',
    b'{"ids": ["' + b'", "'.join(b"%d" % i for i in range(500)) + b'"]}',
]
HOSTILE_QUERY = {
    "limit": "inf",
    "page": "1e400",
    "filter.id": "$eq:inf",
    "token": "\x00",
    "recursion": "-1e999",
}


def spec_operations(name: str) -> list[tuple[str, str]]:
    import yaml

    from tests.testing_infra.test_fake_contract_fuzz import SPECS

    doc = yaml.safe_load((SPECS / name).read_text(encoding="utf-8"))
    prefix = doc.get("basePath", "")
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (method.upper(), prefix + "/".join("1" if p.startswith("{") else p for p in path.split("/")))
        for path, item in doc["paths"].items()
        for method in item
        if method in methods
    ]


async def battery(
    app: object, operations: list[tuple[str, str]], headers: Callable[[], dict[str, str]]
) -> list[str]:
    """Send every hostile body (and hostile query values) to every operation, with fresh valid
    credentials each time (so no operation hides behind a 401); the answers that were 5xx."""
    failures = []
    async with client(app) as http:
        for method, path in operations:
            for body in HOSTILE_BODIES if method != "GET" else [b""]:
                answer = await http.request(
                    method,
                    path,
                    content=body,
                    params=HOSTILE_QUERY,
                    headers={"Content-Type": "application/json", **headers()},
                )
                if answer.status_code >= 500:
                    failures.append(f"{method} {path} {body[:40]!r} -> {answer.status_code}")
    return failures


async def test_no_quatrix_operation_answers_5xx_to_hostile_input() -> None:
    fake, _ = quatrix()
    user = fake.user("ann@example.test")
    headers = lambda: {"X-Auth-Token": fake.open_session(user.email)}  # noqa: E731
    assert await battery(fake, spec_operations("quatrix-1.0.yaml"), headers) == []
    async with client(fake) as http:
        assert (await http.get("/api/1.0/profile", headers=headers())).status_code == 200
        assert (await http.get("/api/1.0/user", headers=headers())).status_code == 200


async def test_no_metalcloud_operation_answers_5xx_to_hostile_input() -> None:
    fake, _ = metalcloud()
    root = fake.user("root@example.test")
    headers = lambda: {"Authorization": f"Bearer {root.api_key}"}  # noqa: E731
    assert await battery(fake, spec_operations("metalcloud-v2.yaml"), headers) == []
    async with client(fake) as http:
        assert (await http.get("/api/v2/user", headers=headers())).status_code == 200


async def test_no_xmfa_operation_answers_5xx_to_hostile_input() -> None:
    fake = XMfaFake()
    fake.add_user("alice", "alice-password", mfa=True)
    headers = lambda: {"Authorization": "Bearer " + fake.issue_jwt("alice")}  # noqa: E731
    assert await battery(fake, spec_operations("shellhub-mfa.yaml"), headers) == []
    assert fake.user("alice").mfa
