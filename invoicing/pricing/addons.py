"""R4 and R5: add-ons, charged their full monthly price in any month they are active.

A day counts for an add-on when it is active (any value but ``off``) and its tier
exceeds what that day's plan already includes (Flagship includes unlimited
live-broadcast groups; the numeric limits are in `catalogue.INCLUDED_TIER`). The add-on
is charged once, at the price of the highest tier among counting days.
"""

from __future__ import annotations

import polars as pl

from invoicing.core.catalogue import INCLUDED_TIER, included_tier_frame
from invoicing.core.timeframe import Month
from invoicing.pricing.lines import line_amount
from invoicing.pricing.states import Subscriptions, with_plan_overlaps


def tier_value() -> pl.Expr:
    """Order tiers: ``on`` is 1, a numeric tier is its number, ``off`` is null (inactive)."""
    return (
        pl.when(pl.col("value") == "on").then(pl.lit(1, dtype=pl.Int64))
        .when(pl.col("value") == "off").then(pl.lit(None, dtype=pl.Int64))
        .otherwise(pl.col("value").cast(pl.Int64, strict=False))
    )


def addon_lines(subs: Subscriptions, app_prices: pl.LazyFrame, addon_prices: pl.LazyFrame,
                month: Month) -> pl.LazyFrame:
    """One line per (app, add-on) with at least one counting day in the month."""
    pieces = with_plan_overlaps(
        subs.segments.lazy().filter(
            pl.col("item").is_in(list(INCLUDED_TIER)) & (pl.col("value") != "off")),
        subs, month,
    ).with_columns(
        tier_value=tier_value(),
        entitlement_plan=pl.col("plan").fill_null("free"),
    )
    counted = pieces.join(
        included_tier_frame().lazy(),
        left_on=["item", "entitlement_plan"], right_on=["item", "plan"], how="left",
    ).with_columns(counts=pl.col("tier_value") > pl.col("included_tier"))
    per_addon = (
        counted.group_by("sdk_app_id", "item")
        .agg(
            active_days=pl.col("days").sum(),
            first_active=pl.col("start").min(),
            last_active=pl.col("end").max(),
            charged_tier=pl.col("tier_value").filter(pl.col("counts")).max(),
            # The plan of the last counting piece, as evidence.
            plan=pl.col("plan").filter(pl.col("counts")).get(
                pl.col("end").filter(pl.col("counts")).arg_max()),
        )
        .filter(pl.col("charged_tier").is_not_null())
        .with_columns(
            tier=pl.when(pl.col("item") == "avchatroom_unlimited").then(pl.lit("on"))
            .otherwise(pl.col("charged_tier").cast(pl.String))
        )
        .join(app_prices, on="sdk_app_id")
        .join(addon_prices, on=["pricebook_version", "item", "tier"], how="left")
    )
    return per_addon.with_columns(
        quantity=pl.lit(1, dtype=pl.Int64),
        amount=line_amount(pl.col("unit_price"), pl.lit(1)),
        description=pl.format(
            "{} {}, active {} day(s) from {} to {}", pl.col("item"), pl.col("tier"),
            pl.col("active_days"), pl.col("first_active"), pl.col("last_active"),
        ),
    )
