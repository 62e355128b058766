"""Exact money: the one place that decides decimal types, minor units and rounding.

SPEC R7: every line amount is rounded once, half-up, to the currency's minor unit;
tax is ``round_half_up(subtotal × rate)``. Polars' ``half_away_from_zero`` is the
same rule as Python's ``ROUND_HALF_UP`` (both round ties away from zero).

Polars multiplies two decimals at the *larger* of the two scales, which silently
drops digits (``1.05 × 0.125`` at scale 3). Every product and quotient in the
pricing path therefore first casts its operands to `WORK` (scale 12), where all
products of price-book figures are exact, and rounds once at the end.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from functools import cache

import polars as pl
from babel.numbers import get_currency_precision, list_currencies

#: Digits after the point of prices and amounts in frames and Parquet files.
MONEY_SCALE = 6
#: Type of prices and amounts in frames and Parquet files.
MONEY = pl.Decimal(38, MONEY_SCALE)
#: Scale of `QUANTITY`: a prorated share of a month such as 22/31 is stored rounded up at
#: 21 decimals, so that ``round_half_up(quantity × unit_price)`` equals the exactly
#: prorated amount for every price the price book accepts (see `month_share`).
QUANTITY_SCALE = 21
#: Type of line quantities: whole numbers of blocks or months, or a share of a month.
QUANTITY = pl.Decimal(38, QUANTITY_SCALE)
#: Type of intermediate products before rounding (exact for price-book figures).
WORK = pl.Decimal(38, 12)
#: Type of tax rates.
RATE = pl.Decimal(38, 6)


def to_decimal(text: str | int | Decimal, what: str) -> Decimal:
    """Parse a price-book figure without ever passing through a float."""
    if isinstance(text, bool | float):
        raise ValueError(f"{what}: money must be written as a quoted decimal string, got {text!r}")
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise ValueError(f"{what}: {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"{what}: {text!r} is not a finite number")
    return value


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def minor_units(currency: str) -> int:
    """Digits after the decimal point for `currency` (USD 2, KRW 0), from CLDR via Babel."""
    if currency not in known_currencies():
        raise ValueError(f"unknown currency {currency!r} (not an ISO 4217 code known to CLDR)")
    return int(get_currency_precision(currency))


def round_half_up(value: Decimal, digits: int) -> Decimal:
    """Round a Python Decimal half-up (ties away from zero) to `digits` places."""
    return value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def month_share(days: int, days_in_month: int) -> Decimal:
    """``days / days_in_month`` rounded up at `QUANTITY_SCALE` decimals: the quantity of a
    prorated plan fee.

    Why it multiplies out at any price: for a price p < 10^9 with at most 6 decimals, the
    exact amount ``p × days / days_in_month`` is either exactly a tie of the minor unit or
    at least ``1 / (2 × 10^(minor+6) × days_in_month)`` (> 1.6e-11) away from one, and
    the share rounded up adds less than ``p × 10^-21`` (< 1e-12), upwards: the one
    half-up rounding gives the same amount.
    """
    with localcontext() as ctx:
        ctx.prec = 60
        share = Decimal(days) / Decimal(days_in_month)
        return share.quantize(Decimal(1).scaleb(-QUANTITY_SCALE), rounding=ROUND_CEILING)


def in_minor_units(amount: Decimal, currency: str) -> Decimal:
    """An already-rounded amount shown with exactly the currency's digits (``399.00``).

    Frames store money at a fixed wide scale; this trims it for display without changing
    the value (it raises if the amount had more digits than the currency allows). Zero is
    always ``0.00``, never the negated zero ``-0.00`` that negating a zero amount gives
    (an e-invoice validator reads ``-0.00`` as not zero).
    """
    exp = Decimal(1).scaleb(-minor_units(currency))
    shown = amount.quantize(exp)
    if shown != amount:
        raise ValueError(f"{amount} {currency} is not rounded to the currency's minor unit")
    return shown.copy_abs() if shown.is_zero() else shown


def round_money_expr(expr: pl.Expr, digits: pl.Expr) -> pl.Expr:
    """Round a decimal expression half-up to a per-row number of digits.

    Polars' `round` takes a constant number of digits, so the frame's currencies are
    handled by one `when` branch per distinct precision (at most a handful: 0, 2, 3).
    """
    rounded: pl.Expr = pl.lit(None, dtype=MONEY)
    for d in (4, 3, 2, 1, 0):
        rounded = pl.when(digits == d).then(
            expr.round(d, mode="half_away_from_zero").cast(MONEY)
        ).otherwise(rounded)
    return rounded
