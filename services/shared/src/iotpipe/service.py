"""The shape every service shares: a FastAPI app with health, readiness,
metrics, bearer-token auth for mutating endpoints, and JSON errors.

A service builds its app with :func:`create_app`, registers its routers, and
protects mutating routes with the :data:`Authorized` dependency::

    app = create_app(name="dlq-inspector", settings=settings, readiness={"kafka": check_kafka})

    @router.post("/dlq/replay")
    async def replay(request: ReplayRequest, _: Authorized) -> ReplayJob: ...
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from iotpipe import __version__
from iotpipe.metrics import BUILD_INFO, http_metrics_middleware, metrics_response
from iotpipe.settings import ServiceSettings

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[object]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

READINESS_TIMEOUT_S = 3.0


class ErrorBody(BaseModel):
    """Every error the services return: a readable message, and details where useful."""

    detail: str
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: str
    service: str
    version: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


_bearer = HTTPBearer(
    auto_error=False, description="The service's API token (from its Kubernetes Secret)."
)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Refuse a request without the service's bearer token (401)."""
    settings: ServiceSettings = request.app.state.settings
    expected = settings.api_token.get_secret_value().encode()
    if credentials is None or not secrets.compare_digest(
        credentials.credentials.encode(), expected
    ):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authorized = Annotated[None, Depends(require_token)]
"""Add ``_: Authorized`` to a route to require the bearer token."""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid bearer token"},
    422: {"model": ErrorBody, "description": "The request is invalid; `detail` says why"},
}


def _readable(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _jsonable(errors: list[Any]) -> list[dict[str, Any]]:
    keep = ("loc", "msg", "type")
    return [{k: (list(e[k]) if k == "loc" else str(e[k])) for k in keep if k in e} for e in errors]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable(list(exc.errors()))
        body = ErrorBody(detail=_readable(errors), errors=errors)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)


async def _run_check(check: ReadinessCheck) -> str:
    try:
        await asyncio.wait_for(check(), timeout=READINESS_TIMEOUT_S)
    except TimeoutError:
        return f"timed out after {READINESS_TIMEOUT_S:.0f}s"
    except Exception as exc:  # a readiness probe reports, it does not raise
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def create_app(
    *,
    name: str,
    settings: ServiceSettings,
    description: str = "",
    readiness: Mapping[str, ReadinessCheck] | None = None,
    lifespan: Lifespan | None = None,
    version: str = __version__,
) -> FastAPI:
    """A FastAPI app with `/healthz`, `/readyz`, `/metrics`, auth and JSON errors."""
    checks = dict(readiness or {})
    app = FastAPI(
        title=name,
        description=description,
        version=version,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.settings = settings
    BUILD_INFO.info({"service": name, "version": version})
    app.middleware("http")(http_metrics_middleware(name))
    install_error_handlers(app)

    @app.get("/healthz", tags=["ops"], summary="The process is up")
    async def healthz() -> Health:
        return Health(status="ok", service=name, version=version)

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Dependencies are reachable",
        responses={503: {"model": Readiness, "description": "A dependency is not reachable"}},
    )
    async def readyz() -> JSONResponse:
        results = dict(
            zip(
                checks, await asyncio.gather(*(_run_check(c) for c in checks.values())), strict=True
            )
        )
        ready = all(result == "ok" for result in results.values())
        body = Readiness(status="ready" if ready else "not ready", checks=results)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics (text format)",
        response_class=PlainTextResponse,
    )
    async def metrics() -> Response:
        return metrics_response()

    return app


async def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run an app with uvicorn until SIGTERM/SIGINT (graceful: lifespan shutdown runs)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    await uvicorn.Server(config).serve()
