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

import os
from collections import defaultdict
from typing import Any

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


def _schemas() -> dict[str, OpenApiSchema]:
    schemas = {
        name: schemathesis.openapi.from_dict(document)
        for name, document in openapi_documents().items()
    }
    for schema in schemas.values():
        schema.hook("flatmap_path_parameters")(_issued_ids)
    schemas["sensor_simulator"].hook("map_body")(_existing_topic)
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
