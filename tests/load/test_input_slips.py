"""Issue 19: no slip in the inputs becomes a wrong invoice.

Each slip a new user or a finance team makes either stops the run with one line and a
documented exit code, or bills the month exactly as without it. Tiny months
(`MonthBuilder`); the sample month's slips are hunted in tests/load/test_slip_hunt.py.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from invoicing.cli import main
from invoicing.core.errors import ExitCode
from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month
from tests.builders import INCOMPLETE_OK, MonthBuilder, assert_stopped, d, run_cli

OCT = Month(2026, 10)


def month() -> MonthBuilder:
    b = MonthBuilder().customer("c1").customer("c2").app(1, "c1").app(2, "c2", plan="flagship")
    for day in (1, 2, 3):
        b.day(1, d(day), dau=15_000).day(2, d(day), dau=25_000)
    return b


def totals(folder: Path) -> list[tuple[str, Decimal]]:
    invoices = compute_month(folder, OCT).assembled.invoices
    return invoices.select("customer_id", "total").rows()


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, [*args])


def month_args(folder: Path, out: Path) -> list[str]:
    return ["--month", "2026-10", "--input", str(folder / "in"), "--out", str(out)]


# --- usage files: read or refused, never skipped ---------------------------------------


def _as_csv_gz(path: Path) -> Path:
    target = path.with_name(path.stem + ".CSV.GZ")
    target.write_bytes(gzip.compress(pl.read_parquet(path).write_csv().encode()))
    path.unlink()
    return target


def test_suffixes_in_any_case_compressed_csv_and_linked_folders_bill_the_same(
        tmp_path: Path) -> None:
    folder = month().write(tmp_path / "in", usage_files=3)
    expected = totals(folder)
    (folder / "usage/part=0/usage.parquet").rename(folder / "usage/part=0/usage.PARQUET")
    _as_csv_gz(folder / "usage/part=1/usage.parquet")
    shutil.move(folder / "usage/part=2", tmp_path / "elsewhere")
    (folder / "usage/part=2").symlink_to(tmp_path / "elsewhere")
    assert totals(folder) == expected
    inputs = compute_month(folder, OCT).inputs
    assert inputs.usage_files == ("usage/part=0/usage.PARQUET", "usage/part=1/usage.CSV.GZ",
                                  "usage/part=2/usage.parquet")


def test_ignored_names_are_listed_in_the_manifest_and_others_refused(tmp_path: Path) -> None:
    folder = month().write(tmp_path / "in")
    (folder / "usage/_SUCCESS").write_bytes(b"")
    (folder / "usage/part=0/.usage.parquet.crc").write_bytes(b"crc")
    (folder / "usage/_temporary").mkdir()
    (folder / "usage/_temporary/part-9.parquet").write_bytes(b"half written")
    result = run_cli(folder, tmp_path / "out")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out/2026-10/manifest.json").read_text())
    assert manifest["ignored_inputs"] == ["usage/_SUCCESS", "usage/_temporary/",
                                          "usage/part=0/.usage.parquet.crc"]
    (folder / "usage/part=0/notes.txt").write_text("exported by hand")
    assert_stopped(run_cli(folder, tmp_path / "out2"), ExitCode.INPUT_ERROR,
                   "usage/part=0/notes.txt: not a usage file: only .parquet, .csv and .csv.gz "
                   "files are read under usage/ (suffixes in any case), and names starting "
                   "with '_' or '.' are ignored; move 'notes.txt' out of the usage folder",
                   tmp_path / "out2")


def test_a_symlink_loop_and_a_broken_link_are_refused(tmp_path: Path) -> None:
    folder = month().write(tmp_path / "in")
    (folder / "usage/part=0/again").symlink_to(folder / "usage")
    (folder / "usage/gone.parquet").symlink_to(tmp_path / "nowhere.parquet")
    result = run_cli(folder, tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT_ERROR, result.output
    assert result.output.strip().splitlines() == [
        f"Error: usage/gone.parquet: a broken symbolic link (to '{tmp_path}/nowhere.parquet')",
        "usage/part=0/again/: the same folder as usage/ (a symbolic link loop or a second "
        "link to one folder): its files would be read twice"]


def test_out_inside_input_is_refused(tmp_path: Path) -> None:
    folder = month().write(tmp_path / "in")
    out = folder / "usage" / "published"
    result = run_cli(folder, out)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.output.strip() == (
        f"Error: --out {out} is inside --input {folder}: what is written there would be "
        "read back as input; choose a folder outside it")
    assert not out.exists()


# --- duplicate column names ----------------------------------------------------------


def test_a_parquet_column_twice_is_refused(tmp_path: Path) -> None:
    folder = month().write(tmp_path / "in")
    apps = pq.read_table(folder / "apps.parquet")
    pq.write_table(pa.Table.from_arrays([*apps.columns, apps.column("app_name")],
                                        names=[*apps.column_names, "app_name"]),
                   folder / "apps.parquet")
    assert_stopped(run_cli(folder, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   "apps.parquet, column 'app_name': the column appears 2 times ('app_name', "
                   "'app_name'); names are compared trimmed and case-insensitively, so keep one",
                   tmp_path / "out")


def test_a_csv_header_twice_after_case_folding_is_refused(tmp_path: Path) -> None:
    folder = month().write(tmp_path / "in")
    frame = pl.read_parquet(folder / "customers.parquet").with_columns(
        pl.lit("KR").alias(" Country"))
    (folder / "customers.parquet").unlink()
    frame.write_csv(folder / "customers.csv")
    assert_stopped(run_cli(folder, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   "customers.csv, column 'country': the column appears 2 times ('country', "
                   "' Country'); names are compared trimmed and case-insensitively, so keep one",
                   tmp_path / "out")


def test_a_missing_column_names_its_likely_slip(tmp_path: Path) -> None:
    folder = month().write(tmp_path / "in")
    frame = pl.read_parquet(folder / "customers.parquet").rename({"country": "COUNTRY"})
    frame.write_parquet(folder / "customers.parquet")
    assert_stopped(run_cli(folder, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   "customers.parquet, column 'country': missing column (the file has: "
                   "customer_id, name, email, address, COUNTRY, currency, locale, tax_id); "
                   "did you mean 'COUNTRY'? (names are matched exactly)", tmp_path / "out")


# --- the command line ----------------------------------------------------------------


@pytest.mark.parametrize(("value", "message"), [
    ("2026-10-31", "--issue-date 2026-10-31 is before the end of the billed month 2026-10: "
                   "documents for it are dated 2026-11-01 or later"),
    ("2026-09-01", "--issue-date 2026-09-01 is before the end of the billed month 2026-10: "
                   "documents for it are dated 2026-11-01 or later"),
])
def test_an_issue_date_inside_the_month_is_refused(tmp_path: Path, value: str,
                                                   message: str) -> None:
    folder = month().write(tmp_path / "in")
    result = cli("reissue", "--month", "2026-10", "--input", str(folder), "--out",
                 str(tmp_path / "out"), "--reason", "fix", "--issue-date", value)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.output.strip() == f"Error: {message}"


def test_an_issue_date_in_the_future_is_refused(tmp_path: Path) -> None:
    folder = month().write(tmp_path / "in")
    result = cli("reissue", "--month", "2026-10", "--input", str(folder), "--out",
                 str(tmp_path / "out"), "--reason", "fix", "--issue-date", "9998-01-01")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.output.startswith("Error: --issue-date 9998-01-01 is in the future (today is ")


def test_the_last_month_the_calendar_can_bill(tmp_path: Path) -> None:
    result = cli("preview", "--month", "9999-12", "--input", str(tmp_path))
    assert result.exit_code == ExitCode.USAGE
    assert "'9999-12' is beyond the last month that can be billed (9998-12)" in result.output


# --- the published month -------------------------------------------------------------


def test_a_retry_on_identical_inputs_is_issued_whatever_the_flag(tmp_path: Path) -> None:
    folder = month().write(tmp_path / "in")
    assert run_cli(folder, tmp_path / "out").exit_code == 0
    again = run_cli(folder, tmp_path / "out", "--on-conflict", "max")
    assert again.exit_code == 0, again.output
    assert "already issued from identical inputs" in again.output


@pytest.mark.parametrize("damage", ["empty", "dangling", "revision"])
def test_a_damaged_month_folder_is_one_line(tmp_path: Path, damage: str) -> None:
    folder = month().write(tmp_path / "in")
    out = tmp_path / "out"
    where = out / "2026-10"
    if damage == "empty":
        where.mkdir(parents=True)
    elif damage == "dangling":
        out.mkdir()
        where.symlink_to(tmp_path / "moved-away")
    else:
        assert run_cli(folder, out).exit_code == 0
        (where / "revisions/001").mkdir(parents=True)
        where = where / "revisions/001"
    why = {"empty": "No such file or directory",
           "dangling": "the folder is a dangling symbolic link: No such file or directory",
           "revision": "No such file or directory"}[damage]
    line = f"{where / 'manifest.json'}: missing or unreadable ({why})"
    for command in ("run", "diff", "verify"):
        result = cli(command, "--month", "2026-10", "--input", str(folder), "--out", str(out),
                     *(["--workers", "1", INCOMPLETE_OK] if command == "run" else []))
        assert result.exit_code == ExitCode.VERIFY_MISMATCH, (command, result.output)
        if command == "verify":  # a mismatch among the findings, then the head
            assert result.output.startswith(line), result.output
        else:
            assert result.output.startswith(f"Error: {line}"), result.output
            assert "the published month is damaged, run 'invoicing verify'" in result.output
            assert len(result.output.strip().splitlines()) == 1


def test_a_customer_removed_before_reissue_is_credited_in_full(tmp_path: Path) -> None:
    folder = month().write(tmp_path / "in")
    out = tmp_path / "out"
    assert run_cli(folder, out).exit_code == 0
    without = MonthBuilder().customer("c1").app(1, "c1")
    for day in (1, 2, 3):
        without.day(1, d(day), dau=15_000)
    shutil.rmtree(folder)
    without.write(folder)
    args = ["--month", "2026-10", "--input", str(folder), "--out", str(out)]
    verify = cli("verify", *args)
    assert verify.exit_code == ExitCode.VERIFY_MISMATCH, verify.output
    assert (f"{out}/2026-10/invoices/IM-202610-000002.pdf: current, but its customer is not "
            "in the inputs (reissue the month to credit it)") in verify.output
    reissue = cli("reissue", *args, "--reason", "c2 left", "--workers", "1", INCOMPLETE_OK)
    assert reissue.exit_code == 0, reissue.output
    assert reissue.stdout.splitlines()[1:-1] == [
        "  credit note CN-202610-000001 reverses IM-202610-000002"]
    notes = pl.read_parquet(out / "2026-10/revisions/001/credit_notes.parquet")
    assert notes.select("customer_id", "total").rows() == [("c2", Decimal("-1498.980000"))]
    assert cli("verify", *args).exit_code == 0


# --- the seller file is an input ------------------------------------------------------


def test_a_changed_seller_file_is_a_changed_input(tmp_path: Path) -> None:
    folder = month().write(tmp_path / "in")
    seller = tmp_path / "seller.toml"
    shutil.copy(Path(__file__).resolve().parents[2] / "templates/seller.toml", seller)
    out = tmp_path / "out"
    assert run_cli(folder, out, "--seller", str(seller)).exit_code == 0
    manifest = json.loads((out / "2026-10/manifest.json").read_text())
    assert {"path": "@seller/seller.toml", "sha256": manifest["seller"]["sha256"],
            "rows": None} in manifest["inputs"]
    seller.write_text(seller.read_text().replace("1 Harbour Road", "2 Harbour Road"))
    rerun = run_cli(folder, out, "--seller", str(seller))
    assert rerun.exit_code == ExitCode.ALREADY_PUBLISHED, rerun.output
    args = ["--month", "2026-10", "--input", str(folder), "--out", str(out), "--seller",
            str(seller)]
    diff = cli("diff", *args)
    assert diff.exit_code == 0, diff.output
    assert diff.output.splitlines()[:7] == [
        "2026-10: 2 customer(s) changed (compared with revision 0)",
        "  changed inputs: @seller/seller.toml",
        "",
        "Changed documents (issued data other than the figures):",
        "  invoice           customer  changed",
        "  IM-202610-000001  c1        seller file",
        "  IM-202610-000002  c2        seller file",
    ]
    assert cli("verify", *args).exit_code == ExitCode.VERIFY_MISMATCH
    reissue = cli("reissue", *args, "--reason", "new address", "--workers", "1", INCOMPLETE_OK)
    assert reissue.exit_code == 0, reissue.output
    assert len([ln for ln in reissue.output.splitlines() if "replaces" in ln]) == 2
    from pypdf import PdfReader

    text = PdfReader(out / "2026-10/revisions/001/invoices/IM-202610-000003.pdf").pages[0]
    assert "2 Harbour Road" in text.extract_text()
    assert cli("verify", *args).exit_code == 0


# --- a credit note reverses what was issued --------------------------------------------


def test_a_credit_note_keeps_the_e_invoice_of_the_invoice_it_reverses(tmp_path: Path) -> None:
    from tests.builders import PRICEBOOK_USD

    eur = PRICEBOOK_USD.replace('currency = "USD"', 'currency = "EUR"').replace(
        'KR = "0.10"', 'DE = "0.19"').format(policy="month_start")
    b = MonthBuilder(pricebook=eur).customer("c1", currency="EUR", country="DE", locale="de_DE")
    b.app(1, "c1").day(1, d(1), dau=15_000)
    folder = b.write(tmp_path / "in")
    out = tmp_path / "out"
    assert run_cli(folder, out).exit_code == 0
    b.customers[0].update(country="US", address="1 Main St\nBoston, MA")
    b.write(folder)
    args = ["--month", "2026-10", "--input", str(folder), "--out", str(out)]
    verify = cli("verify", *args)
    assert verify.exit_code == ExitCode.VERIFY_MISMATCH
    assert (f"{out}/2026-10/invoices.parquet: customer c1: issued with other data than the "
            "inputs hold now (buyer address, buyer country, einvoice format)") in verify.output
    reissue = cli("reissue", *args, "--reason", "moved to the US", "--workers", "1",
                  INCOMPLETE_OK)
    assert reissue.exit_code == 0, reissue.output
    from tests.render.test_einvoice import attachments

    rev = out / "2026-10/revisions/001"
    note = attachments(rev / "credit_notes/CN-202610-000001.pdf")
    assert "factur-x.xml" in note
    assert b"<ram:CountryID>DE</ram:CountryID>" in note["factur-x.xml"]
    assert "factur-x.xml" not in attachments(rev / "invoices/IM-202610-000002.pdf")
    state = pl.read_parquet(rev / "invoices.parquet")
    assert state.select("buyer_country", "einvoice_format").rows() == [("US", None)]
    assert cli("verify", *args).exit_code == 0


def test_the_seller_option_is_documented() -> None:
    help_text = cli("run", "--help").output
    assert "--seller" in help_text and "templates/seller.toml" in help_text
    assert os.environ.get("INVOICING_WORKERS") == "1"


# --- what the bundled fonts can print -------------------------------------------------


@pytest.mark.parametrize(("locale", "script"), [("th_TH", "U+0E"), ("hi_IN", "U+09"),
                                                ("my_MM", "U+10")])
def test_a_locale_the_fonts_cannot_print_is_refused(tmp_path: Path, locale: str,
                                                    script: str) -> None:
    b = MonthBuilder().customer("c1").customer("c2", locale=locale).app(1, "c1").app(2, "c2")
    b.day(1, d(1), dau=15_000).day(2, d(1), dau=15_000)
    result = run_cli(b.write(tmp_path / "in"), tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT_ERROR, result.output
    line, = [ln for ln in result.output.splitlines() if "bundled fonts" in ln]
    start = (f"Error: customers.parquet, column 'locale', row 2: the bundled fonts cannot "
             f"print '{locale}' (customer c2): its dates and amounts use '")
    assert line.startswith(start), line
    # The first five characters (all of the locale's own script), then a count.
    assert line.count(f"' ({script}") == 5 and " more; choose" in line, line
    assert line.endswith("choose a locale in Latin, Greek, Cyrillic, Hangul or Han script "
                         "(for example en_US)")
    assert not (tmp_path / "out/2026-10").exists()


def test_a_name_no_font_has_is_reported_per_document(tmp_path: Path) -> None:
    b = month()
    b.customers[1].update(name="Chat \U0001F600 ไทย")  # DejaVu Sans has the emoji
    out = tmp_path / "out"
    result = run_cli(b.write(tmp_path / "in"), out)
    assert result.exit_code == 0, result.output
    assert ("  IM-202610-000002 (c2): the name or address holds characters no bundled font "
            "has, printed as boxes: 'ไ' (U+0E44), 'ท' (U+0E17), "
            "'ย' (U+0E22)") in result.stdout.splitlines()
    manifest = json.loads((out / "2026-10/manifest.json").read_text())
    assert manifest["counts"]["documents_with_unprintable_characters"] == 1
    assert [d["invoice_number"] for d in manifest["unprintable_characters"]] == [
        "IM-202610-000002"]
