"""Month gates: a month whose usage does not look like that month is refused (exit 8)
before any invoice number is spent, unless the operator passes --allow-incomplete."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from invoicing.cli import main
from invoicing.core.errors import ExitCode
from tests.builders import MonthBuilder, d, run_cli

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "2026-10"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, [*args])


def whole_month(paid_apps: int = 1, idle: int = 0) -> MonthBuilder:
    """`paid_apps` Pro apps; all but `idle` of them have usage on every day of October."""
    b = MonthBuilder().customer("c1")
    for app in range(1, paid_apps + 1):
        b.app(app, "c1")
        if app > idle:
            for day in range(1, 32):
                b.day(app, d(day), dau=50)
    return b


def test_a_month_that_is_not_there_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("run", "--month", "2026-09", "--input", str(SAMPLE), "--out", str(out),
                    "--workers", "1")
    assert result.exit_code == ExitCode.MONTH_INCOMPLETE == 8
    lines = result.output.splitlines()
    assert lines[0] == ("Error: 2026-09: the usage does not look like the whole month; nothing "
                        "was written and no invoice number was used:")
    assert lines[1] == ("  rows_outside_month: 1547 of 1550 usage rows (99.8%, more than 5%) "
                        "are dated outside 2026-09, from 2026-10-01 to 2026-11-01: is this the "
                        "export of another month?")
    assert lines[2].startswith("  days_without_usage: no usage at all on 29 of 30 days of "
                               "2026-09: 2026-09-01, 2026-09-02,")
    assert lines[3].startswith("  paid_apps_without_usage: 41 of 42 apps on Pro or Flagship "
                               "(97.6%, more than 10%) have no usage in the month: 1400000102,")
    assert lines[4].startswith("  Fix the export, or rerun with --allow-incomplete")
    assert len(lines) == 5
    assert not (out / "2026-09").exists()
    assert not list(out.glob(".2026-09.tmp-*"))


def test_a_month_written_without_leading_zero_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("run", "--month", "2026-1", "--input", str(SAMPLE), "--out",
                    str(tmp_path / "out"))
    assert result.exit_code == ExitCode.USAGE == 2
    assert result.output.splitlines()[-1] == (
        "Error: Invalid value for '--month': '2026-1' is not a month in the form YYYY-MM "
        "(for example 2026-10)")
    assert not (tmp_path / "out").exists()


def test_a_whole_month_passes_every_gate(tmp_path: Path) -> None:
    folder = whole_month().write(tmp_path / "in")
    result = run_cli(folder, tmp_path / "out", gates=True)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out/2026-10/manifest.json").read_text("utf-8"))
    assert manifest["month_gates"] == {"passed": True, "accepted_incomplete": False,
                                       "findings": []}


def test_a_missing_day_stops_the_run_until_it_is_accepted(tmp_path: Path) -> None:
    b = whole_month()
    b.usage = [row for row in b.usage if row[1] != d(17)]
    folder = b.write(tmp_path / "in")
    finding = "days_without_usage: no usage at all on 1 of 31 days of 2026-10: 2026-10-17"
    refused = run_cli(folder, tmp_path / "out", gates=True)
    assert refused.exit_code == ExitCode.MONTH_INCOMPLETE
    assert f"  {finding}" in refused.output.splitlines()
    assert not (tmp_path / "out/2026-10").exists()

    accepted = run_cli(folder, tmp_path / "out", "--allow-incomplete", gates=True)
    assert accepted.exit_code == 0, accepted.output
    assert accepted.output.splitlines()[-3:-1] == [
        "  month gates overridden with --allow-incomplete:", f"    {finding}"]
    assert accepted.output.splitlines()[-1].startswith("head: 2026-10 revision 0 sha256 ")
    manifest = json.loads((tmp_path / "out/2026-10/manifest.json").read_text("utf-8"))
    assert manifest["month_gates"] == {
        "passed": False, "accepted_incomplete": True,
        "findings": [{"gate": "days_without_usage",
                      "message": finding.removeprefix("days_without_usage: ")}]}


def test_paid_apps_without_usage_stop_the_run(tmp_path: Path) -> None:
    folder = whole_month(paid_apps=10, idle=2).write(tmp_path / "in")
    result = run_cli(folder, tmp_path / "out", gates=True)
    assert result.exit_code == ExitCode.MONTH_INCOMPLETE
    assert ("  paid_apps_without_usage: 2 of 10 apps on Pro or Flagship (20.0%, more than "
            "10%) have no usage in the month: 1, 2") in result.output.splitlines()
    # One idle paid app in ten is within the threshold.
    folder = whole_month(paid_apps=10, idle=1).write(tmp_path / "in2")
    assert run_cli(folder, tmp_path / "out2", gates=True).exit_code == 0


def test_preview_and_reissue_apply_the_gates_too(tmp_path: Path) -> None:
    b = whole_month()
    b.usage = [row for row in b.usage if row[1] != d(31)]
    folder = b.write(tmp_path / "in")
    common = ["--month", "2026-10", "--input", str(folder), "--workers", "1"]
    assert invoke("preview", *common).exit_code == ExitCode.MONTH_INCOMPLETE
    assert invoke("preview", *common, "--allow-incomplete").exit_code == 0
    out = ["--out", str(tmp_path / "out")]
    assert invoke("run", *common, *out, "--allow-incomplete").exit_code == 0
    b.day(1, d(1), dau=50_000)  # a real change: the reissue reaches the gates
    b.usage = [row for row in b.usage if row != (1, d(1), 50, 10, None)]
    b.write(folder)
    refused = invoke("reissue", *common, *out, "--reason", "fix")
    assert refused.exit_code == ExitCode.MONTH_INCOMPLETE, refused.output
    assert not (tmp_path / "out/2026-10/revisions").exists()
    accepted = invoke("reissue", *common, *out, "--reason", "fix", "--allow-incomplete")
    assert accepted.exit_code == 0, accepted.output
