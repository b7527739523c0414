"""``--output table|json`` for the command-line tools: a table for people, one JSON document
on stdout for scripts (nothing else is printed there, so it pipes into ``jq``)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[
    Output,
    typer.Option(
        "--output", "-o", help="table (for people) or json (one JSON document on stdout)."
    ),
]


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
