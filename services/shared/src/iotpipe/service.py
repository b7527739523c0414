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

Every error is an RFC 9457 problem (``application/problem+json``: ``type``, ``title``,
``status``, ``detail``, ``instance``), rendered by one set of handlers
(:func:`install_error_handlers`) whatever raised it; the OpenAPI document declares it on
every operation (:func:`problems` for a route's own statuses, :func:`declare_problems` adds
the ones every route of its kind can answer: 401, 413, 422, 500, 503).

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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
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


PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """Every error the services return: an RFC 9457 problem document. ``detail`` is the
    readable message (the field clients read before problem+json; kept), ``errors`` the
    invalid fields of a 422."""

    type: str = Field(
        default="about:blank",
        description="A URI naming the kind of problem; `about:blank`: the status says it all.",
    )
    title: str = Field(description="The HTTP status' phrase, e.g. `Not Found`.")
    status: int = Field(ge=400, le=599, description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this request, readable.")
    instance: str | None = Field(default=None, description="The path of the request.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="A 422's invalid fields: `loc`, `msg`, `type` each."
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "no run 'r-1'",
                    "instance": "/runs/r-1",
                }
            ]
        }
    }


ErrorBody = Problem
"""The former name of :class:`Problem` (its ``detail`` is unchanged)."""


def problem_of(
    status_code: int,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> Problem:
    """The :class:`Problem` of an error: its title is the status' phrase."""
    try:
        title = HTTPStatus(status_code).phrase
    except ValueError:
        title = "Error"
    return Problem(title=title, status=status_code, detail=detail, instance=instance, errors=errors)


def problem_response(
    status_code: int,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    """The ``application/problem+json`` response of an error."""
    body = problem_of(status_code, detail, instance=instance, errors=errors)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status_code,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


def problems(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """A route's own error responses for its OpenAPI ``responses``, each a :class:`Problem`:
    ``problems(404, 409)`` with the standard phrases, or described:
    ``problems(**{"404": "No such run"})``."""
    described = {int(code): text for code, text in descriptions.items()}
    for code in statuses:
        described.setdefault(code, HTTPStatus(code).phrase)
    return {
        code: {
            "model": Problem,
            "description": text,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for code, text in sorted(described.items())
    }


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
    response = problem_response(status_code, detail, headers=headers)
    await send(
        {"type": "http.response.start", "status": status_code, "headers": response.raw_headers}
    )
    await send({"type": "http.response.body", "body": response.body})


Authorized = Annotated[None, Depends(require_token)]
"""Add ``_: Authorized`` to a route to require the bearer token."""

ReadAuthorized = Annotated[None, Depends(require_read_token)]
"""Add ``_: ReadAuthorized`` to a read of sensitive data: the API or the read-only token."""


def accepted(
    description: str, model: type[BaseModel] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A long-running POST's ``202`` in OpenAPI: the job resource (``model``, when it is not
    the route's own response model), with its ``Location``."""
    return {
        202: {
            **({"model": model} if model is not None else {}),
            "description": description,
            "headers": {
                "Location": {
                    "description": "The job's URL: poll it until it has finished.",
                    "schema": {"type": "string"},
                }
            },
        }
    }


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = problems(
    **{
        "401": "Missing or invalid bearer token",
        "413": "The request body is larger than the route's limit",
        "422": "The request is invalid; `detail` says why, `errors` which fields",
        "500": "An unexpected error (a bug); `detail` names it",
        "503": "The service is starting or a dependency is unreachable; retry (`Retry-After`)",
    }
)
"""The errors :func:`declare_problems` adds to the operations that can answer them."""


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
    """Render every error as a :class:`Problem` (``application/problem+json``)."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable(list(exc.errors()))
        return problem_response(422, _readable(errors), instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem_response(
            exc.status_code, detail, instance=request.url.path, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(
            500, f"internal error: {type(exc).__name__}", instance=request.url.path
        )


def _problem_ref() -> dict[str, Any]:
    return {"schema": {"$ref": "#/components/schemas/Problem"}}


ERROR_SCHEMAS = ("Problem", "ErrorBody", "HTTPValidationError")


def _is_error_body(response: dict[str, Any]) -> bool:
    """A response declared without a body or with an error model (not e.g. /readyz's 503,
    whose body is the readiness report)."""
    refs = [
        str(media.get("schema", {}).get("$ref", "Problem"))
        for media in response.get("content", {}).values()
    ]
    return all(ref.rsplit("/", 1)[-1] in ERROR_SCHEMAS for ref in refs)


def declare_problems(document: dict[str, Any], *, starting: bool) -> dict[str, Any]:
    """Declare in an OpenAPI ``document`` the errors each operation can answer, all as
    :class:`Problem` under ``application/problem+json``: 401 and 413 where the bearer token
    is needed, 422 where there are parameters or a body, 503 (while ``starting``; not for
    the ops routes) and 500 everywhere; a route's own errors (:func:`problems`) are kept."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            wanted = {"500"}
            if operation.get("security") or method.upper() in MUTATING_METHODS:
                wanted |= {"401"}
            if method.upper() in MUTATING_METHODS:
                wanted |= {"413"}
            if operation.get("parameters") or operation.get("requestBody"):
                wanted |= {"422"}
            if starting and path not in OPS_PATHS:
                wanted |= {"503"}
            for code in wanted:
                responses.setdefault(
                    code, {"description": ERROR_RESPONSES[int(code)]["description"]}
                )
            for code, response in responses.items():
                if code.isdigit() and int(code) >= 400 and _is_error_body(response):
                    response["content"] = {PROBLEM_MEDIA_TYPE: _problem_ref()}
    for unused in ("HTTPValidationError", "ValidationError", "ErrorBody"):
        schemas.pop(unused, None)
    return document


OPS_TAG = {"name": "ops", "description": "Health, readiness and Prometheus metrics."}


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
    tags: Sequence[Mapping[str, str]] = (),
) -> FastAPI:
    """A FastAPI app with `/healthz`, `/readyz`, `/metrics`, auth and JSON errors.

    ``start`` runs when the app starts and is retried until it succeeds (:class:`Startup`);
    ``stop`` runs at shutdown if it did. ``lifespan`` wraps both. ``body_limits``: routes
    (by path) whose bodies may be larger than ``settings.max_body_bytes``. ``tags``: the
    service's OpenAPI tags, each with a ``description`` (``ops`` is added)."""
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
        openapi_tags=[dict(tag) for tag in tags] + [OPS_TAG],
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            app.openapi_schema = declare_problems(document, starting=startup is not None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
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
            return problem_response(
                503, startup.waiting, instance=request.url.path, headers={"Retry-After": "5"}
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
