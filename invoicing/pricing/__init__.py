"""Stage 3, pricing: every charge of the month for all apps at once.

Each rule is a small module that returns a lazy frame of lines with their evidence:

* `plan_fee` (R1), `overage` (R2, R3, priced by the models of `pricing.models`),
  `addons` (R4, R5), `av_call` (R6).

`price_month` joins each app to the price-book version of its customer's currency
(R8), runs the rules over whole frames and returns the lines in a fixed order.
No Python loop runs over apps or usage rows.
"""

from __future__ import annotations

import polars as pl

from invoicing.core.catalogue import LINE_ORDER, PLANS
from invoicing.core.errors import InputError, Source
from invoicing.core.timeframe import Month
from invoicing.load.pricebook import PriceBookVersion, addon_prices_frame, versions_frame
from invoicing.pricing.addons import addon_lines
from invoicing.pricing.av_call import av_call_lines
from invoicing.pricing.lines import LINE_SCHEMA, conform
from invoicing.pricing.overage import monthly_peaks, overage_lines
from invoicing.pricing.plan_fee import plan_fee_lines
from invoicing.pricing.states import Subscriptions

__all__ = ["LINE_SCHEMA", "app_prices_frame", "monthly_peaks", "price_month"]


def app_prices_frame(apps: pl.DataFrame, customers: pl.DataFrame,
                     versions: list[PriceBookVersion]) -> pl.LazyFrame:
    """Per app: its customer and the prices of the version chosen for the customer (R8)."""
    return (
        apps.lazy()
        .select("sdk_app_id", "customer_id")
        .join(customers.lazy().select("customer_id", "currency"), on="customer_id")
        .join(versions_frame(versions).lazy(), on="currency")
    )


def price_month(peaks: pl.DataFrame, apps: pl.DataFrame, customers: pl.DataFrame,
                subs: Subscriptions, versions: list[PriceBookVersion], month: Month
                ) -> pl.DataFrame:
    """All line items of the month, sorted by customer, app and item (no invoice numbers).

    `peaks` are the usage's monthly peaks per app (`overage.monthly_peaks`); `subs` the
    subscription change log resolved for the month.
    """
    # Materialised once: every rule joins on it. Each app also gets its rank in line
    # order (customer id in byte order, then sdk_app_id), so that the lines are sorted
    # by one integer key rather than by the customer's string id.
    customer_rank = customers.lazy().select(
        "customer_id", _customer_rank=pl.col("customer_id").rank("ordinal").cast(pl.Int64))
    app_prices = (
        app_prices_frame(apps, customers, versions)
        .join(customer_rank, on="customer_id")
        .sort("_customer_rank", "sdk_app_id")
        .with_row_index("_app_rank")
        .with_columns(pl.col("_app_rank").cast(pl.Int64))
        .drop("_customer_rank")
        .collect().lazy()
    )
    addon_prices = addon_prices_frame(versions).lazy()

    parts = [
        plan_fee_lines(subs.segments.lazy().filter(pl.col("item") == "plan"), app_prices, month),
        overage_lines(peaks.lazy(), app_prices, month.start, versions),
        addon_lines(subs, app_prices, addon_prices, month),
        av_call_lines(subs, app_prices, addon_prices),
    ]
    # One int64 per line, unique within the month, ordered like (customer_id,
    # sdk_app_id, item in `LINE_ORDER`, plan with nulls last): only a prorated plan fee
    # has several lines of one item per app, one per plan.
    items = sorted(LINE_ORDER, key=LINE_ORDER.__getitem__)
    item_code = pl.col("item").cast(pl.Enum(items)).to_physical().cast(pl.Int64)
    plans = sorted(PLANS)
    plan_code = (pl.col("plan").cast(pl.Enum(plans)).to_physical().cast(pl.Int64)
                 .fill_null(len(plans)))
    # Bounds of the packed key: 16 item codes, 4 plan codes, and an app rank below 2^57.
    assert len(items) <= 16 and len(plans) + 1 <= 4 and apps.height < 2**57
    sort_key = (pl.col("_app_rank") * 16 + item_code) * 4 + plan_code
    lines = _sorted_lines([conform(p, keep=["_app_rank"]).collect() for p in parts], sort_key)
    _require_prices(lines)
    return lines


def _sorted_lines(parts: list[pl.DataFrame], key: pl.Expr) -> pl.DataFrame:
    """The `LINE_SCHEMA` columns of `parts` one after the other, sorted by `key`.

    The rows are put in order one column at a time, each part's column released once
    gathered: a sort of the whole frame would hold every column twice (on the large
    month, +1.27 GiB at the ordering instead of +0.3 GiB, and slower: BENCHMARKS.md). `parts`
    is emptied, so that the frame built here holds the only reference to its columns.
    """
    frame = pl.concat(parts, how="vertical", rechunk=False)
    parts.clear()
    order = frame.select(key.arg_sort())[:, 0]
    # The columns are taken out of the frame first: dropping a column from a frame of
    # several chunks would join every other column's chunks into one (a full copy).
    columns = [frame.get_column(name) for name in reversed(LINE_SCHEMA)]
    del frame
    gathered = []
    while columns:
        column = columns.pop()
        # Gathered from one chunk: across the rules' chunks it is several times slower.
        gathered.append(column.rechunk().gather(order))
        del column
    return pl.DataFrame(gathered)


def _require_prices(lines: pl.DataFrame) -> None:
    """Every line has its price. Prices are attached with left joins; `validate` refuses
    the inputs that would miss one, so a null here is a bug, never a zero charge."""
    missing = lines.filter(pl.col("unit_price").is_null() | pl.col("amount").is_null())
    if missing.height:
        first = missing.row(0, named=True)
        raise InputError(Source("price book", first["item"]),
                         f"no price for {first['item']} {first['tier'] or ''} of app "
                         f"{first['sdk_app_id']} in {first['pricebook_version']} "
                         f"({missing.height} line(s) without a price)")
