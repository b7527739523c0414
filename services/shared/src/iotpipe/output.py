"""``--output table|json`` for the command-line tools: a table for people, one JSON document
on stdout for scripts (nothing else is printed there, so it pipes into ``jq``).

Every list, status and report command takes :data:`OutputOption`; progress, warnings and
errors go to stderr (:data:`stderr`), so stdout holds the document and nothing else.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

stderr = Console(stderr=True, soft_wrap=True)
"""Where progress bars, spinners and error messages go."""


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


class TabularOutput(StrEnum):
    """For commands whose result is rows: the table, JSON (a list of objects) or CSV."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


OutputOption = Annotated[
    Output,
    typer.Option(
        "--output", "-o", help="table (for people) or json (one JSON document on stdout)."
    ),
]

TabularOutputOption = Annotated[
    TabularOutput,
    typer.Option(
        "--output",
        "-o",
        help="table (for people), json (a list of objects on stdout) or csv (with a header).",
    ),
]


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def print_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(["" if v is None else v for v in row] for row in rows)


def fields_table(title: str, fields: Mapping[str, Any]) -> Table:
    """One record as a two-column table (field, value); None shows as ``-``."""
    table = Table("field", "value", title=title)
    for name, value in fields.items():
        table.add_row(name, "-" if value is None else str(value))
    return table
