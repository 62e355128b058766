"""R2 and R3: overage on the monthly peak of a daily metric, billed in whole blocks."""

from __future__ import annotations

from datetime import date

import polars as pl

from invoicing.core.catalogue import PAID_PLANS
from invoicing.load.pricebook import MAX_QUANTITY
from invoicing.pricing.lines import line_amount
from invoicing.pricing.states import PLAN_DTYPE


def block_overage(peak: pl.Expr, quota: pl.Expr, block: pl.Expr, price: pl.Expr
                  ) -> dict[str, pl.Expr]:
    """The block model: ``blocks = ceil(max(0, peak − quota) / block)``, amount = blocks × price.

    Returns the amount with its breakdown, so the invoice can show how it was reached.
    Integer arithmetic only: ``ceil(a / b) = (a + b − 1) // b`` for a >= 0, b > 0.
    """
    excess = pl.max_horizontal(peak - quota, pl.lit(0, dtype=pl.Int64))
    blocks = (excess + block - 1) // block
    return {
        "excess": excess,
        "quantity": blocks,
        "unit_price": price,
        "amount": line_amount(price, blocks),
    }


METRICS: dict[str, tuple[str, str, str, str, str]] = {
    # item: (usage column, quota column, block column, price column, label)
    "dau_overage": ("dau", "dau_free_quota", "dau_block", "dau_price", "DAU"),
    "group_overage": ("group_count", "group_free_quota", "group_block", "group_price",
                      "Peak group count"),
}


def overage_lines(usage_with_plan: pl.LazyFrame, app_prices: pl.LazyFrame, month_start: date
                  ) -> pl.LazyFrame:
    """One line per app and metric for every app with usage on a Pro or Flagship day.

    The peak is the metric's maximum over those days (R2: days on Free never bill),
    dated by its first day. The line is kept even at 0 blocks: it is the evidence that
    the peak stayed within the quota.
    """
    paid = usage_with_plan.filter(pl.col("plan").is_in(list(PAID_PLANS)))
    # One pass over the paid days for both metrics, with plain `max` aggregations. The
    # peak day is the first day with the maximum, so each day is packed into one
    # integer whose order is (value descending, date ascending), with the day's plan in
    # the lowest bits: key = ((value × 64) + (32 − day)) × 4 + plan code. The maximum
    # key decodes to the peak value, its first day and that day's plan.
    # Bounds: `validate` refuses metrics above MAX_QUANTITY, so the key fits in an int64.
    assert MAX_QUANTITY * 64 * 4 + 31 * 4 + 3 < 2**63
    day = pl.col("date").dt.day().cast(pl.Int64)
    plan_code = pl.col("plan").to_physical().cast(pl.Int64)
    peaks = (
        paid.group_by("sdk_app_id")
        .agg([((pl.col(metric) * 64 + (32 - day)) * 4 + plan_code).max().alias(item)
              for item, (metric, *_rest) in METRICS.items()])
        .join(app_prices, on="sdk_app_id")
    )
    plan_of_code = dict(enumerate(PLAN_DTYPE.categories))
    frames = []
    for item, (_metric, quota, block, price, label) in METRICS.items():
        model = block_overage(pl.col("peak_value"), pl.col(quota), pl.col(block), pl.col(price))
        frames.append(
            peaks.with_columns(
                peak_value=pl.col(item) // 256,
                peak_date=pl.lit(month_start) + pl.duration(
                    days=31 - (pl.col(item) // 4) % 64),
                plan=(pl.col(item) % 4).replace_strict(plan_of_code, return_dtype=pl.String),
            )
            .with_columns(free_quota=pl.col(quota), block=pl.col(block), **model)
            .with_columns(
                item=pl.lit(item),
                description=pl.format(
                    "{} overage: peak {} on {}, free quota {}, excess {}, {} block(s) of {}",
                    pl.lit(label), pl.col("peak_value"), pl.col("peak_date"),
                    pl.col("free_quota"), pl.col("excess"), pl.col("quantity"), pl.col("block"),
                ),
            )
        )
    return pl.concat(frames, how="diagonal_relaxed")
