"""The CLI around a month's inputs: unbillable rows, --on-conflict max, a safe rerun, help
text and the default month. The catalogue of bad inputs, one case each, is in
test_bad_inputs.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import polars as pl
import pytest
from click.testing import CliRunner

from invoicing.cli import main
from invoicing.core.errors import ExitCode
from tests.builders import MonthBuilder, d
from tests.builders import run_cli as run


def base() -> MonthBuilder:
    b = MonthBuilder().customer("c1").customer("c2")
    b.app(1, "c1").app(2, "c2", plan="flagship")
    b.day(1, d(1), dau=50).day(1, d(2), dau=60).day(2, d(1), dau=70)
    return b


@pytest.fixture
def month(tmp_path: Path) -> Path:
    return base().write(tmp_path / "in")


def test_conflicting_rows_with_on_conflict_max(month: Path, tmp_path: Path) -> None:
    base().day(1, d(2), dau=20_001).write(month, usage_files=2)
    result = run(month, tmp_path / "out", "--on-conflict", "max")
    assert result.exit_code == 0, result.output
    assert "1 conflicts merged" in result.output
    items = pl.read_parquet(tmp_path / "out/2026-10/line_items.parquet")
    dau = items.filter(pl.col("item") == "dau_overage", pl.col("sdk_app_id") == 1).row(
        0, named=True)
    assert (dau["peak_value"], dau["quantity"]) == (20_001, 2)


def test_unbillable_rows_are_rejected_and_the_run_continues(month: Path, tmp_path: Path
                                                            ) -> None:
    b = base()
    b.day(99, d(3))  # unknown app
    b.day(1, d(30, 9))  # outside the month
    b.day(1, d(1, 11))  # outside the month
    b.day(2, d(4), dau=-1)  # negative
    b.usage.append((2, d(5), 5, None, None))  # null group_count
    b.day(1, d(1), dau=50)  # exact duplicate: collapsed, not rejected
    b.write(month)
    result = run(month, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert ("usage rows: 9 read, 3 billed, 1 duplicates collapsed, 0 conflicts merged, "
            "5 rejected (rejected_rows.parquet)") in result.output
    rejected = pl.read_parquet(tmp_path / "out/2026-10/rejected_rows.parquet")
    assert rejected.select("source_file", "source_row", "reason").rows() == [
        ("usage/part=0/usage.parquet", 4, "unknown sdk_app_id"),
        ("usage/part=0/usage.parquet", 5, "date outside 2026-10"),
        ("usage/part=0/usage.parquet", 6, "date outside 2026-10"),
        ("usage/part=0/usage.parquet", 7, "negative dau"),
        ("usage/part=0/usage.parquet", 8, "null group_count"),
    ]


def test_rerun_is_safe_and_changed_inputs_are_refused(month: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run(month, out)
    assert first.exit_code == 0, first.output
    before = {p: p.read_bytes() for p in (out / "2026-10").rglob("*") if p.is_file()}
    again = run(month, out)
    assert again.exit_code == 0
    assert "already issued from identical inputs" in again.output
    base().day(1, d(9), dau=99).write(month)
    changed = run(month, out)
    assert changed.exit_code == ExitCode.ALREADY_PUBLISHED
    assert "Use 'invoicing diff'" in changed.output and "'invoicing reissue'" in changed.output
    after = {p: p.read_bytes() for p in (out / "2026-10").rglob("*") if p.is_file()}
    assert after == before


def test_every_command_has_help() -> None:
    ctx = click.Context(main)
    for name in main.list_commands(ctx):  # type: ignore[attr-defined]
        command = main.get_command(ctx, name)  # type: ignore[attr-defined]
        assert command.help and "Example" in command.help, name
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0


def test_default_month_is_the_previous_one(month: Path, tmp_path: Path) -> None:
    shutil.rmtree(tmp_path / "out", ignore_errors=True)
    result = CliRunner().invoke(main, ["run", "--input", str(month), "--out",
                                       str(tmp_path / "out")])
    # Usage dated October 2026 is outside today's previous month, so the month gates
    # refuse it; the point is which month was chosen.
    from datetime import date

    from invoicing.core.timeframe import Month
    previous = Month.previous(date.today()).label
    assert result.exit_code == ExitCode.MONTH_INCOMPLETE, result.output
    assert result.output.startswith(f"Error: {previous}: the usage does not look like")
    assert not (tmp_path / "out" / previous).exists()
