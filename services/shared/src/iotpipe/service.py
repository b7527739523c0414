"""The shape every service shares: a FastAPI app with health, readiness,
metrics, bearer-token auth for mutating endpoints, and JSON errors.

A service builds its app with :func:`create_app`, registers its routers, and
protects mutating routes with the :data:`Authorized` dependency::

    app = create_app(name="dlq-inspector", settings=settings, readiness={"kafka": check_kafka},
                     start=inspector.start, stop=inspector.stop)

A service whose start needs a dependency (Kafka, the warehouse) comes up without it: the
process answers ``/healthz``, ``/readyz`` says what it is waiting for, other routes answer 503,
and the start is retried until it succeeds (:class:`Startup`), so a pod starting before
its broker or database waits instead of crash-looping.

Before a mutating request's body is read, :class:`BodyGuard` refuses it without the API
token (401) and caps its size (413; ``ServiceSettings.max_body_bytes``, or a route's own
limit), so an anonymous client cannot make a service read or spool a large body.

    @router.post("/dlq/replay")
    async def replay(request: ReplayRequest, _: Authorized) -> ReplayJob: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iotpipe import __version__
from iotpipe.metrics import BUILD_INFO, SERVICE_LABEL, http_metrics_middleware, metrics_response
from iotpipe.settings import ServiceSettings

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[object]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
CallNext = Callable[[Request], Awaitable[Response]]

READINESS_TIMEOUT_S = 3.0
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"})
"""Routes that answer while the service is still starting."""


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


async def require_read_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Refuse a request without the service's bearer token or its read-only token (401)."""
    settings: ServiceSettings = request.app.state.settings
    given = credentials.credentials.encode() if credentials else b""
    accepted = [settings.api_token, *([settings.read_token] if settings.read_token else [])]
    if credentials is None or not any(
        secrets.compare_digest(given, token.get_secret_value().encode()) for token in accepted
    ):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid bearer token: send 'Authorization: Bearer <token>' "
            "(the API token or the read-only token)",
            headers={"WWW-Authenticate": "Bearer"},
        )


MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyGuard:
    """ASGI middleware for mutating requests (every one needs the API token): without the
    token, 401 before the body is read; a body over its limit, 413: at once when its
    ``Content-Length`` says so, else as soon as more than the limit has arrived (the rest is
    never read). ``limits`` maps a route's path to its own limit (an upload's)."""

    def __init__(
        self, app: ASGIApp, settings: ServiceSettings, limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.token = settings.api_token.get_secret_value().encode()
        self.default = settings.max_body_bytes
        self.limits = dict(limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), self.token):
            detail = "missing or invalid bearer token: send 'Authorization: Bearer <token>'"
            await _respond(send, 401, detail, {"WWW-Authenticate": "Bearer"})
            return
        limit = self.limits.get(scope["path"], self.default)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _respond(send, 413, _too_large(limit), {"Connection": "close"})
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # rendered as JSON by the app's HTTPException handler
                    raise HTTPException(413, _too_large(limit), {"Connection": "close"})
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> str:
    return f"the request body is larger than this route's limit of {limit} bytes"


async def _respond(send: Send, status_code: int, detail: str, headers: dict[str, str]) -> None:
    response = JSONResponse({"detail": detail}, status_code=status_code, headers=headers)
    await send(
        {"type": "http.response.start", "status": status_code, "headers": response.raw_headers}
    )
    await send({"type": "http.response.body", "body": response.body})


Authorized = Annotated[None, Depends(require_token)]
"""Add ``_: Authorized`` to a route to require the bearer token."""

ReadAuthorized = Annotated[None, Depends(require_read_token)]
"""Add ``_: ReadAuthorized`` to a read of sensitive data: the API or the read-only token."""

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


class NotStarted(RuntimeError):
    """The service's start has not succeeded yet (it is being retried)."""


class Startup:
    """A service's start, retried with capped exponential back-off until it succeeds.

    ``start`` must be safe to call again after it failed (it leaves no client behind).
    :meth:`check` is the readiness check ``started``: it raises with the last failure."""

    def __init__(
        self,
        name: str,
        start: Callable[[], Awaitable[None]],
        *,
        first_delay_s: float = 1.0,
        max_delay_s: float = 30.0,
    ) -> None:
        self._name = name
        self._start = start
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self._task: asyncio.Task[None] | None = None
        self.started = False
        self.attempts = 0
        self.last_error = "not attempted yet"

    async def attempt(self) -> bool:
        self.attempts += 1
        try:
            await self._start()
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("%s: start attempt %d failed: %s", self._name, self.attempts, exc)
            return False
        self.started = True
        if self.attempts > 1:
            log.info("%s: started after %d attempts", self._name, self.attempts)
        return True

    async def begin(self) -> None:
        """One attempt now; if it fails, keep retrying in the background."""
        if not await self.attempt():
            self._task = asyncio.create_task(self._retry(), name=f"{self._name}-startup")

    async def _retry(self) -> None:
        delay = self._first_delay_s
        while True:
            await asyncio.sleep(delay)
            if await self.attempt():
                return
            delay = min(delay * 2, self._max_delay_s)

    async def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check(self) -> None:
        if not self.started:
            raise NotStarted(f"retrying after {self.attempts} failed attempt(s): {self.last_error}")

    @property
    def waiting(self) -> str:
        return f"{self._name} is starting, retrying: {self.last_error}"


def create_app(
    *,
    name: str,
    settings: ServiceSettings,
    description: str = "",
    readiness: Mapping[str, ReadinessCheck] | None = None,
    lifespan: Lifespan | None = None,
    start: Callable[[], Awaitable[None]] | None = None,
    stop: Callable[[], Awaitable[None]] | None = None,
    version: str = __version__,
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """A FastAPI app with `/healthz`, `/readyz`, `/metrics`, auth and JSON errors.

    ``start`` runs when the app starts and is retried until it succeeds (:class:`Startup`);
    ``stop`` runs at shutdown if it did. ``lifespan`` wraps both. ``body_limits``: routes
    (by path) whose bodies may be larger than ``settings.max_body_bytes``."""
    startup = Startup(name, start) if start is not None else None
    checks: dict[str, ReadinessCheck] = {"started": startup.check} if startup else {}
    checks.update(readiness or {})

    @contextlib.asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if lifespan is not None:
                await stack.enter_async_context(lifespan(app))
            if startup is not None:
                await startup.begin()
            try:
                yield
            finally:
                if startup is not None:
                    await startup.cancel()
                    if startup.started and stop is not None:
                        await stop()

    app = FastAPI(
        title=name,
        description=description,
        version=version,
        lifespan=run,
        responses=ERROR_RESPONSES,
    )
    app.state.settings = settings
    app.state.startup = startup
    BUILD_INFO.info({SERVICE_LABEL: name, "version": version})
    app.add_middleware(BodyGuard, settings=settings, limits=body_limits)
    if startup is not None:

        @app.middleware("http")
        async def until_started(request: Request, call_next: CallNext) -> Response:
            # (attempts == 0: no lifespan ran, e.g. an app under test without its start)
            if startup.started or not startup.attempts or request.url.path in OPS_PATHS:
                return await call_next(request)
            return JSONResponse(
                {"detail": startup.waiting}, status_code=503, headers={"Retry-After": "5"}
            )

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
