"""Every value the contract allows is priced exactly or refused (issue 10): int64 app ids
of any size, metrics up to 10^15, price-book figures at full precision, tiers as
numbers, optional price-book parts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
from click.testing import CliRunner

from invoicing.cli import main
from invoicing.core.errors import ExitCode
from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month
from tests.builders import PRICEBOOK_USD, MonthBuilder, d, run_cli

OCT = Month(2026, 10)


def lines_of(folder: Path) -> pl.DataFrame:
    return compute_month(folder, OCT).assembled.line_items


def test_app_ids_anywhere_in_int64_keep_their_own_usage(tmp_path: Path) -> None:
    ids = [-(2**63), -5, 2**57 + 3, 2**62, 2**63 - 1]
    b = MonthBuilder().customer("c1")
    for i, app in enumerate(ids):
        b.app(app, "c1").day(app, d(2), dau=10_000 + (i + 1) * 10_000)
    lines = lines_of(b.write(tmp_path / "in")).filter(pl.col("item") == "dau_overage")
    assert lines.select("sdk_app_id", "peak_value", "quantity").rows() == [
        (app, 10_000 + (i + 1) * 10_000, i + 1) for i, app in enumerate(ids)]


def test_metrics_up_to_the_limit_are_priced_exactly(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1").app(1, "c1")
    b.day(1, d(5), dau=10**15, groups=10**15)
    lines = lines_of(b.write(tmp_path / "in"))
    dau = lines.filter(pl.col("item") == "dau_overage").row(0, named=True)
    blocks = (10**15 - 10_000 + 9_999) // 10_000
    assert (dau["peak_value"], dau["peak_date"], dau["quantity"]) == (10**15, d(5), blocks)
    assert dau["amount"] == Decimal(blocks) * Decimal("149.99")
    groups = lines.filter(pl.col("item") == "group_overage").row(0, named=True)
    assert groups["amount"] == Decimal((10**15 - 100_000 + 99_999) // 100_000) * Decimal("149.99")


def test_price_book_figures_keep_their_precision(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1", country="KR").app(1, "c1")
    b.pricebook = b.pricebook.replace('pro = "399.00"', 'pro = "399.004999"').replace(
        'KR = "0.10"', 'KR = "0.123457"')
    invoice = compute_month(b.write(tmp_path / "in"), OCT).assembled.invoices.row(0, named=True)
    assert (invoice["subtotal"], invoice["tax_rate"], invoice["tax"]) == (
        Decimal("399.00"), Decimal("0.123457"), Decimal("49.26"))  # 49.259343 rounds up


def tiered_month(pricebook_key: str, event_value: str) -> MonthBuilder:
    b = MonthBuilder().customer("c1").app(1, "c1").day(1, d(1))
    b.event(1, d(3), "history_retention_days", event_value)
    b.pricebook = b.pricebook.replace('"60" = "29.00"', f'"{pricebook_key}" = "29.00"')
    return b


def test_a_tier_is_a_number_in_the_price_book_and_in_events(tmp_path: Path) -> None:
    for i, (key, value) in enumerate([("060", "60"), ("60", "0060"), ("0060", "060")]):
        folder = tiered_month(key, value).write(tmp_path / f"in{i}")
        addon = lines_of(folder).filter(pl.col("item") == "history_retention_days")
        assert addon.select("tier", "unit_price", "amount").rows() == [
            ("60", Decimal("29.00"), Decimal("29.00"))], (key, value)
        # preview and run agree on it
        preview = CliRunner().invoke(main, ["preview", "--month", "2026-10", "--input",
                                            str(folder), "--allow-incomplete"])
        assert "  c1  IM-202610-000001  USD 428.00" in preview.output.splitlines(), preview.output
        run = run_cli(folder, tmp_path / f"out{i}")
        assert "  total USD: 428 (subtotal 428, tax 0, 1 invoices)" in run.output, run.output


def test_a_version_without_tax_table_charges_no_tax(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1", country="KR").app(1, "c1").day(1, d(1))
    b.pricebook = PRICEBOOK_USD.format(policy="month_start").split("[version.tax]")[0]
    invoice = compute_month(b.write(tmp_path / "in"), OCT).assembled.invoices.row(0, named=True)
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (
        Decimal("399.00"), Decimal("0"), Decimal("399.00"))


def test_a_missing_add_on_is_an_error_only_when_an_event_in_force_needs_it(tmp_path: Path
                                                                          ) -> None:
    without_av = PRICEBOOK_USD.format(policy="month_start").replace(
        '[version.addon.av_call]\ntrial_days = 60\nprice = "59.00"\n', "")
    # switched off before the month: nothing needs its price
    b = MonthBuilder().customer("c1").app(1, "c1").day(1, d(1))
    b.event(1, d(1, 5), "av_call", "on").event(1, d(1, 9), "av_call", "off")
    b.pricebook = without_av
    assert lines_of(b.write(tmp_path / "off")).height == 3
    # on during the month: refused, naming the event
    b.event(1, d(20), "av_call", "on")
    result = run_cli(b.write(tmp_path / "on"), tmp_path / "out")
    assert result.exit_code == ExitCode.INPUT_ERROR
    assert result.output == ("Error: subscription_events.parquet, column 'value', row 4: "
                             "av_call (app 1) is not in the USD price book\n")
