"""Every input error at once, in file order (exit 3), and environment errors as one line
with their own exit code."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from invoicing.cli import main
from invoicing.core.errors import ExitCode
from tests.builders import MonthBuilder, d, run_cli


def base() -> MonthBuilder:
    b = MonthBuilder().customer("c1").customer("c2")
    b.app(1, "c1").app(2, "c2")
    b.day(1, d(1)).day(2, d(2))
    return b


def test_every_row_problem_is_listed_in_file_order(tmp_path: Path) -> None:
    b = base()
    b.customer("c3", currency="XYZ")
    b.event(1, d(5), "plan", "platinum").event(2, d(6), "plan", "gold")
    b.day(2, d(3), dau=10**16)
    folder = b.write(tmp_path / "in")
    result = run_cli(folder, tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT_ERROR
    assert result.output.splitlines() == [
        "Error: customers.parquet, column 'currency', row 3: unknown currency 'XYZ' "
        "(customer c3)",
        "subscription_events.parquet, column 'value', row 3: unknown plan 'platinum' for app 1; "
        "expected free, pro, flagship",
        "subscription_events.parquet, column 'value', row 4: unknown plan 'gold' for app 2; "
        "expected free, pro, flagship",
        "usage/part=0/usage.parquet, column 'dau', row 3: 10,000,000,000,000,000 is above the "
        "largest value the batch bills exactly (1,000,000,000,000,000)",
    ]
    assert not (tmp_path / "out/2026-10").exists()


def test_structural_problems_of_every_file_are_listed_together(tmp_path: Path) -> None:
    folder = base().write(tmp_path / "in", usage_files=2)
    for part in ("part=0", "part=1"):
        path = folder / "usage" / part / "usage.parquet"
        pq.write_table(pq.read_table(path).drop(["dau"]), path)
    text = (folder / "pricebook.toml").read_text("utf-8")
    (folder / "pricebook.toml").write_text(
        text.replace('pro = "399.00"', "pro = 399.00").replace("block = 10000\n", ""), "utf-8")
    result = run_cli(folder, tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT_ERROR
    assert result.output.splitlines() == [
        "Error: pricebook.toml: version #1, key 'plan_fee.pro': must be a quoted decimal string "
        "such as \"399.00\", got 399.0",
        "pricebook.toml: version #1, key 'dau_overage.block': missing",
        "usage/part=0/usage.parquet, column 'dau': missing column (the file has: sdk_app_id, "
        "date, group_count, live_group_count)",
        "usage/part=1/usage.parquet, column 'dau': missing column (the file has: sdk_app_id, "
        "date, group_count, live_group_count)",
    ]


def test_errors_beyond_fifty_are_counted(tmp_path: Path) -> None:
    b = base()
    for i in range(60):
        b.event(1, d(1 + i % 28), "plan", f"plan{i}")
    result = run_cli(b.write(tmp_path / "in"), tmp_path / "out")
    lines = result.output.splitlines()
    assert result.exit_code == ExitCode.INPUT_ERROR
    assert len(lines) == 51
    assert lines[-1] == "... and 10 more input error(s) not shown"


def test_an_output_folder_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    folder = base().write(tmp_path / "in")
    (tmp_path / "a-file").write_text("x")
    for out in (tmp_path / "a-file" / "out", Path("/proc/invoicing-out")):
        result = run_cli(folder, out)
        assert result.exit_code == ExitCode.OUTPUT_UNAVAILABLE == 9, result.output
        assert result.output.startswith(f"Error: --out {out}: cannot create or write the "
                                        "output folder (")
        assert result.output.endswith("); nothing was written\n")
        assert len(result.output.splitlines()) == 1


def test_a_missing_pricebook_is_named_as_typed(tmp_path: Path, monkeypatch: object) -> None:
    folder = base().write(tmp_path / "in")
    result = run_cli(folder, tmp_path / "out", "--pricebook", "no/such/pricebook.toml")
    assert result.exit_code == ExitCode.INPUT_ERROR
    assert result.output == "Error: no/such/pricebook.toml: price book not found\n"


def test_verbose_works_after_the_command(tmp_path: Path) -> None:
    folder = base().write(tmp_path / "in")
    result = CliRunner().invoke(main, ["run", "-v", "--month", "2026-10", "--input", str(folder),
                                       "--out", str(tmp_path / "out"), "--workers", "1",
                                       "--allow-incomplete"])
    assert result.exit_code == 0, result.output
    assert "stage load done in" in result.stderr
    assert "stage publish done in" in result.stderr


def test_null_typed_usage_column_in_a_usage_file_is_read(tmp_path: Path) -> None:
    folder = base().write(tmp_path / "in")
    table = pa.table({"sdk_app_id": pa.array([1], pa.int64()),
                      "date": pa.array([d(9)], pa.date32()),
                      "dau": pa.array([5], pa.int64()), "group_count": pa.array([1], pa.int64()),
                      "live_group_count": pa.nulls(1)})
    pq.write_table(table, folder / "usage" / "extra.parquet")
    result = run_cli(folder, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "usage rows: 3 read, 3 billed" in result.output
