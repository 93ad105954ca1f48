"""A FastAPI service that administers Quatrix users through one shared ``QuatrixClient``.

* The client is opened once in the lifespan and closed (logging the session out) at shutdown.
* Handlers receive it through a dependency, so every request shares one session and one
  connection pool; the session backend logs in once, however many requests arrive together.
* A client that disconnects mid-request cancels nothing the next request depends on: login is
  single-flight and cancellation-safe, and the connection pool is not poisoned by cancellation.

Run it against the fake::

    python -m quatrix_async.testing --port 8081 &
    QUATRIX_HOST=http://127.0.0.1:8081 QUATRIX_EMAIL=admin@example.com \\
    QUATRIX_PASSWORD=... QUATRIX_TOTP_SECRET=... uvicorn examples.fastapi_service.app:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import attrs
from fastapi import Depends, FastAPI, HTTPException, Request

from mfa_common.errors import APIStatusError, MfaSdkError
from quatrix_async import QuatrixClient


@attrs.frozen
class Settings:
    """Where the service finds Quatrix; secrets come from the environment only."""

    url: str
    email: str
    password: str = attrs.field(repr=False)
    totp_secret: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            url=os.environ["QUATRIX_HOST"],
            email=os.environ["QUATRIX_EMAIL"],
            password=os.environ["QUATRIX_PASSWORD"],
            totp_secret=os.environ.get("QUATRIX_TOTP_SECRET"),
        )


ClientFactory = Callable[[Settings], QuatrixClient]


def get_quatrix(request: Request) -> QuatrixClient:
    """The dependency: the process-wide client opened in the lifespan."""
    client: QuatrixClient = request.app.state.quatrix
    return client


Quatrix = Annotated[QuatrixClient, Depends(get_quatrix)]


def default_client(settings: Settings) -> QuatrixClient:
    return QuatrixClient(
        settings.url, email=settings.email, password=settings.password, totp_secret=settings.totp_secret
    )


def create_app(settings: Settings | None = None, client_factory: ClientFactory = default_client) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client_factory(settings or Settings.from_env()) as client:
            app.state.quatrix = client
            yield

    app = FastAPI(title="Quatrix MFA admin", lifespan=lifespan)

    @app.exception_handler(MfaSdkError)
    async def sdk_error(request: Request, exc: MfaSdkError) -> Any:
        from fastapi.responses import JSONResponse

        status = exc.status_code if isinstance(exc, APIStatusError) and exc.status_code < 500 else 502
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status)

    @app.get("/me")
    async def me(quatrix: Quatrix) -> dict[str, Any]:
        profile = await quatrix.profile.get()
        return {"id": profile.id, "name": profile.name, "email": profile.email}

    @app.get("/users/without-2fa")
    async def users_without_2fa(quatrix: Quatrix) -> list[dict[str, Any]]:
        users = await quatrix.users.list()
        return [
            {"id": u.id, "email": u.email}
            for u in users
            if "2FA" not in (u.auth_methods or []) and "2FA" not in (u.forced_auth or [])
        ]

    @app.post("/users/{user_id}/reset-mfa")
    async def reset_mfa(user_id: str, quatrix: Quatrix) -> dict[str, str]:
        if len(user_id) > 64:
            raise HTTPException(400, "not a user id")
        result = await quatrix.mfa.reset_for_users([user_id])
        status = result.status
        return {"status": str(getattr(status, "value", status))}

    return app


def __getattr__(name: str) -> FastAPI:
    # ``uvicorn examples.fastapi_service.app:app`` builds the app from the environment lazily.
    if name == "app":
        return create_app()
    raise AttributeError(name)
