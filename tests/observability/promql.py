"""Reading PromQL just enough to list the series an expression selects.

An alert expression returns data only while its alert fires, so the end-to-end test checks
the series each one *reads* instead: the vector selectors (``name{matchers}``) in it.
"""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_TOKEN = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?(\{[^}]*\})?")
KEYWORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
    ]
)
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}


def grafana_to_promql(expr: str) -> str:
    """A dashboard query with Grafana's interval variables replaced by fixed durations."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def selectors(expr: str) -> list[str]:
    """The vector selectors of ``expr``, e.g. ``['up{job=~".*x"}', 'rate_metric']``."""
    strings: list[str] = []

    def keep(match: re.Match[str]) -> str:
        strings.append(match.group(0))
        return f"\x00{len(strings) - 1}\x00"

    text = _STRING.sub(keep, expr)
    text = _RANGE.sub(" ", _GROUPING.sub(" ", text))
    found: list[str] = []
    for match in _TOKEN.finditer(text):
        name, matchers = match.group(1), match.group(2)
        if not name and not matchers:
            continue
        rest = text[match.end() :].lstrip()
        if name and (rest.startswith("(") or name in KEYWORDS):
            continue  # a function call or an operator keyword
        if name and text[max(0, match.start() - 1)].isdigit():
            continue  # a unit of a duration such as 5m
        selector = (name or "") + (matchers or "")
        found.append(re.sub(r"\x00(\d+)\x00", lambda m: strings[int(m.group(1))], selector))
    return list(dict.fromkeys(found))
