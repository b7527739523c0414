"""Client of the quality gate: may this layer's window be loaded?

The quality gate (service ``quality-gate``) validates a slice of the lake with
Great Expectations and answers ``GET /gates/{layer}/{window}`` with a verdict.
The warehouse loader and the orchestrator ask it before they move data on::

    verdict = await gate_verdict("http://quality-gate:8000", Layer.GOLD, window)
    if not verdict.passed:
        ...  # refuse to load; verdict.failed_expectations says why

The orchestrator asks for a run first, with the gate's token (:func:`run_gate`): a job
(``POST /runs`` answers ``202`` and the job's ``Location``), followed to its end
(:func:`iotpipe.jobs.submit`). An older gate's synchronous ``201`` answer is taken as well.

``unknown`` means no run covers the window yet: treat it as "not yet", not as "pass".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from urllib.parse import quote

import httpx
from pydantic import BaseModel, Field, computed_field
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from iotpipe.jobs import JobError, submit
from iotpipe.windows import END_DOC, START_DOC, Window, window_params


class Layer(StrEnum):
    """The lake layers that have a quality suite."""

    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    """No run covers the window (yet)."""


class GateVerdict(BaseModel):
    """The gate's answer for one layer and window (the body of ``GET /gates/{layer}/{window}``)."""

    layer: Layer
    window: str = Field(
        description="Deprecated: the window asked about as `iotpipe.windows.Window` text; "
        "read `window_start`/`window_end`.",
        json_schema_extra={"deprecated": True},
    )
    verdict: Verdict
    run_id: str | None = Field(
        default=None, description="The run the verdict comes from (null when unknown)."
    )
    pass_rate: float | None = Field(
        default=None, ge=0, le=1, description="Share of the suite's expectations that passed."
    )
    failed_expectations: list[str] = Field(
        default_factory=list, description="Names of the expectations that failed in that run."
    )
    checked_at: datetime | None = Field(
        default=None, description="When that run finished (UTC); null when unknown."
    )
    data_fingerprints: dict[str, str] = Field(
        default_factory=dict,
        description="What that run validated: per partition folder of the layer, the digest of "
        "its files (iotpipe.lakefs.fingerprints). A reader about to move the data compares it "
        "with the files there now: a partition rewritten since was not checked.",
    )

    @computed_field(description=START_DOC)  # type: ignore[prop-decorator]
    @property
    def window_start(self) -> datetime:
        return Window.parse(self.window).start

    @computed_field(description=END_DOC)  # type: ignore[prop-decorator]
    @property
    def window_end(self) -> datetime:
        return Window.parse(self.window).end

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS


class GateError(RuntimeError):
    """The gate refused the question (4xx) or could not be reached after retries."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500


Send = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]
"""One exchange with the gate: ``send(client, url)`` returns its (final) response."""


async def _request(
    base_url: str,
    path: str,
    send: Send,
    *,
    client: httpx.AsyncClient | None,
    timeout_s: float,
    attempts: int,
) -> httpx.Response:
    """One call to the gate: 5xx and transport errors retried, 4xx and giving up raise."""
    url = base_url.rstrip("/") + path
    owned = client is None
    http = client or httpx.AsyncClient(timeout=timeout_s)
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception(_retryable),
            reraise=True,
        ):
            with attempt:
                response = await send(http, url)
                if 400 <= response.status_code < 500:
                    raise GateError(
                        f"quality gate refused {response.request.method} {url}: "
                        f"{response.status_code} {_detail(response)}"
                    )
                response.raise_for_status()
                return response
    except (httpx.TransportError, httpx.HTTPStatusError) as exc:
        raise GateError(f"quality gate at {base_url} unavailable: {exc}") from exc
    except JobError as exc:
        raise GateError(f"quality gate at {base_url}: {exc}") from exc
    finally:
        if owned:
            await http.aclose()
    raise AssertionError("unreachable")  # pragma: no cover - AsyncRetrying reraises


async def gate_verdict(
    base_url: str,
    layer: Layer | str,
    window: Window | str,
    *,
    client: httpx.AsyncClient | None = None,
    timeout_s: float = 10.0,
    attempts: int = 3,
) -> GateVerdict:
    """Ask the gate at ``base_url`` for the verdict on ``layer`` over ``window``.

    Transport errors and 5xx are retried with backoff (``attempts`` in all);
    a 4xx (unknown layer, malformed window) raises :class:`GateError` with the
    gate's message at once.
    """
    parsed = _parsed(window)
    path = f"/gates/{quote(str(Layer(layer)), safe='')}"
    params = window_params(parsed)
    response = await _request(
        base_url,
        path,
        lambda http, url: http.get(url, params=params, timeout=timeout_s),
        client=client,
        timeout_s=timeout_s,
        attempts=attempts,
    )
    return GateVerdict.model_validate_json(response.content)


async def run_gate(
    base_url: str,
    token: str,
    layer: Layer | str,
    window: Window | str,
    *,
    client: httpx.AsyncClient | None = None,
    timeout_s: float = 900.0,
    attempts: int = 1,
) -> GateVerdict:
    """Have the gate validate ``layer`` over ``window`` now (``POST /runs``, needs the
    gate's token) and return the verdict of that run. A run takes seconds on pandas and
    minutes on Spark, so it is a job, followed until it has finished: ``timeout_s`` is the
    deadline of the whole (the POST and the polls). A failed job raises :class:`GateError`
    with its problem's detail, as the synchronous form's error did."""
    body = {"layer": str(Layer(layer)), **window_params(_parsed(window))}
    headers = {"Authorization": f"Bearer {token}"}
    response = await _request(
        base_url,
        "/runs",
        lambda http, url: submit(url, json=body, headers=headers, timeout_s=timeout_s, client=http),
        client=client,
        timeout_s=timeout_s,
        attempts=attempts,
    )
    run = response.json()
    return GateVerdict(
        layer=run["layer"],
        window=run["window"],
        verdict=run["verdict"],
        run_id=run["run_id"],
        pass_rate=run["pass_rate"],
        failed_expectations=run["failed_expectations"],
        checked_at=run["finished_at"],
        data_fingerprints=run.get("data_fingerprints") or {},
    )


def _parsed(window: Window | str) -> Window:
    try:
        return window if isinstance(window, Window) else Window.parse(window)
    except ValueError as exc:
        raise GateError(str(exc)) from None


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text
