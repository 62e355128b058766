"""R6: the audio/video call add-on, on every plan, with a free trial.

The trial covers the first ``trial_days`` days from the app's first-ever switch-on
(the last free day is ``first_on + trial_days − 1``); switching off and on again does
not restart it. A month with an active day after the trial pays the monthly price; a
month active only inside the trial shows a zero line naming the trial's last day.
"""

from __future__ import annotations

import polars as pl

from invoicing.pricing.lines import line_amount
from invoicing.pricing.states import Subscriptions


def av_call_lines(subs: Subscriptions, app_prices: pl.LazyFrame, addon_prices: pl.LazyFrame
                  ) -> pl.LazyFrame:
    first_on = (
        subs.log.lazy().filter((pl.col("item") == "av_call") & (pl.col("value") == "on"))
        .group_by("sdk_app_id")
        .agg(first_on=pl.col("effective_date").min())
    )
    active = (
        subs.segments.lazy().filter((pl.col("item") == "av_call") & (pl.col("value") == "on"))
        .group_by("sdk_app_id")
        .agg(
            active_days=pl.col("days").sum(),
            first_active=pl.col("start").min(),
            last_active=pl.col("end").max(),
        )
    )
    price = addon_prices.filter(pl.col("item") == "av_call").select(
        "pricebook_version", "unit_price"
    )
    lines = (
        active.join(first_on, on="sdk_app_id")
        .join(app_prices, on="sdk_app_id")
        .join(price, on="pricebook_version", how="left")
        .with_columns(
            trial_end=pl.col("first_on") + pl.duration(days=pl.col("av_trial_days") - 1),
            item=pl.lit("av_call"),
            tier=pl.lit("on"),
        )
        .with_columns(
            quantity=pl.when(pl.col("last_active") > pl.col("trial_end"))
            .then(pl.lit(1, dtype=pl.Int64)).otherwise(pl.lit(0, dtype=pl.Int64)),
        )
    )
    return lines.with_columns(
        amount=line_amount(pl.col("unit_price"), pl.col("quantity")),
        description=pl.when(pl.col("quantity") == 0)
        .then(pl.format("av_call, active {} day(s), free trial until {}",
                        pl.col("active_days"), pl.col("trial_end")))
        .otherwise(pl.format("av_call, active {} day(s) from {} to {}, trial ended {}",
                             pl.col("active_days"), pl.col("first_active"),
                             pl.col("last_active"), pl.col("trial_end"))),
    )
