"""The jobs' command lines: --help and clear errors, without starting Spark."""

from __future__ import annotations

from types import ModuleType

import pytest
from spark_jobs import bronze_to_silver, silver_to_gold


@pytest.mark.parametrize("job", [bronze_to_silver, silver_to_gold])
def test_help(job: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert job.main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--window", "--start", "--end", "--lake-root"):
        assert option in out
    summary = str(job.__doc__).splitlines()[0]
    assert " ".join(out.split()).count(summary.split(":")[0]) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--window", "last week"], "invalid window 'last week'"),
        (["--start", "2026-11-25T00:00:00Z"], "--start and --end go together"),
        (["--window", "2026-11-25", "--end", "2026-11-26T00:00:00Z"], "not both"),
        (["--nope"], "No such option"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert silver_to_gold.main(argv) == 2
    assert message in capsys.readouterr().err
