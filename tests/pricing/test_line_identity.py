"""Every line multiplies out: ``amount = round_half_up(quantity × unit_price)``.

A customer checks a line with a pocket calculator; an auditor does the same for every
row of ``line_items.parquet``. The identity must hold at the currency's minor unit for
every kind of line, prorated plan fees included (their unit price is the monthly fee,
their quantity the share of the month rounded up at 21 decimals), on the shipped sample
month, on prorated months built for the purpose and on a generated month.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from pathlib import Path

import polars as pl
import pytest

from benchmarks.synth import SynthSpec, generate
from invoicing.core.money import minor_units, round_half_up
from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month
from tests.builders import PRICEBOOK_KRW, PRICEBOOK_USD, MonthBuilder, d

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "2026-10"


def _lines_that_do_not_multiply_out(line_items: pl.DataFrame) -> list[str]:
    bad = []
    for row in line_items.to_dicts():
        with localcontext() as ctx:  # the exact product: 21 + 15 digits, and more
            ctx.prec = 80
            expected = round_half_up(row["quantity"] * row["unit_price"],
                                     minor_units(row["currency"]))
        if expected != row["amount"]:
            bad.append(f"{row['sdk_app_id']} {row['item']} {row['plan']}: {row['quantity']} × "
                       f"{row['unit_price']} = {expected}, line says {row['amount']}")
    return bad


def test_every_line_of_the_sample_month_multiplies_out() -> None:
    line_items = compute_month(SAMPLE, Month(2026, 10)).assembled.line_items
    assert line_items.height == 168
    assert _lines_that_do_not_multiply_out(line_items) == []
    # The sample's CNY price book prorates: 云帆IM was on Flagship 9 days, Pro 22 days.
    prorated = line_items.filter((pl.col("sdk_app_id") == 1400001101)
                                 & (pl.col("item") == "plan_fee"))
    assert prorated.select("plan", "quantity", "unit_price", "amount").rows() == [
        # 9/31 and 22/31 of the month, rounded up at 21 decimals, at the monthly fee
        ("flagship", Decimal("0.290322580645161290323"), Decimal("2999"), Decimal("870.68")),
        ("pro", Decimal("0.709677419354838709678"), Decimal("999"), Decimal("708.97")),
    ]


@pytest.mark.parametrize("book, currency", [
    (PRICEBOOK_USD, "USD"),
    (PRICEBOOK_KRW, "KRW"),
    # Prices with every digit the price book allows, where rounding is most fragile.
    (PRICEBOOK_USD.replace('pro = "399.00"', 'pro = "0.155555"')
     .replace('flagship = "1199.00"', 'flagship = "987654321.987654"'), "USD"),
])
@pytest.mark.parametrize("month", [Month(2026, 10), Month(2026, 2), Month(2026, 11)])
def test_every_prorated_line_multiplies_out(tmp_path: Path, book: str, currency: str,
                                            month: Month) -> None:
    b = MonthBuilder(pricebook=book.format(policy="prorate_daily"))
    b.customer("c1", currency=currency, country="KR" if currency == "KRW" else "US",
               locale="ko_KR" if currency == "KRW" else "en_US")
    for day in range(1, month.days + 1):  # every split of the month between two plans
        app = 100 + day
        b.app(app, "c1", plan="pro", since=d(1, 1)).event(
            app, d(day, month.month, month.year), "plan", "flagship")
        b.day(app, d(day, month.month, month.year), dau=25_000)
    computed = compute_month(b.write(tmp_path / "in"), month)
    fees = computed.assembled.line_items.filter(pl.col("item") == "plan_fee")
    assert fees.height == 2 * month.days - 1  # day 1: Flagship all month
    assert set(fees["days_in_month"]) == {month.days}
    assert _lines_that_do_not_multiply_out(computed.assembled.line_items) == []


def test_every_line_of_a_generated_month_multiplies_out(tmp_path: Path) -> None:
    month = Month(2026, 10)
    generate(SynthSpec(n_apps=2_000, n_customers=200, days=31, seed=14, month=month),
             tmp_path / "month")
    line_items = compute_month(tmp_path / "month", month).assembled.line_items
    assert line_items.filter(pl.col("days_on_plan").is_not_null()).height > 0
    assert _lines_that_do_not_multiply_out(line_items) == []
