"""Contract checks: every request a client sends and every response a fake returns is validated
against the official OpenAPI documents in ``tests/specs/`` (openapi-core).

Wrap any transport: ``ValidatingTransport(httpx.ASGITransport(app), "quatrix-1.0.yaml",
prefix="/api/1.0")``; after the test, ``transport.violations`` must be empty. The Quatrix
document is Swagger 2.0, which openapi-core does not read, so it is converted to OpenAPI 3
first (definitions, body parameters, response schemas and headers, security schemes).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import httpx
import yaml
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPECS = Path(__file__).parent / "specs"
SPEC_SERVER = "http://spec.invalid"


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                value = (
                    value.replace("#/definitions/", "#/components/schemas/")
                    .replace("#/parameters/", "#/components/parameters/")
                    .replace("#/responses/", "#/components/responses/")
                )
            out[key] = _rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


_PARAM_SCHEMA_KEYS = ("type", "format", "enum", "default", "items", "minimum", "maximum", "pattern")


def _convert_parameter(param: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in param:
        return param
    schema = {k: param[k] for k in _PARAM_SCHEMA_KEYS if k in param}
    if schema.get("type") == "number" and schema.get("format") in ("int", "integer"):
        schema.pop("format")
    out = {k: v for k, v in param.items() if k not in _PARAM_SCHEMA_KEYS and not k.startswith("x-")}
    out["schema"] = schema
    return out


def _convert_response(resp: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in resp:
        return resp
    out: dict[str, Any] = {"description": resp.get("description", "")}
    if "schema" in resp:
        out["content"] = {"application/json": {"schema": resp["schema"]}}
    if "headers" in resp:
        out["headers"] = {
            name: {"description": h.get("description", ""), "schema": {"type": h.get("type", "string")}}
            for name, h in resp["headers"].items()
        }
    return out


def swagger2_to_openapi3(doc: dict[str, Any]) -> dict[str, Any]:
    """A faithful-enough conversion of the Swagger 2.0 subset the Quatrix document uses."""
    doc = _rewrite_refs(doc)
    schemes: dict[str, Any] = {}
    for name, scheme in doc.get("securityDefinitions", {}).items():
        if scheme["type"] == "basic":
            schemes[name] = {"type": "http", "scheme": "basic"}
        else:
            schemes[name] = {k: v for k, v in scheme.items() if k in ("type", "name", "in", "description")}
    paths: dict[str, Any] = {}
    for path, item in doc.get("paths", {}).items():
        new_item: dict[str, Any] = {}
        for method, op in item.items():
            new_op = {k: v for k, v in op.items() if k not in ("parameters", "responses")}
            params = []
            for param in op.get("parameters", []):
                if param.get("in") == "body":
                    new_op["requestBody"] = {
                        "required": bool(param.get("required")),
                        "content": {"application/json": {"schema": param["schema"]}},
                    }
                else:
                    params.append(_convert_parameter(param))
            if params:
                new_op["parameters"] = params
            new_op["responses"] = {str(code): _convert_response(r) for code, r in op["responses"].items()}
            new_item[method] = new_op
        paths[path] = new_item
    return {
        "openapi": "3.0.3",
        "info": doc["info"],
        "servers": [{"url": SPEC_SERVER}],
        "security": doc.get("security", []),
        "paths": paths,
        "components": {
            "schemas": doc.get("definitions", {}),
            "parameters": {k: _convert_parameter(v) for k, v in doc.get("parameters", {}).items()},
            "responses": {k: _convert_response(v) for k, v in doc.get("responses", {}).items()},
            "securitySchemes": schemes,
        },
    }


@functools.cache
def load_spec(name: str) -> OpenAPI:
    doc = yaml.safe_load((SPECS / name).read_text())
    if doc.get("swagger") == "2.0":
        doc = swagger2_to_openapi3(doc)
    else:
        doc["servers"] = [{"url": SPEC_SERVER}]
    return OpenAPI.from_dict(doc)


class _SpecRequest:
    def __init__(self, request: httpx.Request, body: bytes, prefix: str) -> None:
        path = request.url.path
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :] or "/"
        self.host_url = SPEC_SERVER
        self.path = path
        self.full_url_pattern = SPEC_SERVER + path
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )
        self.content_type = request.headers.get("content-type", "application/json").split(";")[0]
        self.body = body or None


class _SpecResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "application/json").split(";")[0]
        self.headers = Headers(list(response.headers.items()))
        self.data = response.content


class ValidatingTransport(httpx.AsyncBaseTransport):
    """Validates each request and response passing through against ``spec``."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        spec: str,
        *,
        prefix: str = "",
        check_requests: bool = True,
        check_responses: bool = True,
        ignore_statuses: frozenset[int] = frozenset(),
    ) -> None:
        self.inner = inner
        self.spec = load_spec(spec)
        self.prefix = prefix
        self.check_requests = check_requests
        self.check_responses = check_responses
        self.ignore_statuses = ignore_statuses
        self.violations: list[str] = []
        self.checked = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        spec_request = _SpecRequest(request, body, self.prefix)
        if self.check_requests:
            self._collect("request", request, list(self.spec.iter_request_errors(spec_request)))
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if self.check_responses and response.status_code not in self.ignore_statuses:
            errors = list(self.spec.iter_response_errors(spec_request, _SpecResponse(response)))
            self._collect(f"response {response.status_code}", request, errors)
        self.checked += 1
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            content=response.content,
            request=request,
            extensions=response.extensions,
        )

    def _collect(self, what: str, request: httpx.Request, errors: list[Exception]) -> None:
        for error in errors:
            detail = error
            while getattr(detail, "__cause__", None) is not None:
                detail = detail.__cause__  # type: ignore[assignment]
            schema_errors = getattr(detail, "schema_errors", None)
            extra = "; ".join(str(e.message) for e in schema_errors) if schema_errors else str(detail)
            self.violations.append(f"{request.method} {request.url.path} {what}: {error!r}: {extra}")

    async def aclose(self) -> None:
        await self.inner.aclose()


def json_body(response: httpx.Response) -> Any:
    return json.loads(response.content) if response.content else None
