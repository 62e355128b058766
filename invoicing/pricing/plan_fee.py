"""R1: the monthly plan fee, under either plan-fee policy of the price book."""

from __future__ import annotations

import polars as pl

from invoicing.core.catalogue import PLANS
from invoicing.core.money import MONEY, QUANTITY, month_share
from invoicing.core.timeframe import Month
from invoicing.pricing.lines import line_amount


def fee_of_plan() -> pl.Expr:
    """The monthly fee of the row's ``plan``, from the price columns ``fee_<plan>`` of
    `pricebook.versions_frame` (one per plan of the catalogue); null for no plan."""
    fee: pl.Expr = pl.lit(None, dtype=MONEY)
    for plan in PLANS:
        fee = pl.when(pl.col("plan") == plan).then(pl.col(f"fee_{plan}")).otherwise(fee)
    return fee


def plan_fee_lines(plan_segments: pl.LazyFrame, app_prices: pl.LazyFrame, month: Month
                   ) -> pl.LazyFrame:
    """One line per app (``month_start``) or per app and plan (``prorate_daily``).

    ``month_start``: the plan in force on the 1st is charged in full; an app with no
    plan on the 1st pays nothing. ``prorate_daily``: each plan is charged
    ``fee × days_on_plan / days_in_month``, rounded once (R1, R7), with the days summed
    per plan. The unit price is the monthly fee and the quantity the share of the month
    (`money.month_share`, 22/31 stored at 21 decimals), so that the line multiplies out:
    ``amount = round_half_up(quantity × unit_price)``.
    """
    segs = plan_segments.rename({"value": "plan"}).join(app_prices, on="sdk_app_id")

    month_start = (
        segs.filter((pl.col("plan_fee_policy") == "month_start")
                    & (pl.col("start") == pl.lit(month.start)))
        .with_columns(
            quantity=pl.lit(1, dtype=pl.Int64),
            unit_price=fee_of_plan(),
        )
        .with_columns(
            amount=line_amount(pl.col("unit_price"), pl.col("quantity")),
            description=pl.format("{} plan, in force on {}", pl.col("plan").str.to_titlecase(),
                                  pl.lit(month.start.isoformat())),
        )
    )
    prorated = (
        segs.filter(pl.col("plan_fee_policy") == "prorate_daily")
        .group_by("sdk_app_id", "plan")
        .agg(pl.col("days").sum().alias("days_on_plan"), pl.exclude("days", "start", "end").first())
        .with_columns(
            days_in_month=pl.lit(month.days, dtype=pl.Int64),
            quantity=pl.col("days_on_plan").replace_strict(
                {d: month_share(d, month.days) for d in range(1, month.days + 1)},
                return_dtype=QUANTITY),
            unit_price=fee_of_plan(),
        )
        .with_columns(
            amount=line_amount(pl.col("unit_price"), pl.col("days_on_plan"),
                               pl.col("days_in_month")),
            description=pl.format("{} plan, {} of {} days", pl.col("plan").str.to_titlecase(),
                                  pl.col("days_on_plan"), pl.col("days_in_month")),
        )
    )
    return pl.concat([month_start, prorated], how="diagonal_relaxed").with_columns(
        item=pl.lit("plan_fee")
    )
