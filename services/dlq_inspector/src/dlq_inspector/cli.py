"""``dlq-inspector``: serve the API, or use it from a terminal (list, show, stats, replay)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from iotpipe.contract import ErrorType
from iotpipe.output import Output, OutputOption, fields_table, print_json, stderr

app = typer.Typer(
    help="DLQ inspector: list, inspect and replay dead-lettered sensor events.",
    no_args_is_help=True,
)
console = Console()

Url = Annotated[str, typer.Option(envvar="DLQ_URL", help="Base URL of the dlq-inspector service.")]
Token = Annotated[
    str | None,
    typer.Option(
        envvar="DLQ_API_TOKEN",
        help="Bearer token: the API token (replay) or the read-only one (show).",
        show_default=False,
    ),
]
ErrorTypes = Annotated[
    list[ErrorType] | None, typer.Option("--error-type", "-e", help="Any of these error types.")
]
SensorId = Annotated[str | None, typer.Option("--sensor-id", "-s", help="Only this sensor.")]
Since = Annotated[str | None, typer.Option(help="Dead-lettered at or after (ISO-8601 with zone).")]
Until = Annotated[str | None, typer.Option(help="Dead-lettered before (ISO-8601 with zone).")]
DEFAULT_URL = "http://127.0.0.1:8000"


def _client(url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=120.0)


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {client.base_url}: {exc}[/red]")
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        console.print(f"[red]{response.status_code}: {detail}[/red]")
        raise typer.Exit(1)
    return response.json()


@app.command()
def serve() -> None:
    """Run the service (same as `python -m dlq_inspector`; settings from DLQ_* / KAFKA_*)."""
    from dlq_inspector.__main__ import main

    main()


@app.command("list")
def list_(
    url: Url = DEFAULT_URL,
    error_type: ErrorTypes = None,
    sensor_id: SensorId = None,
    since: Since = None,
    until: Until = None,
    replayed: Annotated[
        bool | None, typer.Option("--replayed/--unresolved", help="Only one kind.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Messages per page.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue from a printed cursor.")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """List dead letters, oldest first; prints the cursor of the next page (with --output
    json: the page as the API returns it, items and next_cursor)."""
    params: dict[str, Any] = {
        "error_type": [t.value for t in error_type or []],
        "sensor_id": sensor_id,
        "window_start": since,
        "window_end": until,
        "replayed": replayed,
        "limit": limit,
        "cursor": cursor,
    }
    with _client(url) as client:
        page = _call(
            client,
            "GET",
            "/dlq/messages",
            params={k: v for k, v in params.items() if v is not None},
        )
    if output is Output.JSON:
        print_json(page)
        return
    table = Table("id", "dead-lettered at", "error type", "sensor", "detail", "replayed")
    for item in page["items"]:
        table.add_row(
            item["id"],
            item["dead_lettered_at"],
            item["error_type"],
            item["sensor_id"] or "-",
            item["error_detail"][:80],
            item["replayed"]["replay_id"][:8] if item["replayed"] else "",
        )
    console.print(table)
    more = "more after this page" if page["has_more"] else "end for now"
    console.print(f"{more}; next page: --cursor {page['next_cursor']}")


@app.command()
def show(
    partition: int,
    offset: int,
    url: Url = DEFAULT_URL,
    token: Token = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Show one dead letter: error, source coordinates and its bytes (needs a token)."""
    with _client(url, token) as client:
        message = _call(client, "GET", f"/dlq/messages/{partition}/{offset}")
    if output is Output.JSON:
        print_json(message)
        return
    console.print_json(json.dumps(message))


@app.command()
def stats(url: Url = DEFAULT_URL, output: OutputOption = Output.TABLE) -> None:
    """Counts by error type, oldest/newest, recent rate (--output json: as GET /dlq/stats)."""
    with _client(url) as client:
        found = _call(client, "GET", "/dlq/stats")
    if output is Output.JSON:
        print_json(found)
        return
    by_type = found.pop("by_error_type", {})
    console.print(fields_table("dead letters", found))
    table = Table("error type", "total", "unresolved", title="by error type")
    for kind, counts in sorted(by_type.items()):
        table.add_row(kind, f"{counts['total']:,}", f"{counts['unresolved']:,}")
    console.print(table)


@app.command()
def replay(
    ids: Annotated[
        list[str] | None, typer.Argument(help="Message ids `<partition>:<offset>` (or a filter).")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    error_type: ErrorTypes = None,
    sensor_id: SensorId = None,
    since: Since = None,
    until: Until = None,
    patch: Annotated[
        str | None, typer.Option(help='JSON merge patch for every message, e.g. \'{"unit":"g"}\'.')
    ] = None,
    patch_file: Annotated[
        Path | None,
        typer.Option(help="JSON file: {message id: merge patch} for per-message patches."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate and show; send nothing.")] = False,
    force: Annotated[bool, typer.Option(help="Replay already-replayed messages again.")] = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """Replay dead letters to the events topic, with a progress bar; prints what was refused
    (--output json: the finished job as GET /dlq/replays/{id} returns it; the bar on stderr)."""
    if not token:
        console.print("[red]replay needs the API token: --token or DLQ_API_TOKEN[/red]")
        raise typer.Exit(2)
    body: dict[str, Any] = {"dry_run": dry_run, "force": force, "background": True}
    if ids:
        body["ids"] = ids
    else:
        flt = {"error_type": [t.value for t in error_type or []], "sensor_id": sensor_id}
        flt |= {"window_start": since, "window_end": until}
        body["filter"] = {k: v for k, v in flt.items() if v}
    try:
        if patch:
            body["patch"] = json.loads(patch)
        if patch_file:
            body["patches"] = json.loads(patch_file.read_text())
    except (ValueError, OSError) as exc:
        console.print(f"[red]patch: {exc}[/red]")
        raise typer.Exit(2) from None
    with _client(url, token) as client:
        job = _call(client, "POST", "/dlq/replay", json=body)
        columns = (
            TextColumn("replay {task.fields[job]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        bar = stderr if output is Output.JSON else console
        with Progress(*columns, console=bar) as progress:
            task = progress.add_task("replay", total=job["total"] or None, job=job["id"][:8])
            while job["status"] in ("pending", "running"):
                progress.update(task, total=job["total"] or None, completed=job["processed"])
                time.sleep(0.5)
                job = _call(client, "GET", f"/dlq/replays/{job['id']}?results=false")
            job = _call(client, "GET", f"/dlq/replays/{job['id']}")
            progress.update(task, total=job["total"], completed=job["processed"])
    if output is Output.JSON:
        print_json(job)
    else:
        _report(job)
    if job["status"] != "succeeded":
        raise typer.Exit(1)


def _report(job: dict[str, Any]) -> None:
    counts = Table("result", "messages", title=f"replay {job['id']} ({job['status']})")
    for outcome, count in job["counts"].items():
        if count:
            counts.add_row(outcome, f"{count:,}")
    console.print(counts)
    if job.get("error"):
        console.print(f"[red]{job['error']}[/red]")
    problems = [r for r in job["results"] if r["result"] not in ("replayed", "would_replay")]
    if problems:
        table = Table("id", "result", "reason", title="not replayed")
        for result in problems:
            table.add_row(result["id"], result["result"], result["reason"] or "")
        console.print(table)
    if job["results_truncated"]:
        console.print("(results truncated: the service keeps the first ones; counts are exact)")


if __name__ == "__main__":
    app()
