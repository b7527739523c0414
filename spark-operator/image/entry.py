"""Entry point of every Spark job in the image (the SparkApplications' mainApplicationFile).

    spark-submit local:///opt/iotpipe/entry.py <job> [args...]

runs ``spark_jobs.<job>.main(args)``. A ScheduledSparkApplication has fixed arguments, so
two relative windows are resolved here, at run time, to the UTC window that just closed:
``previous-hour`` (e.g. ``2026-11-26T09`` when run at 10:10) and ``previous-day``
(``2026-11-25``), in the shorthand forms ``iotpipe.windows.Window.parse`` accepts.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

JOBS = ("bronze_stream", "bronze_to_silver", "silver_to_gold", "train_detector")

RELATIVE_WINDOWS: dict[str, Callable[[datetime], str]] = {
    "previous-hour": lambda now: (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H"),
    "previous-day": lambda now: (now - timedelta(days=1)).strftime("%Y-%m-%d"),
}


def resolve(args: Sequence[str], now: datetime) -> list[str]:
    """The job's arguments with relative windows replaced by the window they name at ``now``."""
    utc = now.astimezone(UTC)
    return [RELATIVE_WINDOWS[a](utc) if a in RELATIVE_WINDOWS else a for a in args]


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in JOBS:
        got = argv[0] if argv else "nothing"
        print(f"entry.py: the first argument names the job, one of {', '.join(JOBS)}; got {got}")
        return 2
    job, *args = argv
    run = importlib.import_module(f"spark_jobs.{job}").main
    result = run(resolve(args, datetime.now(UTC)))
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
