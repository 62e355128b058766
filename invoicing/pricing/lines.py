"""The shape every pricing rule returns: one row per charge, with its evidence.

Each rule fills the columns it has evidence for and leaves the rest null; `conform`
gives every rule's frame the same columns and types so they can be concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from invoicing.core.money import MONEY, QUANTITY, WORK, round_money_expr

LINE_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "sdk_app_id": pl.Int64(),
    "item": pl.String(),
    "description": pl.String(),
    "quantity": QUANTITY,
    "unit_price": MONEY,
    "amount": MONEY,
    "currency": pl.String(),
    "plan": pl.String(),
    "tier": pl.String(),
    "peak_value": pl.Int64(),
    "peak_date": pl.Date(),
    "free_quota": pl.Int64(),
    "block": pl.Int64(),
    "excess": pl.Int64(),
    "bands": pl.String(),
    "days_on_plan": pl.Int64(),
    "days_in_month": pl.Int64(),
    "active_days": pl.Int64(),
    "first_active": pl.Date(),
    "last_active": pl.Date(),
    "trial_end": pl.Date(),
    "pricebook_version": pl.String(),
}


def conform(frame: pl.LazyFrame, keep: Sequence[str] = ()) -> pl.LazyFrame:
    """Select `LINE_SCHEMA`'s columns in order, adding the missing ones as nulls; then
    the columns named in `keep` (working columns the caller drops later)."""
    names = frame.collect_schema().names()
    return frame.select(
        [
            pl.col(name).cast(dtype) if name in names else pl.lit(None, dtype=dtype).alias(name)
            for name, dtype in LINE_SCHEMA.items()
        ] + [pl.col(name) for name in keep]
    )


def line_amount(unit_price: pl.Expr, multiplier: pl.Expr, divisor: pl.Expr | None = None
                ) -> pl.Expr:
    """``unit_price × multiplier [/ divisor]`` rounded once, half-up, to the minor unit (R7).

    Operands are widened to `WORK` first: Polars multiplies decimals at the larger of the
    two scales, and the one rounding must happen on the exact product.
    """
    exact = unit_price.cast(WORK) * multiplier.cast(WORK)
    if divisor is not None:
        exact = exact / divisor.cast(WORK)
    return round_money_expr(exact, pl.col("minor_units"))
