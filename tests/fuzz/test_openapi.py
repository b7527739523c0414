"""Fuzz every service's REST API from its own OpenAPI document (schemathesis).

For each operation schemathesis sends the schema's examples, boundary values (the
coverage phase) and random valid and invalid requests (the fuzzing phase), and every
response must hold:

- no 5xx (``not_a_server_error``);
- a declared response matches its schema and content type;
- every 4xx is JSON with a non-empty, human-readable ``detail``;
- without the bearer token a mutating operation never succeeds.

Each service is fuzzed twice: anonymously (only its mutating operations, which must
refuse) and with the token (every operation, past the auth check).
"""

from __future__ import annotations

import base64
import os
from collections import defaultdict
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, CheckContext, HookContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.fuzz.checks import error_has_message, json_of, refused_without_token
from tests.fuzz.conftest import RESPONSES, TOKEN, Services, openapi_documents

pytestmark = [
    pytest.mark.integration,
    # schemathesis' own strategies trip it; nothing in this folder uses `random`
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

MUTATING = ("POST", "PUT", "PATCH", "DELETE")
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ISSUED: defaultdict[str, set[str]] = defaultdict(set)
"""Ids of what each service created during the fuzzing (runs, replay jobs, loads)."""

FUZZ = settings(
    # Random requests per operation and phase; FUZZ_MAX_EXAMPLES=120 digs deeper.
    max_examples=int(os.environ.get("FUZZ_MAX_EXAMPLES", "15")),
    # The same requests on every run, so CI is stable; FUZZ_RANDOM=1 for new ones each run.
    derandomize=os.environ.get("FUZZ_RANDOM", "") != "1",
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def service_of_operation(operation: APIOperation) -> str:
    """The service whose OpenAPI document has this operation (its title, as a name)."""
    return str(operation.schema.raw_schema["info"]["title"]).replace("-", "_")


def service_of(case: Case) -> str:
    return service_of_operation(case.operation)


def tally(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Count the response (the session's summary shows what the fuzzing reached) and keep
    the ids of what a service created or lists, for later cases to address."""
    service = service_of(case)
    RESPONSES[(service, case.operation.label, response.status_code)] += 1
    if 200 <= response.status_code < 300:
        body = json_of(response)
        for item in body if isinstance(body, list) else [body]:
            issued = item.get("id", item.get("run_id")) if isinstance(item, dict) else None
            if isinstance(issued, str):
                ISSUED[service].add(issued)
    return None


CHECKS = [tally, not_a_server_error, response_schema_conformance, content_type_conformance]


def _existing_topic(ctx: HookContext, body: Any) -> Any:
    """A simulator run or replay goes to the folder's events topic, not a random name.

    An unknown topic costs the simulator a 5 s metadata wait per request (its 422 is
    covered by tests/integration/sensor_simulator); every other field is fuzzed.
    """
    if isinstance(body, dict) and isinstance(body.get("topic"), str):
        return {**body, "topic": None}
    return body


def _issued_ids(ctx: HookContext, path_parameters: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """``{…_id}`` path parameters: the generated value, or an id the service issued.

    Random ids only ever reach the 404 branch; the issued ones (runs, replay jobs,
    loads) let the fuzzing reach reads, changes and stops of things that exist.
    """
    names = [name for name in path_parameters or () if name.endswith("_id")]
    assert ctx.operation is not None
    issued = sorted(ISSUED[service_of_operation(ctx.operation)])
    if not path_parameters or not names or not issued:
        return st.just(path_parameters)
    return st.sampled_from([None, *issued]).map(
        lambda id_: path_parameters if id_ is None else path_parameters | dict.fromkeys(names, id_)
    )


def _cursor(document: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(document)).rstrip(b"=").decode()


HOSTILE_QUERY: dict[str, list[Any]] = {
    # cursors the DLQ inspector never issued, shaped like its own (base64url JSON)
    "cursor": [
        _cursor({"v": 1, "p": [[0, 1e30]]}),
        _cursor({"v": 1, "p": [[0, 2**63]]}),
        _cursor({"v": 1, "p": [[True, 0]]}),
        _cursor({"v": 1, "p": [[-1, 5]]}),
        _cursor({"v": 2, "p": []}),
        _cursor([[0, 1]]),
        _cursor({"v": 1, "p": [[0]]}),
        "\u2603" * 50,
    ],
    # times at the ends of the calendar, once in UTC
    "since": ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"],
    "until": ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"],
}
HOSTILE_WINDOWS = [
    "9999-12-31T23:00:00-01:00--9999-12-31T23:30:00-01:00",  # past year 9999 in UTC
    "0001-01-01T00:00:00+01:00--0001-01-01T02:00:00+01:00",
    "2026-01-01T00:00:00Z--2027-01-01T00:00:00Z",  # a year at once
    "2026-01-02T00:00:00Z--2026-01-01T00:00:00Z",  # backwards
    "9999-12-31",
]


def _hostile_query(ctx: HookContext, query: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """Query parameters: the generated ones, or one of them swapped for a crafted value
    (a forged cursor, a time past year 9999) that once gave a 500."""
    names = [name for name in query or () if name in HOSTILE_QUERY]
    if not query or not names:
        return st.just(query)
    swaps = [(name, value) for name in names for value in HOSTILE_QUERY[name]]
    return st.sampled_from([None, *swaps]).map(
        lambda swap: query if swap is None else query | {swap[0]: swap[1]}
    )


def _hostile_window(ctx: HookContext, body: Any) -> st.SearchStrategy[Any]:
    """A body with a window (the gate's runs): the generated one, or a crafted window."""
    if not isinstance(body, dict) or not isinstance(body.get("window"), str):
        return st.just(body)
    return st.sampled_from([None, *HOSTILE_WINDOWS]).map(
        lambda window: body if window is None else body | {"window": window}
    )


def _schemas() -> dict[str, OpenApiSchema]:
    schemas = {
        name: schemathesis.openapi.from_dict(document)
        for name, document in openapi_documents().items()
    }
    for schema in schemas.values():
        schema.hook("flatmap_path_parameters")(_issued_ids)
        schema.hook("flatmap_query")(_hostile_query)
    schemas["sensor_simulator"].hook("map_body")(_existing_topic)
    schemas["quality_gate"].hook("flatmap_body")(_hostile_window)
    return schemas


SCHEMAS = _schemas()


@schemathesis.pytest.parametrize(
    **{name: s.include(method=list(MUTATING)) for name, s in SCHEMAS.items()}
)
@FUZZ
def test_anonymous_requests_are_refused(case: Case, services: Services) -> None:
    case.call_and_validate(
        base_url=services.url(service_of(case)),
        checks=[*CHECKS, error_has_message, refused_without_token],
        timeout=30,
    )


@schemathesis.pytest.parametrize(**SCHEMAS)
@FUZZ
def test_authenticated_requests(case: Case, services: Services) -> None:
    case.call_and_validate(
        base_url=services.url(service_of(case)),
        headers=AUTH,
        checks=[*CHECKS, error_has_message],
        timeout=30,
    )


def operations(schema: OpenApiSchema) -> list[APIOperation]:
    """Every operation of a schema (the documents are the services' own: each one parses)."""
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


MUTATING_OPERATIONS = [
    (name, operation.method.upper(), operation.path)
    for name, schema in SCHEMAS.items()
    for operation in operations(schema)
    if operation.method.upper() in MUTATING
]


@pytest.mark.parametrize(("service", "method", "path"), MUTATING_OPERATIONS)
def test_large_bodies_are_refused_before_they_are_read(
    service: str, method: str, path: str, services: Services
) -> None:
    """Every mutating operation, with a body over its service's 1 MiB limit (the
    simulator's CSV upload has its own): 413 with a message, the token or not (401 first)."""
    url = services.url(service) + path.replace("{", "").replace("}", "")
    body = b"{" + b" " * (80 * 1024 * 1024) + b"}"
    headers = {"Content-Type": "application/json"}
    with httpx.Client(timeout=30) as client:
        anonymous = client.request(method, url, content=body, headers=headers)
        assert anonymous.status_code == 401, anonymous.text
        authorized = client.request(method, url, content=body, headers={**headers, **AUTH})
        assert authorized.status_code == 413, authorized.text
        assert "larger than this route's limit" in authorized.json()["detail"]


CRAFTED_QUERIES = [
    (name, operation.path, parameter, value)
    for name, schema in SCHEMAS.items()
    for operation in operations(schema)
    if operation.method.upper() == "GET" and "{" not in operation.path
    for parameter in (p.name for p in operation.query)
    for value in HOSTILE_QUERY.get(parameter, [])
]


@pytest.mark.parametrize(("service", "path", "parameter", "value"), CRAFTED_QUERIES)
def test_crafted_query_values_get_a_4xx_with_a_message(
    service: str, path: str, parameter: str, value: str, services: Services
) -> None:
    """Each crafted value that once gave a 500, on every operation that takes it, every run
    (the fuzzing phase above draws them too, but only now and then): a forged cursor is
    refused with a message; a time at the calendar's end is a query like any other."""
    response = httpx.get(
        services.url(service) + path, params={parameter: value}, headers=AUTH, timeout=30
    )
    if parameter == "cursor":
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        assert response.json()["detail"], response.text
    else:
        assert response.status_code in (200, 422), (response.status_code, response.text)


@pytest.mark.parametrize("window", HOSTILE_WINDOWS)
def test_crafted_windows_get_a_4xx_with_a_message(window: str, services: Services) -> None:
    response = httpx.post(
        services.url("quality_gate") + "/runs",
        json={"layer": "gold", "window": window},
        headers=AUTH,
        timeout=60,
    )
    assert response.status_code == 422, (response.status_code, response.text)
    assert response.json()["detail"], response.text
