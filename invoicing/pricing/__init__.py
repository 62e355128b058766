"""Stage 3, pricing: every charge of the month for all apps at once.

Each rule is a small module that returns a lazy frame of lines with their evidence:

* `plan_fee` (R1), `overage` (R2, R3), `addons` (R4, R5), `av_call` (R6).

`price_month` joins each app to the price-book version of its customer's currency
(R8), runs the rules over whole frames and returns the lines in a fixed order.
No Python loop runs over apps or usage rows.
"""

from __future__ import annotations

import polars as pl

from invoicing.catalogue import LINE_ORDER
from invoicing.pricebook import PriceBookVersion, addon_prices_frame, versions_frame
from invoicing.pricing.addons import addon_lines
from invoicing.pricing.av_call import av_call_lines
from invoicing.pricing.lines import LINE_SCHEMA, conform
from invoicing.pricing.overage import overage_lines
from invoicing.pricing.plan_fee import plan_fee_lines
from invoicing.pricing.states import Subscriptions
from invoicing.timeframe import Month

__all__ = ["LINE_SCHEMA", "app_prices_frame", "price_month"]


def app_prices_frame(apps: pl.DataFrame, customers: pl.DataFrame,
                     versions: list[PriceBookVersion]) -> pl.LazyFrame:
    """Per app: its customer and the prices of the version chosen for the customer (R8)."""
    return (
        apps.lazy()
        .select("sdk_app_id", "customer_id")
        .join(customers.lazy().select("customer_id", "currency"), on="customer_id")
        .join(versions_frame(versions).lazy(), on="currency")
    )


def price_month(usage_with_plan: pl.DataFrame, apps: pl.DataFrame, customers: pl.DataFrame,
                subs: Subscriptions, versions: list[PriceBookVersion], month: Month
                ) -> pl.DataFrame:
    """All line items of the month, sorted by customer, app and item (no invoice numbers).

    `usage_with_plan` is the validated usage with the plan of each day (`plan_days`);
    `subs` the subscription change log resolved for the month.
    """
    # Materialised once: every rule joins on it.
    app_prices = app_prices_frame(apps, customers, versions).collect().lazy()
    addon_prices = addon_prices_frame(versions).lazy()

    parts = [
        plan_fee_lines(subs.segments.lazy().filter(pl.col("item") == "plan"), app_prices, month),
        overage_lines(usage_with_plan.lazy(), app_prices, month.start),
        addon_lines(subs, app_prices, addon_prices, month),
        av_call_lines(subs, app_prices, addon_prices),
    ]
    order = pl.DataFrame(
        {"item": list(LINE_ORDER), "_order": list(LINE_ORDER.values())},
        schema={"item": pl.String, "_order": pl.Int32},
    ).lazy()
    lines = (
        pl.concat([conform(p) for p in parts], how="vertical")
        .join(order, on="item", how="left")
        .sort("customer_id", "sdk_app_id", "_order", "plan", nulls_last=True)
        .drop("_order")
    )
    return lines.collect()
