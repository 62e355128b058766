"""Subscription state over time, from the change log (SPEC §2).

The state of an (app, item) on a day is the latest event with ``effective_date`` <= that
day; two events of the same item on the same day resolve to the later row of the file;
events after the month are ignored. Two shapes are derived from the log:

* **segments**: runs of days within the month with one value (cheap: one row per
  event that touches the month), used for plan fees and add-on activity;
* **as-of lookups**: the plan in force on each usage day, by an as-of join of the
  usage rows against the log.
"""

from __future__ import annotations

import polars as pl

from invoicing.timeframe import Month


def effective_events(events: pl.DataFrame, month: Month) -> pl.LazyFrame:
    """Events up to the month's end, one per (app, item, day): the file's later row wins."""
    return (
        events.lazy()
        .filter(pl.col("effective_date") <= month.end)
        .sort("sdk_app_id", "item", "effective_date", "source_row")
        .unique(["sdk_app_id", "item", "effective_date"], keep="last", maintain_order=True)
        .select("sdk_app_id", "item", "effective_date", "value")
    )


def segments(events: pl.LazyFrame, month: Month) -> pl.LazyFrame:
    """Runs of days within the month on which an (app, item) held one value.

    Columns: sdk_app_id, item, value, start, end, days. Days before an app's first
    event of an item are not covered (the item had no state yet).
    """
    nxt = pl.col("effective_date").shift(-1).over(["sdk_app_id", "item"],
                                                  order_by="effective_date")
    return (
        events.with_columns(
            start=pl.max_horizontal(pl.col("effective_date"), pl.lit(month.start)),
            end=pl.min_horizontal(
                (nxt - pl.duration(days=1)).fill_null(pl.lit(month.end)), pl.lit(month.end)
            ),
        )
        .filter(pl.col("end") >= pl.col("start"))
        .with_columns(days=((pl.col("end") - pl.col("start")).dt.total_days() + 1).cast(pl.Int64))
        .select("sdk_app_id", "item", "value", "start", "end", "days")
    )


def explode_days(segs: pl.LazyFrame) -> pl.LazyFrame:
    """One row per day of each segment (column ``date``)."""
    return (
        segs.with_columns(date=pl.date_ranges("start", "end", interval="1d"))
        .explode("date")
        .drop("start", "end", "days")
    )


def as_of(
    days: pl.LazyFrame, events: pl.LazyFrame, item: str, name: str
) -> pl.LazyFrame:
    """Add column `name`: the value of `item` in force on each row's ``date`` (or null)."""
    log = (
        events.filter(pl.col("item") == item)
        .select("sdk_app_id", "effective_date", pl.col("value").alias(name))
        .sort("sdk_app_id", "effective_date")
    )
    return days.sort("sdk_app_id", "date").join_asof(
        log, left_on="date", right_on="effective_date", by="sdk_app_id",
        strategy="backward", check_sortedness=False,
    ).drop("effective_date")
