"""The fuzzing's own checks fail where they should (a small app, no infrastructure)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.testclient import TestClient
from schemathesis.core.failures import FailureGroup

from tests.fuzz.checks import error_has_message, refused_without_token

app = FastAPI()


@app.get("/plain")
def plain() -> PlainTextResponse:
    return PlainTextResponse("bad request", status_code=400)


@app.get("/blank")
def blank() -> JSONResponse:
    return JSONResponse({"detail": " "}, status_code=404)


@app.get("/listed")
def listed() -> JSONResponse:
    return JSONResponse({"detail": [{"msg": "a list, not a message"}]}, status_code=422)


@app.get("/explained")
def explained() -> JSONResponse:
    return JSONResponse({"detail": "no run 'x'"}, status_code=404)


@app.post("/open")
def open_door() -> dict[str, bool]:
    return {"changed": True}


SCHEMA = schemathesis.openapi.from_dict(app.openapi())
CLIENT = TestClient(app)


def check(method: str, path: str, *checks: schemathesis.CheckFunction) -> None:
    case = SCHEMA[path][method].Case()
    response = CLIENT.request(method, path)
    case.validate_response(response, checks=list(checks))


@pytest.mark.parametrize("path", ["/plain", "/blank", "/listed"])
def test_a_4xx_without_a_readable_detail_fails(path: str) -> None:
    with pytest.raises((FailureGroup, AssertionError), match="readable `detail`"):
        check("GET", path, error_has_message)


def test_a_4xx_with_a_detail_passes() -> None:
    check("GET", "/explained", error_has_message)


def test_an_anonymous_change_that_succeeds_fails() -> None:
    with pytest.raises((FailureGroup, AssertionError), match="without the token"):
        check("POST", "/open", refused_without_token)
