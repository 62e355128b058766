"""Catalogue of bad inputs (SPEC §2 "Bad input never stops silently"), each run through
the CLI with its documented outcome.

Outcome STOP: exit 3 (`ExitCode.INPUT_ERROR`, or 4 for a usage conflict), exactly one
line naming the file, and the column and data row where there is one, and nothing
under ``--out`` (no month folder, no ``.2026-10.tmp-*`` folder). Outcome REJECT: exit 0
and a row in ``rejected_rows.parquet`` with its source file, row and reason. Outcome
OK: the input is accepted and billed as if it were clean.

The base month: customers c1 (US) and c2 (KR), both USD; app 1 (c1, Pro) and app 2
(c2, Flagship); usage rows app 1 on Oct 1 and 2, app 2 on Oct 1, in
``usage/part=0/usage.parquet``; two plan events (rows 1 and 2).

STOP, exit 3 (`ERRORS`):
  missing columns ........ usage without ``dau``; customers.csv without ``email``
  wrong types ............ usage ``date`` as string; usage ``date`` as timestamp;
                           usage ``dau`` as float; ``sdk_app_id`` as int32 (usage and
                           apps, Parquet: int64 is required, no silent widening);
                           non-numeric ``sdk_app_id`` in apps.csv; non-numeric ``dau``
                           in a usage CSV; impossible date in subscription_events.csv
  nulls (small tables) ... null ``customer_id`` in apps; empty ``email`` in customers.csv;
                           null ``effective_date`` in subscription events
  references ............. subscription event for an unknown app; app of an unknown
                           customer; unknown plan, add-on and tier; bad on/off value
  duplicates ............. duplicate ``customer_id``; duplicate ``sdk_app_id``
  files .................. no usage folder; empty usage folder; only non-table files in
                           usage; zero-byte, truncated, text and corrupt-data-page
                           files named ``.parquet`` (usage), zero-byte apps.parquet;
                           both apps.parquet and apps.csv
  CSV dialect ............ ``;``- and tab-separated tables; a CP949 (non-UTF-8) export;
                           an unterminated quote
  customers .............. unknown currency; unknown locale; lowercase country
  price book ............. TOML syntax error; missing key; float price; float tax rate;
                           two versions with the same currency and effective_from; no
                           version for a customer's currency; price book missing
STOP, exit 4 (`test_conflicting_rows_*`): two different rows for one app and day, in one
  file or across files.
REJECT, exit 0 (`REJECTED`): unknown app; date before / after the month; null
  ``sdk_app_id``, ``date``, ``dau``, ``group_count``; negative ``dau``,
  ``group_count``, ``live_group_count``; an empty cell in a usage CSV.
OK, exit 0:
  * exact duplicate rows, within a file and across files: collapsed and counted;
  * extra columns in usage, apps, customers and events are ignored (the output is
    byte-identical to the run without them), as `invoicing.load.inputs` states;
  * customers.csv / apps.csv with a UTF-8 BOM (also with every field quoted), with
    quoted newlines in the address, with CRLF line ends;
  * a usage file with zero rows next to others; ``live_group_count`` absent.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from invoicing.core.errors import ExitCode
from invoicing.load.inputs import CUSTOMERS_COLUMNS, load_inputs
from invoicing.pricing.models import MODELS
from tests.builders import (
    PRICEBOOK_USD,
    USAGE_SCHEMA,
    MonthBuilder,
    assert_stopped,
    d,
)
from tests.builders import run_cli as run

USAGE = "usage/part=0/usage.parquet"
Prepare = Callable[[Path], None]


def base() -> MonthBuilder:
    b = MonthBuilder().customer("c1").customer("c2", country="KR", locale="ko_KR")
    b.app(1, "c1").app(2, "c2", plan="flagship")
    b.day(1, d(1), dau=50).day(1, d(2), dau=60).day(2, d(1), dau=70)
    return b


# --- ways to spoil the base month -----------------------------------------------------------


def rebuild(change: Callable[[MonthBuilder], Any]) -> Prepare:
    """Write the base month again with a change made in Python literals."""

    def prepare(folder: Path) -> None:
        b = base()
        change(b)
        b.write(folder)

    return prepare


def parquet(relative: str, change: Callable[[pa.Table], pa.Table]) -> Prepare:
    def prepare(folder: Path) -> None:
        path = folder / relative
        pq.write_table(change(pq.read_table(path)), path)

    return prepare


def set_column(name: str, values: pa.Array) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        return table.set_column(table.schema.get_field_index(name), name, values)

    return change


def cast_column(name: str, dtype: pa.DataType) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        return set_column(name, table.column(name).cast(dtype))(table)

    return change


def drop_column(name: str) -> Callable[[pa.Table], pa.Table]:
    return lambda table: table.drop_columns([name])


def raw_bytes(relative: str, data: Callable[[bytes], bytes]) -> Prepare:
    def prepare(folder: Path) -> None:
        path = folder / relative
        path.write_bytes(data(path.read_bytes()))

    return prepare


def corrupt_data_pages(data: bytes) -> bytes:
    """Scramble the first column chunk but keep the footer: the schema reads, the data not."""
    spoilt = bytearray(data)
    for i in range(4, 34):
        spoilt[i] = (spoilt[i] * 7 + 13) & 0xFF
    return bytes(spoilt)


def csv_bytes(header: list[str], rows: list[list[Any]], *, delimiter: str = ",",
              quoting: int = csv.QUOTE_MINIMAL, line_end: str = "\n") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return buffer.getvalue()


def customers_csv(change: Callable[[list[dict[str, Any]]], Any] = lambda rows: None, *,
                  bom: bool = False, encoding: str = "utf-8", **dialect: Any) -> Prepare:
    """Replace customers.parquet by customers.csv (addresses hold a quoted newline)."""

    def prepare(folder: Path) -> None:
        rows = base().customers
        rows[1].update(name="고객 2", address="서울특별시 강남구\n테헤란로 1")
        change(rows)
        header = list(rows[0])
        text = csv_bytes(header, [[r[c] for c in header] for r in rows], **dialect)
        (folder / "customers.parquet").unlink()
        (folder / "customers.csv").write_bytes((("\ufeff" if bom else "") + text).encode(encoding))

    return prepare


def apps_csv(text: str, *, bom: bool = False) -> Prepare:
    def prepare(folder: Path) -> None:
        (folder / "apps.parquet").unlink()
        (folder / "apps.csv").write_text(("\ufeff" if bom else "") + text, encoding="utf-8")

    return prepare


def events_csv(text: str) -> Prepare:
    def prepare(folder: Path) -> None:
        (folder / "subscription_events.parquet").unlink()
        (folder / "subscription_events.csv").write_text(text, encoding="utf-8")

    return prepare


def usage_csv(text: str) -> Prepare:
    def prepare(folder: Path) -> None:
        (folder / "usage/extra.csv").write_text(text, encoding="utf-8")

    return prepare


def pricebook(old: str, new: str) -> Prepare:
    def prepare(folder: Path) -> None:
        path = folder / "pricebook.toml"
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return prepare


def both(*steps: Prepare) -> Prepare:
    def prepare(folder: Path) -> None:
        for step in steps:
            step(folder)

    return prepare


def empty_usage_folder(folder: Path) -> None:
    shutil.rmtree(folder / "usage")
    (folder / "usage").mkdir()


def no_usage_folder(folder: Path) -> None:
    shutil.rmtree(folder / "usage")


def only_non_table_files(folder: Path) -> None:
    (folder / USAGE).rename(folder / "usage/part=0/usage.parquet.gz")
    (folder / "usage/_SUCCESS").write_bytes(b"")


def apps_in_both_formats(folder: Path) -> None:
    (folder / "apps.csv").write_text("sdk_app_id,customer_id,app_name\n1,c1,A\n2,c2,B\n")


APPS_HEADER = "sdk_app_id,customer_id,app_name\n"


@dataclass(frozen=True)
class Stop:
    """Expected: exit `code` and exactly this message (``{input}`` = the input folder)."""

    message: str
    code: ExitCode = ExitCode.INPUT_ERROR


ERRORS: list[Any] = [
    # --- missing columns
    pytest.param(parquet(USAGE, drop_column("dau")), Stop(
        f"{USAGE}, column 'dau': missing column (the file has: sdk_app_id, date, group_count, "
        "live_group_count)"), id="usage-missing-column"),
    pytest.param(customers_csv(lambda rows: [r.pop("email") for r in rows]), Stop(
        "customers.csv, column 'email': missing column (the file has: customer_id, name, "
        "address, country, currency, locale, tax_id)"), id="customers-csv-missing-column"),
    # --- wrong types
    pytest.param(parquet(USAGE, cast_column("date", pa.string())), Stop(
        f"{USAGE}, column 'date': expected date, found string, row 1 has '2026-10-01'"),
        id="usage-date-as-string"),
    pytest.param(parquet(USAGE, cast_column("date", pa.timestamp("ms"))), Stop(
        f"{USAGE}, column 'date': expected date, found timestamp[ms], row 1 has "
        "datetime.datetime(2026, 10, 1, 0, 0)"), id="usage-date-as-timestamp"),
    pytest.param(parquet(USAGE, cast_column("dau", pa.float64())), Stop(
        f"{USAGE}, column 'dau': expected int64, found double, row 1 has 50.0"),
        id="usage-float-dau"),
    pytest.param(parquet(USAGE, cast_column("sdk_app_id", pa.int32())), Stop(
        f"{USAGE}, column 'sdk_app_id': expected int64, found int32, row 1 has 1"),
        id="usage-int32-id"),
    pytest.param(parquet("apps.parquet", cast_column("sdk_app_id", pa.int32())), Stop(
        "apps.parquet, column 'sdk_app_id': expected int64, found int32, row 1 has 1"),
        id="apps-int32-id"),
    pytest.param(apps_csv(APPS_HEADER + "1,c1,A\nx2,c2,B\n"), Stop(
        "apps.csv, column 'sdk_app_id', row 2: expected int64, found 'x2'"),
        id="apps-csv-non-numeric-id"),
    pytest.param(usage_csv("sdk_app_id,date,dau,group_count\n1,2026-10-03,5,1\n"
                           "1,2026-10-04,12.5,1\n"), Stop(
        "usage/extra.csv, column 'dau', row 2: expected int64, found '12.5'"),
        id="usage-csv-non-numeric-dau"),
    pytest.param(events_csv("sdk_app_id,effective_date,item,value\n1,2026-01-01,plan,pro\n"
                            "2,2026-01-01,plan,flagship\n1,2026-10-32,plan,free\n"), Stop(
        "subscription_events.csv, column 'effective_date', row 3: expected date, found "
        "'2026-10-32'"), id="events-csv-impossible-date"),
    # --- nulls in the small tables
    pytest.param(parquet("apps.parquet", set_column("customer_id", pa.array(["c1", None]))),
                 Stop("apps.parquet, column 'customer_id', row 2: value is missing"),
                 id="apps-null-customer"),
    pytest.param(customers_csv(lambda rows: rows[1].update(email="")), Stop(
        "customers.csv, column 'email', row 2: value is missing"), id="customers-empty-email"),
    pytest.param(rebuild(lambda b: b.event(1, None, "plan", "free")), Stop(
        "subscription_events.parquet, column 'effective_date', row 3: value is missing"),
        id="events-null-date"),
    # --- references
    pytest.param(rebuild(lambda b: b.event(99, d(5), "plan", "pro")), Stop(
        "subscription_events.parquet, column 'sdk_app_id', row 3: unknown app 99"),
        id="event-unknown-app"),
    pytest.param(rebuild(lambda b: b.apps.append((3, "ghost", "Orphan"))), Stop(
        "apps.parquet, column 'customer_id', row 3: unknown customer 'ghost' for app 3"),
        id="app-unknown-customer"),
    pytest.param(rebuild(lambda b: b.event(1, d(5), "plan", "enterprise")), Stop(
        "subscription_events.parquet, column 'value', row 3: unknown plan 'enterprise' for "
        "app 1; expected free, pro, flagship"), id="unknown-plan"),
    pytest.param(rebuild(lambda b: b.event(1, d(5), "translation", "on")), Stop(
        "subscription_events.parquet, column 'item', row 3: unknown item 'translation'; "
        "expected plan or an add-on: avchatroom_unlimited, group_member_limit, "
        "groups_per_user, history_retention_days, av_call"), id="unknown-addon"),
    pytest.param(rebuild(lambda b: b.event(2, d(5), "history_retention_days", "45")), Stop(
        "subscription_events.parquet, column 'value', row 3: tier '45' of "
        "history_retention_days (app 2) is not in the USD price book"), id="unknown-tier"),
    pytest.param(rebuild(lambda b: b.event(1, d(5), "av_call", "yes")), Stop(
        "subscription_events.parquet, column 'value', row 3: av_call takes on or off, got "
        "'yes'"), id="on-off-addon-bad-value"),
    # --- duplicate keys
    pytest.param(rebuild(lambda b: b.customer("c1", name="Another c1")), Stop(
        "customers.parquet, column 'customer_id', row 1: customer_id 'c1' appears more than "
        "once"), id="duplicate-customer-id"),
    pytest.param(rebuild(lambda b: b.apps.append((2, "c1", "Copy of 2"))), Stop(
        "apps.parquet, column 'sdk_app_id', row 2: sdk_app_id 2 appears more than once"),
        id="duplicate-sdk-app-id"),
    # --- files
    pytest.param(no_usage_folder, Stop("usage/: missing: no usage folder in {input}"),
                 id="no-usage-folder"),
    pytest.param(empty_usage_folder, Stop(
        "usage/: no usage files (*.parquet, *.csv or *.csv.gz) found; an export that "
        "produced nothing is refused rather than billed as idle"), id="empty-usage-folder"),
    pytest.param(only_non_table_files, Stop(
        "usage/part=0/usage.parquet.gz: not a usage file: only .parquet, .csv and .csv.gz "
        "files are read under usage/ (suffixes in any case), and names starting with '_' or "
        "'.' are ignored; move 'usage.parquet.gz' out of the usage folder"),
        id="usage-only-non-table-files"),
    pytest.param(raw_bytes(USAGE, lambda data: b""), Stop(
        f"{USAGE}: not a readable Parquet file (Parquet file size is 0 bytes)"),
        id="usage-zero-bytes"),
    pytest.param(raw_bytes(USAGE, lambda data: data[: len(data) // 2]), Stop(
        f"{USAGE}: not a readable Parquet file (Parquet magic bytes not found in footer. "
        "Either the file is corrupted or this is not a parquet file.)"), id="usage-truncated"),
    pytest.param(raw_bytes(USAGE, lambda data: b"sdk_app_id,date\n1,2026-10-01\n"), Stop(
        f"{USAGE}: not a readable Parquet file (Parquet magic bytes not found in footer. "
        "Either the file is corrupted or this is not a parquet file.)"), id="usage-not-parquet"),
    pytest.param(raw_bytes(USAGE, corrupt_data_pages), Stop(
        f"{USAGE}, column 'sdk_app_id': not a readable Parquet file: the data cannot be "
        "decoded (parquet: File out of specification: Invalid thrift: protocol error)"),
        id="usage-corrupt-data-page"),
    pytest.param(raw_bytes("apps.parquet", lambda data: b""), Stop(
        "apps.parquet: not a readable Parquet file (Parquet file size is 0 bytes)"),
        id="apps-zero-bytes"),
    pytest.param(apps_in_both_formats, Stop(
        "apps.csv: both apps.parquet and apps.csv exist; keep only one"),
        id="apps-parquet-and-csv"),
    # --- CSV dialect
    pytest.param(customers_csv(delimiter=";"), Stop(
        "customers.csv: the header is separated by ';', not ','; export the table as "
        "comma-separated CSV (header: "
        "'customer_id;name;email;address;country;currency;locale;tax_id')"),
        id="customers-csv-semicolon"),
    pytest.param(apps_csv("sdk_app_id\tcustomer_id\tapp_name\n1\tc1\tA\n2\tc2\tB\n"), Stop(
        "apps.csv: the header is separated by a tab, not ','; export the table as "
        "comma-separated CSV (header: 'sdk_app_id\\tcustomer_id\\tapp_name')"),
        id="apps-csv-tab"),
    pytest.param(customers_csv(encoding="cp949"), Stop(
        "customers.csv: not UTF-8: byte 0xb0 on line 4 cannot be decoded; export the table "
        "as UTF-8"), id="customers-csv-cp949"),
    pytest.param(apps_csv(APPS_HEADER + '1,c1,"App one\n2,c2,B\n'), Stop(
        "apps.csv: a quoted field opened on line 2 is never closed (unbalanced '\"')"),
        id="apps-csv-unterminated-quote"),
    # --- customers
    pytest.param(customers_csv(lambda rows: rows[1].update(currency="XYZ")), Stop(
        "customers.csv, column 'currency', row 2: unknown currency 'XYZ' (customer c2)"),
        id="unknown-currency"),
    pytest.param(customers_csv(lambda rows: rows[1].update(locale="kr_KO")), Stop(
        "customers.csv, column 'locale', row 2: unknown locale 'kr_KO' (customer c2)"),
        id="unknown-locale"),
    pytest.param(customers_csv(lambda rows: rows[1].update(country="kr")), Stop(
        "customers.csv, column 'country', row 2: 'kr' is not an ISO 3166 alpha-2 code "
        "(customer c2)"), id="lowercase-country"),
    # --- price book
    pytest.param(pricebook('pro = "399.00"', 'pro = "399.00'), Stop(
        "pricebook.toml: not valid TOML: Illegal character '\\n' (at line 8, "
        "column 14)"), id="pricebook-toml-syntax"),
    pytest.param(pricebook('price_per_block = "149.99"', ''), Stop(
        "pricebook.toml: version #1, key 'dau_overage.price_per_block': missing"),
        id="pricebook-missing-key"),
    # Closed price book (issue 19): a slip is named with the key it was meant to be.
    pytest.param(pricebook('KR = "0.10"', 'kr = "0.10"'), Stop(
        "pricebook.toml: version #1, key 'tax.kr': a tax key is a country code as the "
        "customers table writes it: two upper-case letters (ISO 3166 alpha-2); did you mean "
        "'KR'?"), id="pricebook-lowercase-tax-key"),
    pytest.param(pricebook("[version.tax]", "[version.Tax]"), Stop(
        "pricebook.toml: version #1, key 'Tax': unknown key; did you mean 'tax'?"),
        id="pricebook-capitalised-table"),
    pytest.param(pricebook('plan_fee_policy = "month_start"',
                           'plan_fee_polcy = "prorate_daily"'), Stop(
        "pricebook.toml: version #1, key 'plan_fee_polcy': unknown key; did you mean "
        "'plan_fee_policy'?"), id="pricebook-misspelled-key"),
    pytest.param(pricebook('pro = "399.00"', "pro = 399.00"), Stop(
        "pricebook.toml: version #1, key 'plan_fee.pro': must be a quoted decimal "
        "string such as \"399.00\", got 399.0"), id="pricebook-float-price"),
    pytest.param(pricebook('KR = "0.10"', "KR = 0.10"), Stop(
        "pricebook.toml: version #1, key 'tax.KR': must be a quoted decimal string "
        "such as \"399.00\", got 0.1"), id="pricebook-float-tax-rate"),
    pytest.param(rebuild(lambda b: setattr(b, "pricebook", b.pricebook + "\n" + b.pricebook)),
                 Stop("pricebook.toml: two versions for USD with effective_from "
                      "2026-01-01"), id="pricebook-duplicate-version"),
    pytest.param(rebuild(lambda b: b.customer("c3", currency="KRW", country="KR")), Stop(
        "pricebook.toml, column 'currency': no KRW version effective on 2026-10-01 for "
        "customers c3"), id="pricebook-no-version-for-currency"),
    pytest.param(lambda folder: (folder / "pricebook.toml").unlink(), Stop(
        "pricebook.toml: price book not found"), id="pricebook-missing"),
    # --- value ranges and exactness (issue 10)
    pytest.param(pricebook('pro = "399.00"', 'pro = "399.0000001"'), Stop(
        "pricebook.toml: version #1, key 'plan_fee.pro': '399.0000001' has more than 6 "
        "decimals; the batch keeps price-book figures exactly and does not round them"),
        id="pricebook-price-beyond-scale"),
    pytest.param(pricebook('KR = "0.10"', 'KR = "0.1000005"'), Stop(
        "pricebook.toml: version #1, key 'tax.KR': '0.1000005' has more than 6 decimals; "
        "the batch keeps price-book figures exactly and does not round them"),
        id="pricebook-tax-rate-beyond-scale"),
    pytest.param(pricebook('pro = "399.00"', 'pro = "1000000000"'), Stop(
        "pricebook.toml: version #1, key 'plan_fee.pro': '1000000000' is too large (the "
        "batch accepts figures below 1,000,000,000)"), id="pricebook-price-too-large"),
    pytest.param(pricebook('KR = "0.10"', 'KR = "10"'), Stop(
        "pricebook.toml: version #1, key 'tax.KR': '10' is too large (the batch accepts "
        "figures below 1)"), id="pricebook-tax-rate-as-percent"),
    pytest.param(pricebook('"6000" = "99.00"', '"03000" = "99.00"'), Stop(
        "pricebook.toml: version #1, key 'addon.group_member_limit.03000': the same tier "
        "as '3000'"), id="pricebook-duplicate-tier"),
    pytest.param(pricebook('free_quota = 10000', 'free_quota = 10000000000000000'), Stop(
        "pricebook.toml: version #1, key 'dau_overage.free_quota': 10000000000000000 is too "
        "large (the batch accepts up to 1,000,000,000,000,000)"), id="pricebook-quota-too-large"),
    pytest.param(rebuild(lambda b: b.event(2, d(5), "group_member_limit", "lots")), Stop(
        "subscription_events.parquet, column 'value', row 3: tier 'lots' of "
        "group_member_limit (app 2) is not a whole number up to 1,000,000,000,000,000 (or "
        "off)"), id="non-numeric-tier"),
    pytest.param(rebuild(lambda b: b.day(1, d(3), dau=10**15 + 1)), Stop(
        "usage/part=0/usage.parquet, column 'dau', row 4: 1,000,000,000,000,001 is above the "
        "largest value the batch bills exactly (1,000,000,000,000,000)"), id="dau-too-large"),
    pytest.param(rebuild(lambda b: b.day(1, d(3), groups=2**63 - 1)), Stop(
        "usage/part=0/usage.parquet, column 'group_count', row 4: 9,223,372,036,854,775,807 "
        "is above the largest value the batch bills exactly (1,000,000,000,000,000)"),
        id="group-count-int64-max"),
]


@pytest.mark.parametrize(("prepare", "expected"), ERRORS)
def test_bad_input_stops_with_one_line(prepare: Prepare, expected: Stop, tmp_path: Path
                                       ) -> None:
    folder = base().write(tmp_path / "in")
    prepare(folder)
    out = tmp_path / "out"
    assert_stopped(run(folder, out), expected.code, expected.message.format(input=folder), out)


# --- conflicts: exit 4 ------------------------------------------------------------------------


def test_conflicting_rows_in_one_file(tmp_path: Path) -> None:
    folder = base().day(2, d(1), dau=71).write(tmp_path / "in")
    assert_stopped(
        run(folder, tmp_path / "out"), ExitCode.USAGE_CONFLICT,
        f"usage conflict: app 2 on 2026-10-01 has different rows ({USAGE} row 3: dau=70 "
        f"group_count=10 live_group_count=None; {USAGE} row 4: dau=71 group_count=10 "
        "live_group_count=None). Fix the export, or rerun with --on-conflict max to bill the "
        "larger values.", tmp_path / "out")


def test_conflicting_rows_across_files_name_both_files(tmp_path: Path) -> None:
    # Rows alternate between part=0 and part=1: base rows 1-3 go to part=0 row 1,
    # part=1 row 1, part=0 row 2; then part=1 row 2, part=0 row 3, part=1 row 3.
    b = base()
    b.day(2, d(5), dau=1)
    b.day(1, d(2), dau=60, groups=11)  # conflicts with part=1 row 1
    b.day(2, d(1), dau=70, live=5)  # conflicts with part=0 row 2
    folder = b.write(tmp_path / "in", usage_files=2)
    assert_stopped(
        run(folder, tmp_path / "out"), ExitCode.USAGE_CONFLICT,
        "usage conflict: app 1 on 2026-10-02 has different rows (usage/part=0/usage.parquet "
        "row 3: dau=60 group_count=11 live_group_count=None; usage/part=1/usage.parquet row 1: "
        "dau=60 group_count=10 live_group_count=None); 1 more app-days conflict. Fix the "
        "export, or rerun with --on-conflict max to bill the larger values.", tmp_path / "out")


# --- rows rejected: exit 0 ------------------------------------------------------------------

REJECTED: list[Any] = [
    pytest.param((99, d(3), 5, 1, None), "unknown sdk_app_id", id="unknown-app"),
    pytest.param((1, d(30, 9), 5, 1, None), "date outside 2026-10", id="date-before-month"),
    pytest.param((1, d(1, 11), 5, 1, None), "date outside 2026-10", id="date-after-month"),
    pytest.param((None, d(3), 5, 1, None), "null sdk_app_id", id="null-app"),
    pytest.param((1, None, 5, 1, None), "null date", id="null-date"),
    pytest.param((1, d(3), None, 1, None), "null dau", id="null-dau"),
    pytest.param((1, d(3), 5, None, None), "null group_count", id="null-group-count"),
    pytest.param((1, d(3), -5, 1, None), "negative dau", id="negative-dau"),
    pytest.param((1, d(3), 5, -1, None), "negative group_count", id="negative-group-count"),
    pytest.param((1, d(3), 5, 1, -2), "negative live_group_count",
                 id="negative-live-group-count"),
]


def rejected_rows(out: Path) -> list[tuple[Any, ...]]:
    frame = pl.read_parquet(out / "2026-10/rejected_rows.parquet")
    return frame.select("source_file", "source_row", "sdk_app_id", "date", "dau", "reason").rows()


@pytest.mark.parametrize(("row", "reason"), REJECTED)
def test_unbillable_usage_row_is_rejected_with_reason(row: tuple[Any, ...], reason: str,
                                                      tmp_path: Path) -> None:
    b = base()
    b.usage.append(row)
    folder = b.write(tmp_path / "in")
    out = tmp_path / "out"
    result = run(folder, out)
    assert result.exit_code == 0, result.output
    assert ("usage rows: 4 read, 3 billed, 0 duplicates collapsed, 0 conflicts merged, "
            "1 rejected (rejected_rows.parquet)") in result.output
    assert rejected_rows(out) == [(USAGE, 4, row[0], row[1], row[2], reason)]


def test_empty_cell_in_usage_csv_is_rejected(tmp_path: Path) -> None:
    folder = base().write(tmp_path / "in")
    usage_csv("sdk_app_id,date,dau,group_count\n1,2026-10-03,5,1\n1,2026-10-04,,1\n")(folder)
    out = tmp_path / "out"
    result = run(folder, out)
    assert result.exit_code == 0, result.output
    assert "usage rows: 5 read, 4 billed, 0 duplicates collapsed" in result.output
    assert rejected_rows(out) == [("usage/extra.csv", 2, 1, d(4), None, "null dau")]


# --- accepted -------------------------------------------------------------------------------


def published(out: Path) -> dict[str, pl.DataFrame]:
    """The month's tables. ``pdf_sha256`` is left out: a PDF prints the run id, which is
    derived from the input files' hashes, so it differs whenever an input file does."""
    month = out / "2026-10"
    return {
        name: pl.read_parquet(month / name).drop("pdf_sha256", strict=False)
        for name in ("line_items.parquet", "invoices.parquet", "rejected_rows.parquet",
                     "anomalies.parquet")
    }


def assert_same_tables(got: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame]
                       ) -> None:
    assert got.keys() == expected.keys()
    for name, frame in expected.items():
        # The CSV variants hold other buyer names and addresses (printed, not billed).
        buyer = [c for c in frame.columns if c.startswith("buyer_")]
        assert got[name].drop(buyer).equals(frame.drop(buyer)), name


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    """The tables of the base month, run as is."""
    tmp = tmp_path_factory.mktemp("clean")
    result = run(base().write(tmp / "in"), tmp / "out")
    assert result.exit_code == 0, result.output
    return published(tmp / "out")


def add_column(name: str, values: pa.Array) -> Callable[[pa.Table], pa.Table]:
    return lambda table: table.append_column(name, values)


ACCEPTED: list[Any] = [
    pytest.param(both(
        parquet(USAGE, add_column("region", pa.array(["us", "us", "kr"]))),
        parquet("apps.parquet", add_column("created_at", pa.array([d(1), d(2)]))),
        parquet("subscription_events.parquet", add_column("changed_by", pa.array(["a", "b"]))),
        customers_csv(lambda rows: [r.update(segment="smb") for r in rows]),
    ), id="extra-columns-ignored"),
    pytest.param(customers_csv(bom=True), id="customers-csv-bom"),
    pytest.param(customers_csv(bom=True, quoting=csv.QUOTE_ALL), id="customers-csv-bom-quoted"),
    pytest.param(customers_csv(line_end="\r\n"), id="customers-csv-crlf"),
    pytest.param(apps_csv(APPS_HEADER + "1,c1,App 1\n2,c2,App 2\n", bom=True),
                 id="apps-csv-bom"),
    pytest.param(both(parquet(USAGE, drop_column("live_group_count")),
                      lambda folder: pq.write_table(USAGE_SCHEMA.empty_table(),
                                                    folder / "usage/empty.parquet")),
                 id="no-live-group-count-and-an-empty-file"),
    # A column null in every row, as pandas and Polars write it: Arrow type null.
    pytest.param(both(parquet(USAGE, set_column("live_group_count", pa.nulls(3))),
                      parquet("customers.parquet", set_column("tax_id", pa.nulls(2)))),
                 id="null-typed-nullable-columns"),
    # A version need not list the add-ons nobody uses in the month.
    pytest.param(lambda folder: (folder / "pricebook.toml").write_text(
        PRICEBOOK_USD.format(policy="month_start").split("[version.addon.")[0]
        + '[version.tax]\nKR = "0.10"\n', encoding="utf-8"), id="pricebook-without-add-ons"),
]


@pytest.mark.parametrize("prepare", ACCEPTED)
def test_accepted_variant_bills_like_the_clean_month(prepare: Prepare, tmp_path: Path,
                                                     clean: dict[str, pl.DataFrame]) -> None:
    folder = base().write(tmp_path / "in")
    prepare(folder)
    out = tmp_path / "out"
    result = run(folder, out)
    assert result.exit_code == 0, result.output
    assert ("usage rows: 3 read, 3 billed, 0 duplicates collapsed, 0 conflicts merged, "
            "0 rejected") in result.output
    assert_same_tables(published(out), clean)


def test_quoted_newlines_in_csv_addresses_survive(tmp_path: Path) -> None:
    folder = base().write(tmp_path / "in")
    customers_csv(bom=True)(folder)
    inputs = load_inputs(folder, models=MODELS)
    # The optional columns (structured address, e-invoice format, ...) read as null.
    assert inputs.customers.columns == list(CUSTOMERS_COLUMNS)
    assert inputs.customers["city"].to_list() == [None, None]
    assert inputs.customers["address"].to_list() == ["1 Main St\nSpringfield",
                                                     "서울특별시 강남구\n테헤란로 1"]
    assert inputs.customers["tax_id"].to_list() == [None, None]


def test_exact_duplicates_are_collapsed_and_counted(tmp_path: Path,
                                                    clean: dict[str, pl.DataFrame]) -> None:
    b = base()
    b.day(1, d(1), dau=50).day(1, d(1), dau=50)  # two more copies of row 1
    b.day(2, d(1), dau=70)  # one more copy of row 3, lands in the other file
    folder = b.write(tmp_path / "in", usage_files=2)
    out = tmp_path / "out"
    result = run(folder, out)
    assert result.exit_code == 0, result.output
    assert ("usage rows: 6 read, 3 billed, 3 duplicates collapsed, 0 conflicts merged, "
            "0 rejected") in result.output
    assert_same_tables(published(out), clean)
