"""The CLI on each class of bad input of SPEC §2: exact exit code, exact message, and
nothing written when the run stops."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from invoicing.cli import main
from invoicing.errors import ExitCode
from tests.builders import MonthBuilder, assert_stopped, d
from tests.builders import run_cli as run


def base() -> MonthBuilder:
    b = MonthBuilder().customer("c1").customer("c2")
    b.app(1, "c1").app(2, "c2", plan="flagship")
    b.day(1, d(1), dau=50).day(1, d(2), dau=60).day(2, d(1), dau=70)
    return b


@pytest.fixture
def month(tmp_path: Path) -> Path:
    return base().write(tmp_path / "in")


def test_missing_table_file(month: Path, tmp_path: Path) -> None:
    (month / "apps.parquet").unlink()
    assert_stopped(run(month, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   f"apps.parquet: missing: neither apps.parquet nor apps.csv is in {month}",
                   tmp_path / "out")


def test_missing_column(month: Path, tmp_path: Path) -> None:
    table = pq.read_table(month / "apps.parquet").drop_columns(["app_name"])
    pq.write_table(table, month / "apps.parquet")
    assert_stopped(run(month, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   "apps.parquet, column 'app_name': missing column (the file has: "
                   "sdk_app_id, customer_id)", tmp_path / "out")


def test_wrong_type_names_file_column_and_example(month: Path, tmp_path: Path) -> None:
    path = month / "usage/part=0/usage.parquet"
    table = pq.read_table(path)
    table = table.set_column(2, "dau", pa.array([50.5, 60.0, 70.0], pa.float64()))
    pq.write_table(table, path)
    assert_stopped(run(month, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   "usage/part=0/usage.parquet, column 'dau': expected int64, found double, "
                   "row 1 has 50.5", tmp_path / "out")


def test_unknown_plan(month: Path, tmp_path: Path) -> None:
    b = base().event(1, d(5), "plan", "platinum")
    b.write(month)
    assert_stopped(run(month, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   "subscription_events.parquet, column 'value', row 3: unknown plan "
                   "'platinum' for app 1; expected free, pro, flagship", tmp_path / "out")


def test_unknown_addon(month: Path, tmp_path: Path) -> None:
    base().event(2, d(5), "video_wall", "on").write(month)
    assert_stopped(run(month, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   "subscription_events.parquet, column 'item', row 3: unknown item "
                   "'video_wall'; expected plan or an add-on: avchatroom_unlimited, "
                   "group_member_limit, groups_per_user, history_retention_days, av_call",
                   tmp_path / "out")


def test_unknown_tier(month: Path, tmp_path: Path) -> None:
    base().event(1, d(5), "group_member_limit", "4000").write(month)
    assert_stopped(run(month, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   "subscription_events.parquet, column 'value', row 3: tier '4000' of "
                   "group_member_limit (app 1) is not in the USD price book", tmp_path / "out")


def test_app_with_unknown_customer(month: Path, tmp_path: Path) -> None:
    b = base()
    b.apps.append((3, "ghost", "Orphan"))
    b.write(month)
    assert_stopped(run(month, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   "apps.parquet, column 'customer_id', row 3: unknown customer 'ghost' for "
                   "app 3", tmp_path / "out")


def test_conflicting_rows_stop_the_run(month: Path, tmp_path: Path) -> None:
    base().day(1, d(2), dau=61).write(month, usage_files=2)
    assert_stopped(
        run(month, tmp_path / "out"), ExitCode.USAGE_CONFLICT,
        "usage conflict: app 1 on 2026-10-02 has different rows (usage/part=1/usage.parquet "
        "row 1: dau=60 group_count=10 live_group_count=None; usage/part=1/usage.parquet row 2: "
        "dau=61 group_count=10 live_group_count=None). Fix the export, or rerun with "
        "--on-conflict max to bill the larger values.",
        tmp_path / "out",
    )


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


def test_no_pricebook_version(month: Path, tmp_path: Path) -> None:
    b = base()
    b.customers[1]["currency"] = "EUR"
    b.write(month)
    assert_stopped(run(month, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   "pricebook.toml, column 'currency': no EUR version effective on 2026-10-01 "
                   "for customers c2", tmp_path / "out")


def test_bad_month_is_a_usage_error(month: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--month", "2026-13", "--input", str(month),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == ExitCode.USAGE
    assert "'2026-13' is not a month in the form YYYY-MM" in result.output


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
    for name, command in main.commands.items():  # type: ignore[attr-defined]
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

    from invoicing.timeframe import Month
    previous = Month.previous(date.today()).label
    assert result.exit_code == ExitCode.MONTH_INCOMPLETE, result.output
    assert result.output.startswith(f"Error: {previous}: the usage does not look like")
    assert not (tmp_path / "out" / previous).exists()
