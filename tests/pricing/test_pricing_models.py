"""Each pricing model alone, on a small literal frame: expressions in, exact values out
(one spec per charge model, as Lago has one per model)."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from invoicing.core.money import MONEY, in_minor_units, round_money_expr
from invoicing.pricing.addons import tier_value
from invoicing.pricing.lines import line_amount
from invoicing.pricing.models import blocks
from invoicing.pricing.plan_fee import fee_of_plan


def money(*values: str) -> pl.Series:
    return pl.Series([Decimal(v) for v in values], dtype=MONEY)


def test_block_overage_counts_partial_blocks_whole() -> None:
    frame = pl.DataFrame({
        "peak": [9_999, 10_000, 10_001, 20_000, 20_001, 10**15],
        "free_quota": [10_000] * 6, "block": [10_000] * 6,
        "price_per_block": money(*["149.99"] * 6), "minor_units": [2] * 6,
    })
    got = frame.select(**blocks.price(pl.col("peak"), frame))
    assert got["excess"].to_list() == [0, 0, 1, 10_000, 10_001, 10**15 - 10_000]
    assert got["quantity"].to_list() == [0, 0, 1, 1, 2, 99_999_999_999]
    assert got["amount"].to_list() == [Decimal("0.00"), Decimal("0.00"), Decimal("149.99"),
                                       Decimal("149.99"), Decimal("299.98"),
                                       Decimal("14998999999850.01")]


def test_line_amount_rounds_once_half_up_at_each_currency_minor_unit() -> None:
    frame = pl.DataFrame({
        "price": money("2999.00", "999.00", "550000", "0.125"),
        "days": [9, 22, 17, 1], "month": [31, 31, 31, 1], "minor_units": [2, 2, 0, 2],
    })
    got = frame.select(a=line_amount(pl.col("price"), pl.col("days"), pl.col("month")))["a"]
    # 870.677.. -> 870.68; 708.967.. -> 708.97; 301612.9.. -> 301613; 0.125 -> 0.13 (half up)
    assert got.to_list() == [Decimal("870.68"), Decimal("708.97"), Decimal("301613"),
                             Decimal("0.13")]


@pytest.mark.parametrize(("value", "digits", "expected"), [
    ("2.345", 2, "2.35"), ("-2.345", 2, "-2.35"), ("2.5", 0, "3"), ("2.4999", 0, "2"),
    ("385.065", 2, "385.07"), ("0.0005", 3, "0.001"),
])
def test_round_money_is_half_up_away_from_zero(value: str, digits: int, expected: str) -> None:
    frame = pl.DataFrame({"v": money(value), "d": [digits]})
    assert frame.select(round_money_expr(pl.col("v"), pl.col("d")))["v"][0] == Decimal(expected)


def test_fee_of_plan_reads_the_plan_column_of_the_catalogue() -> None:
    frame = pl.DataFrame({
        "plan": ["free", "pro", "flagship", None],
        "fee_free": money("0", "0", "0", "0"),
        "fee_pro": money("399.00", "399.00", "399.00", "399.00"),
        "fee_flagship": money("1199.00", "1199.00", "1199.00", "1199.00"),
    })
    assert frame.select(f=fee_of_plan())["f"].to_list() == [
        Decimal("0"), Decimal("399.00"), Decimal("1199.00"), None]


def test_tier_value_orders_on_off_and_numeric_tiers() -> None:
    frame = pl.DataFrame({"value": ["on", "off", "3000", "60"]})
    assert frame.select(t=tier_value())["t"].to_list() == [1, None, 3000, 60]


def test_minor_units_never_show_a_negated_zero() -> None:
    """Negating a zero amount (a credit note's zero line) gives Decimal('-0.00'); shown, it
    is 0.00, which every e-invoice validator reads as zero (BR-AE-09, BR-Z-09)."""
    assert str(in_minor_units(-Decimal("0.00"), "EUR")) == "0.00"
    assert str(in_minor_units(-Decimal("0"), "KRW")) == "0"
    assert str(in_minor_units(-Decimal("1.50"), "EUR")) == "-1.50"
