"""``python -m bench [NAME ...]``: run benchmarks, save bench/results/<name>.json, print a table."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.harness import RESULTS, Result

_NOT_BENCHMARKS = {"harness", "__main__"}


def available() -> list[str]:
    folder = Path(__file__).parent
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(folder)])
        if m.name not in _NOT_BENCHMARKS and not m.name.startswith("_")
    )


def table(console: Console) -> None:
    """Every saved result with its ratio to its reference."""
    grid = Table(
        "benchmark",
        "value",
        "reference",
        "ratio",
        "target",
        "met",
        "measured at",
        title="benchmarks (bench/results)",
    )
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        grid.add_row(
            r["name"],
            f"{r['value']:,.2f} {r['unit']}",
            f"{r['reference']}: {r['reference_value']:,.2f}",
            f"{r['ratio']:.2f}",
            r["target"],
            "yes" if r["met"] else "[red]no[/red]",
            r["measured_at"],
        )
    console.print(grid)


def main() -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {available()})"
    )
    args = parser.parse_args()
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available()}")
    console = Console()
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        result: Result = module.run()
        result.save()
        print(result.summary(), flush=True)
    table(console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
