"""Hostile bodies and query values on the MetalCloud fake's administration operations: never a
5xx, every refusal a NestJS error body, and the state still readable afterwards (bounded:
a fixed number of derandomized examples)."""

from __future__ import annotations

import json
import warnings
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock

WRITES = [
    ("POST", "/api/v2/users"),
    ("PATCH", "/api/v2/users/{id}/config"),
    ("PATCH", "/api/v2/users/{id}/meta"),
    ("POST", "/api/v2/users/{id}/actions/change-account"),
    ("POST", "/api/v2/users/{id}/actions/resend-email-verification"),
    ("PATCH", "/api/v2/users/{id}/actions/change-limits"),
    ("POST", "/api/v2/users/{id}/actions/change-resource-permissions"),
    ("POST", "/api/v2/users/{id}/ssh-keys"),
]

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["\ud800", "x\udfff", "0", "1e400", "inf", "NaN", "-1", "ssh-ed25519 AAAA"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "displayName",
                        "email",
                        "accessLevel",
                        "accountId",
                        "newAccountId",
                        "guiSettings",
                        "rowIndex",
                        "sshKey",
                        "redirectUrl",
                        "language",
                        "authenticatorCreatedTimestamp",
                        "experimentalTags",
                        "infrastructureActiveMaxCount",
                        "storageTypes",
                        "adminPasswordRevealPermissions",
                        "specialPermissions",
                        "server",
                        "\ud800",
                    ]
                ),
                st.text(max_size=8),
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=12,
)


def _fake() -> tuple[MetalCloudFake, int, dict[str, str]]:
    fake = MetalCloudFake(clock=FakeClock(1_750_000_000.0))
    root = fake.add_user("root@example.test", "root-password", access_level="root", account_id=101)
    target = fake.add_user("target@example.test", "target-password", account_id=102, email_verified=False)
    return fake, target.id, {"Authorization": f"Bearer {root.api_key}", "Content-Type": "application/json"}


def _encode(body: Any) -> bytes:
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    op=st.sampled_from(WRITES), body=_json, if_match=st.sampled_from([None, "1", '"1"', "W/1", "x", "\ud800"])
)
def test_hostile_bodies_never_answer_5xx(op: tuple[str, str], body: Any, if_match: str | None) -> None:
    fake, uid, headers = _fake()
    method, template = op
    sent: dict[str, Any] = dict(headers)
    if if_match is not None:
        sent["If-Match"] = if_match.encode("utf-8", "surrogatepass")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        with TestClient(fake, raise_server_exceptions=True) as client:
            try:
                answer = client.request(
                    method, template.format(id=uid), content=_encode(body), headers=headers
                )
            except httpx.InvalidURL:
                return
            assert answer.status_code < 500, answer.text
            if answer.status_code >= 400:
                error = answer.json()
                assert error["statusCode"] == answer.status_code and "message" in error
            for path in (f"/api/v2/users/{uid}", f"/api/v2/users/{uid}/config", "/api/v2/users"):
                assert client.get(path, headers=headers).status_code == 200
            assert client.get(f"/api/v2/users/{uid}/limits", headers=headers).status_code == 200
            assert client.get(f"/api/v2/users/{uid}/ssh-keys", headers=headers).status_code == 200


@settings(max_examples=60, derandomize=True, deadline=None)
@given(email=st.one_of(st.text(max_size=30), st.sampled_from(["a@b", "@", "x@\ud800", "a@b.test"])))
def test_hostile_provider_lookups_never_answer_5xx(email: str) -> None:
    fake, _, headers = _fake()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        with TestClient(fake) as client:
            raw = email.encode("utf-8", "surrogatepass")
            query = "".join(f"%{b:02X}" for b in raw)
            answer = client.get(f"/api/v2/authentication-provider?email={query}", headers=headers)
            assert answer.status_code in (200, 400, 404), answer.text
