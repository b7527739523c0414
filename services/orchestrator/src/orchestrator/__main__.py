"""``python -m orchestrator``: the orchestrator CLI (what the chart's CronJob runs)."""

from orchestrator.cli import app

if __name__ == "__main__":
    app(prog_name="orchestrator")
