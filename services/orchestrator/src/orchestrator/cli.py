"""``orchestrator``: the daily run, backfills, the reconcile of windows late data changed and
the freshness check (the chart's CronJobs).

Exit status 0 when the run succeeded, 1 when it failed (the webhook and the Pushgateway
have been told), 2 for bad arguments or configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from iotpipe.lake import Lake
from iotpipe.logging import configure_logging
from iotpipe.output import Output, OutputOption, print_json
from iotpipe.settings import ContractSettings, from_environment
from iotpipe.windows import Window
from orchestrator import freshness
from orchestrator.deadlines import StepDeadlines
from orchestrator.metrics import push_run, push_steps
from orchestrator.notify import notify
from orchestrator.pipeline import Orchestrator, StepFailed, WindowResult
from orchestrator.settings import OrchestratorSettings
from orchestrator.sparkapps import SparkApps, api_client

app = typer.Typer(
    help="Kubernetes-native orchestration of the medallion: SparkApplications, the quality "
    "gate and the warehouse loader (ORCHESTRATOR_* and LAKE_ROOT from the environment).",
    no_args_is_help=True,
)
console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("orchestrator")


def _settings() -> OrchestratorSettings:
    settings = from_environment(OrchestratorSettings)  # tokens from the env; exit 2 without
    configure_logging(settings.log_level, json=settings.log_json, service="orchestrator")
    return settings


@contextmanager
def _orchestrator(
    settings: OrchestratorSettings,
    progress: Progress | None = None,
    on_step_done: Callable[[str], None] | None = None,
) -> Iterator[Orchestrator]:
    with api_client(settings.kubeconfig) as api:
        task = progress.add_task("", total=None) if progress else None

        def show(window: Window, step: str) -> None:
            if progress is not None and task is not None:
                progress.update(task, description=f"{window.start:%Y-%m-%d} {step}")
            else:
                console.print(f"{window} {step}")

        yield Orchestrator(settings, SparkApps(api, settings.namespace), show, on_step_done)


def _finish(
    settings: OrchestratorSettings,
    kind: str,
    failures: list[str],
    summary: str,
    *,
    headline: str | None = None,
    output: Output = Output.TABLE,
    details: dict[str, Any] | None = None,
    steps_missed: Mapping[str, bool] | None = None,
    windows: Mapping[str, int] | None = None,
) -> None:
    """Push the run's metrics, notify the webhook of a failure, print the outcome (with
    --output json: one document on stdout) and exit 1 when it failed."""
    push_run(
        settings.pushgateway_url,
        kind,
        success=not failures,
        steps_missed=steps_missed,
        windows=windows,
    )
    if output is Output.JSON:
        outcome = {"kind": kind, "ok": not failures, "summary": summary, "failures": failures}
        print_json(outcome | (details or {}))
    if failures:
        headline = headline or f":red_circle: iotpipe orchestrator {kind} failed: {summary}"
        text = "\n".join([headline, *(f"- {f}" for f in failures)])
        notify(settings.webhook, text)
        console.print(f"[red]{kind} failed[/red]: {summary}")
        for failure in failures:
            console.print(f"  {failure}")
        raise typer.Exit(1)
    console.print(f"[green]{kind} succeeded[/green]: {summary}")


def window_document(result: WindowResult) -> dict[str, Any]:
    """A window's outcome for --output json."""
    error = result.error
    return {
        "window": str(result.window),
        "ok": result.ok,
        "applications": list(result.applications),
        "load": result.load,
        "failed_step": error.step if error else None,
        "error": error.detail if error else None,
    }


def _describe(result: WindowResult) -> str:
    if result.ok:
        load = result.load or {}
        return f"{result.window.start:%Y-%m-%d}: loaded (load {load.get('id', '?')})"
    return f"{result.window.start:%Y-%m-%d}: failed at {result.error}"


@app.command()
def daily(
    day: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="UTC day to process; default: yesterday."),
    ] = None,
    stream: Annotated[
        bool, typer.Option(help="Also make sure the bronze-stream SparkApplication is RUNNING.")
    ] = True,
    output: OutputOption = Output.TABLE,
) -> None:
    """The daily run: the stream is RUNNING (recreated if FAILED); the day goes through
    bronze-to-silver, silver-to-gold, the quality gate and the warehouse load."""
    settings = _settings()
    target = day.date() if day else datetime.now(UTC).date() - timedelta(days=1)
    window = Window.day(target)
    failures = []
    recreated = False
    deadlines = StepDeadlines(settings.step_deadlines, _report_late(settings, target))
    with deadlines, _orchestrator(settings, on_step_done=deadlines.done) as orch:
        if stream:
            try:
                recreated = orch.ensure_stream()
                if recreated:
                    console.print(f"{orch.stream_name} had FAILED: recreated, now RUNNING")
            except StepFailed as exc:
                failures.append(str(exc))
        result = orch.run_window(window)
    if not result.ok:
        failures.append(_describe(result))
    late = [step for step, missed in deadlines.missed().items() if missed]
    summary = f"day {target}" + (f" (late: {', '.join(late)})" if late else "")
    details = {"day": target.isoformat(), "stream_recreated": recreated, "late_steps": late}
    details["windows"] = [window_document(result)]
    _finish(
        settings,
        "daily",
        failures,
        summary,
        output=output,
        details=details,
        steps_missed=deadlines.missed(),
    )


def _report_late(settings: OrchestratorSettings, day: date) -> Callable[[str, float], None]:
    """What the daily run does the moment a step passes its deadline: tell the webhook and
    push the steps' deadline gauges (the run goes on)."""
    reported: list[str] = []

    def late(step: str, deadline: float) -> None:
        reported.append(step)
        text = (
            f":hourglass: iotpipe daily run for {day}: {step} is not done "
            f"{deadline / 60:.0f} min after the run started (its deadline); still running"
        )
        console.print(f"[yellow]{text}[/yellow]")
        notify(settings.webhook, text)
        push_steps(
            settings.pushgateway_url,
            "daily",
            {step: step in reported for step in settings.step_deadlines},
        )

    return late


@app.command()
def backfill(
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First UTC day.")],
    end: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Last UTC day (included).")],
    output: OutputOption = Output.TABLE,
) -> None:
    """Process the days START..END one at a time, oldest first, stopping at the first day
    that fails (rerunning is safe: finished Spark steps are reused, loads replace)."""
    if end < start:
        console.print(f"[red]--end {end:%Y-%m-%d} is before --start {start:%Y-%m-%d}[/red]")
        raise typer.Exit(2)
    settings = _settings()
    window = Window(Window.day(start.date()).start, Window.day(end.date()).end)
    days = list(window.days())
    with Progress(
        TextColumn("[bold]backfill"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
    ) as progress:
        overall = progress.add_task("", total=len(days))

        def report_day(result: WindowResult) -> None:
            progress.console.print(_describe(result))
            if result.ok:
                progress.advance(overall)

        with _orchestrator(settings, progress) as orch:
            results = orch.backfill(window, on_day=report_day)
    failed = [_describe(r) for r in results if not r.ok]
    done = sum(r.ok for r in results)
    summary = f"{done}/{len(days)} days of {start:%Y-%m-%d}..{end:%Y-%m-%d} done"
    if failed:
        summary += f"; stopped, {len(days) - len(results)} not attempted"
    details = {
        "start": f"{start:%Y-%m-%d}",
        "end": f"{end:%Y-%m-%d}",
        "days": len(days),
        "done": done,
        "windows": [window_document(r) for r in results],
    }
    _finish(settings, "backfill", failed, summary, output=output, details=details)


@app.command()
def reconcile(
    lookback_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=366,
            help="Windows loaded that start this many days back up to now; default "
            "ORCHESTRATOR_RECONCILE_LOOKBACK_DAYS (7).",
        ),
    ] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Reload the windows late data changed: every loaded window whose Gold files are not
    the ones its last load read goes through the Gold quality gate and the
    warehouse load again. A window whose gate fails is not loaded (its previous rows stay)
    and fails the run."""
    settings = _settings()
    days = lookback_days or settings.reconcile_lookback_days
    now = datetime.now(UTC)
    lookback = Window(Window.day(now.date()).end - timedelta(days=days + 1), now)
    orch = Orchestrator(settings, None, lambda window, step: console.print(f"{window} {step}"))
    try:
        outcome = orch.reconcile(lookback, on_window=lambda r: console.print(_describe_reload(r)))
    except StepFailed as exc:
        _finish(settings, "reconcile", [str(exc)], f"loaded windows of {lookback}", output=output)
        return
    counts = outcome.counts()
    summary = (
        f"{counts['checked']} loaded windows of {lookback} checked, {counts['changed']} changed "
        f"since their load: {counts['reloaded']} reloaded, {counts['refused']} refused"
    )
    details = {
        "lookback": str(lookback),
        "counts": counts,
        "checked": outcome.checked,
        "windows": [window_document(r) for r in outcome.reloaded + outcome.refused],
    }
    _finish(
        settings,
        "reconcile",
        [_describe_reload(r) for r in outcome.refused],
        summary,
        headline=f":red_circle: iotpipe reconcile: {summary}",
        output=output,
        details=details,
        windows=counts,
    )


def _describe_reload(result: WindowResult) -> str:
    if result.ok:
        load = result.load or {}
        return (
            f"{result.window}: reloaded (load {load.get('id', '?')}, "
            f"{load.get('rows_inserted', '?')} rows)"
        )
    return f"{result.window}: not reloaded, the warehouse keeps its rows: {result.error}"


@app.command("check-freshness")
def check_freshness(output: OutputOption = Output.TABLE) -> None:
    """The Bronze freshness SLA: fails (and notifies) when Bronze's newest file is older
    than ORCHESTRATOR_SLA_MINUTES (30) or Bronze has no data."""
    settings = _settings()
    bronze = Lake.from_settings(settings.lake).bronze
    # The contract's bound ahead (the stream dead-letters events dated later): partitions
    # starting after now + that bound are passed over.
    max_ahead = from_environment(ContractSettings).time_bounds.max_ahead
    result = freshness.check(bronze, timedelta(minutes=settings.sla_minutes), max_ahead=max_ahead)
    failures = [] if result.ok else [result.describe()]
    headline = f":warning: iotpipe SLA miss (Bronze freshness, {bronze})"
    age = result.age
    details = {
        "location": result.location,
        "newest": result.newest.isoformat() if result.newest else None,
        "checked_at": result.checked_at.isoformat(),
        "age_minutes": None if age is None else age.total_seconds() / 60,
        "sla_minutes": settings.sla_minutes,
    }
    _finish(
        settings,
        "freshness",
        failures,
        result.describe(),
        headline=headline,
        output=output,
        details=details,
    )
