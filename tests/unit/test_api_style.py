"""One API style across the four services, checked on each one's OpenAPI document
(docs/api-style.md): problem+json errors on every operation, one page envelope for every
list, one window shape, tags with descriptions, long work as 202 + Location."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from dlq_inspector.app import build_app as build_dlq_inspector
from dlq_inspector.settings import DlqSettings
from quality_gate.app import build_app as build_quality_gate
from quality_gate.settings import GateSettings
from sensor_simulator.api import build_app as build_simulator
from sensor_simulator.config import SimulatorSettings
from warehouse_loader.app import build_app as build_loader
from warehouse_loader.settings import LoaderSettings

TOKEN = "api-style-test-token-0123456789"
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
SERVICES = ("sensor_simulator", "dlq_inspector", "quality_gate", "warehouse_loader")
LISTS = {
    "sensor_simulator": ["/runs"],
    "dlq_inspector": ["/dlq/messages", "/dlq/replays"],
    "quality_gate": ["/runs"],
    "warehouse_loader": ["/loads"],
}
LONG_RUNNING = {
    "dlq_inspector": ["/dlq/replay"],
    "quality_gate": ["/runs"],
    "warehouse_loader": ["/loads"],
}
"""POSTs whose work can take long: they must answer 202 with a Location (a job to poll)."""
OLD_WINDOW_NAMES = {"window", "since", "until"}
READINESS = ("/readyz", "get", "503")
"""Its 503 body is the readiness report probes read, not a problem."""


@cache
def document(service: str) -> dict[str, Any]:
    common: dict[str, Any] = {"api_token": TOKEN}
    if service == "sensor_simulator":
        app = build_simulator(SimulatorSettings(**common))
    elif service == "dlq_inspector":
        app = build_dlq_inspector(DlqSettings(**common))
    elif service == "quality_gate":
        app = build_quality_gate(GateSettings(**common))
    else:
        dsn = "postgresql://unused@localhost/unused"
        app = build_loader(LoaderSettings(**common, warehouse_dsn=dsn))
    return app.openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def schema_of(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_is_a_declared_problem(service: str) -> None:
    doc = document(service)
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance"} <= set(problem["properties"])
    for path, method, op in operations(doc):
        codes = {c for c in op["responses"] if c.isdigit() and int(c) >= 400}
        assert "500" in codes, (path, method)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in codes, (path, method)
        if method != "get":
            assert {"401", "413"} <= codes, (path, method)
        for code in codes:
            if (path, method, code) != READINESS:
                assert op["responses"][code]["content"] == PROBLEM, (path, method, code)
    assert "HTTPValidationError" not in doc["components"]["schemas"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_app_has_tags_with_descriptions(service: str) -> None:
    doc = document(service)
    declared = {tag["name"]: tag.get("description") for tag in doc["tags"]}
    assert all(declared.values()), declared
    for path, method, op in operations(doc):
        assert op.get("tags"), (path, method)
        assert set(op["tags"]) <= set(declared), (path, method)


@pytest.mark.parametrize("service", SERVICES)
def test_every_list_is_the_page_envelope(service: str) -> None:
    doc = document(service)
    for path in LISTS[service]:
        op = doc["paths"][path]["get"]
        params = {p["name"] for p in op["parameters"]}
        assert {"limit", "cursor"} <= params, path
        body = op["responses"]["200"]["content"]["application/json"]["schema"]
        page = schema_of(doc, body)
        assert page.get("type") == "object", path
        assert {"items", "next_cursor", "has_more"} <= set(page["properties"]), path
        assert page["properties"]["items"]["type"] == "array", path
    for path, method, op in operations(doc):  # no other list answers a bare array
        for media in op["responses"].get("200", {}).get("content", {}).values():
            assert schema_of(doc, media.get("schema", {})).get("type") != "array", (path, method)


@pytest.mark.parametrize("service", SERVICES)
def test_windows_have_one_shape(service: str) -> None:
    """`window_start`/`window_end`; the old names only where marked deprecated."""
    doc = document(service)
    for path, method, op in operations(doc):
        names = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        for old in OLD_WINDOW_NAMES & set(names):
            assert names[old].get("deprecated") or op.get("deprecated"), (path, method, old)
        if {"window_start", "window_end"} & set(names):
            assert {"window_start", "window_end"} <= set(names), (path, method)
        if "{window}" in path:
            assert op.get("deprecated"), (path, method)
    for name, schema in doc["components"]["schemas"].items():
        props = schema.get("properties", {})
        for old in OLD_WINDOW_NAMES & set(props):
            assert props[old].get("deprecated"), (name, old)
        if {"window_start", "window_end"} & set(props):
            assert {"window_start", "window_end"} <= set(props), name


@pytest.mark.parametrize(
    ("service", "path"), [(s, p) for s, paths in LONG_RUNNING.items() for p in paths]
)
def test_long_work_is_202_with_a_location(service: str, path: str) -> None:
    doc = document(service)
    op = doc["paths"][path]["post"]
    accepted = op["responses"].get("202")
    assert accepted is not None, path
    assert "Location" in accepted.get("headers", {}), path
    if service == "dlq_inspector":
        return  # its job is polled at /dlq/replays/{id} (and small replays answer 200 inline)
    job = schema_of(doc, accepted["content"]["application/json"]["schema"])
    assert {"id", "status", "location", "result", "problem"} <= set(job["properties"]), path
    status = schema_of(doc, job["properties"]["status"])
    assert set(status["enum"]) == {"queued", "running", "succeeded", "failed"}
    assert op["responses"]["201"]["description"].startswith("Deprecated"), path
    assert "prefer" in {p["name"].lower() for p in op["parameters"] if p["in"] == "header"}
    poll = doc["paths"]["/jobs/{job_id}"]["get"]
    assert (
        poll["responses"]["200"]["content"]["application/json"]["schema"]
        == (accepted["content"]["application/json"]["schema"])
    )
    assert "404" in poll["responses"]
