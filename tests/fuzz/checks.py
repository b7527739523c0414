"""The fuzzing's own response checks (next to schemathesis' built-in ones)."""

from __future__ import annotations

from typing import Any

from schemathesis import Case, CheckContext, Response


def json_of(response: Response) -> Any:
    """The response's JSON, or None if it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def error_has_message(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx says why: a JSON object with a non-empty string ``detail``."""
    if not 400 <= response.status_code < 500:
        return None
    body = json_of(response)
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str) or not detail.strip():
        raise AssertionError(
            f"{response.status_code} without a readable `detail`: {response.text[:200]!r}"
        )
    return True


def refused_without_token(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A mutating request without the token changes nothing: it is never a 2xx/3xx."""
    if response.status_code < 400:
        raise AssertionError(
            f"{case.method} {case.path} succeeded ({response.status_code}) without the token"
        )
    return True
