"""Prometheus helpers shared by the services.

Metrics are module-level objects in the default registry, defined once where
they are updated. This module holds the ones every service has (HTTP traffic,
build info) and the ASGI middleware that records them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Histogram,
    Info,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

BUILD_INFO = Info("iotpipe_build", "Service name (service_name) and version")

SERVICE_LABEL = "service_name"
"""The label that names the service on its own metrics. Not ``service``: Prometheus'
Kubernetes discovery (a ServiceMonitor) sets that target label to the Service's name, and
the scrape would rename ours to ``exported_service``, emptying every per-service query."""

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests handled", [SERVICE_LABEL, "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    [SERVICE_LABEL, "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def route_template(request: Request) -> str:
    """The matched route's path template, so that label values stay bounded."""
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"


def http_metrics_middleware(
    service: str,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = route_template(request)
            HTTP_REQUESTS.labels(service, request.method, route, str(status)).inc()
            HTTP_LATENCY.labels(service, request.method, route).observe(
                time.perf_counter() - started
            )

    return middleware


def metrics_response() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
