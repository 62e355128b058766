"""Subscription state over time, from the change log (SPEC §2).

The state of an (app, item) on a day is the latest event with ``effective_date`` <= that
day; two events of the same item on the same day resolve to the later row of the file;
events after the month are ignored. Two shapes are derived from the log:

* **segments**: runs of days within the month with one value (cheap: one row per
  event that touches the month), used for plan fees and add-on activity;
* **the value in force on a day**: `plan_days` for the plan of every usage day (an
  as-of join over the sorted usage), `in_force` for any item on a few days (a join
  with the item's segments, kept where the day falls in the segment).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from invoicing.core.catalogue import PLANS
from invoicing.core.timeframe import Month


def effective_events(events: pl.DataFrame, month: Month) -> pl.LazyFrame:
    """Events up to the month's end, one per (app, item, day): the file's later row wins.

    Sorted by (app, item, date), which `segments` relies on.
    """
    key = ["sdk_app_id", "item", "effective_date"]
    same_as_next = pl.all_horizontal([pl.col(c) == pl.col(c).shift(-1) for c in key])
    return (
        events.lazy()
        .filter(pl.col("effective_date") <= month.end)
        .sort(*key, "source_row")
        .filter(~same_as_next.fill_null(False))
        .select(*key, "value")
    )


def segments(events: pl.LazyFrame, month: Month) -> pl.LazyFrame:
    """Runs of days within the month on which an (app, item) held one value.

    `events` must be sorted by (app, item, date) as `effective_events` returns them.
    Columns: sdk_app_id, item, value, start, end, days. Days before an app's first
    event of an item are not covered (the item had no state yet).
    """
    same_item_next = (
        (pl.col("sdk_app_id") == pl.col("sdk_app_id").shift(-1))
        & (pl.col("item") == pl.col("item").shift(-1))
    ).fill_null(False)
    nxt = pl.when(same_item_next).then(pl.col("effective_date").shift(-1))
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


@dataclass(frozen=True)
class Subscriptions:
    """The change log resolved once for a month, shared by pricing and entitlements.

    Attributes:
      log: `effective_events`: one event per (app, item, day), up to the month's end.
      segments: `segments` of every item within the month.
    """

    log: pl.DataFrame
    segments: pl.DataFrame


def subscriptions(events: pl.DataFrame, month: Month) -> Subscriptions:
    log = effective_events(events, month).collect()
    return Subscriptions(log=log, segments=segments(log.lazy(), month).collect())


def in_force(days: pl.LazyFrame, subs: Subscriptions, item: str, name: str,
             dtype: pl.DataType | None = None) -> pl.LazyFrame:
    """Add column `name`: the value of `item` in force on each row's ``date`` (or null).

    Joins the rows with the item's segments on ``sdk_app_id`` and keeps the segment the
    day falls in. An item's segments are contiguous from the first one's start to the
    month's end (a state lasts until the next event), so each day matches exactly one
    segment or falls before the first, where the value is null. Most apps have one
    segment a month, so this is nearly a plain hash join: far cheaper than sorting
    tens of millions of rows for an as-of join.
    """
    value = pl.col("value") if dtype is None else pl.col("value").cast(dtype)
    segs = (
        subs.segments.lazy().filter(pl.col("item") == item)
        .select("sdk_app_id", value.alias("_value"),
                pl.col("start").alias("_start"), pl.col("end").alias("_end"))
        .with_columns(_first=pl.col("_start") == pl.col("_start").min().over("sdk_app_id"))
    )
    day = pl.col("date")
    return (
        days.join(segs, on="sdk_app_id", how="left")
        .filter(
            pl.col("_start").is_null()
            | ((day >= pl.col("_start")) & (day <= pl.col("_end")))
            | (pl.col("_first") & (day < pl.col("_start")))
        )
        .with_columns(pl.when(day >= pl.col("_start")).then(pl.col("_value")).alias(name))
        .drop("_value", "_start", "_end", "_first")
    )

#: Plans as a categorical, in `PLANS` order (overage packs the code into its peak key).
PLAN_DTYPE = pl.Enum(list(PLANS))


def with_plan_overlaps(item_segments: pl.LazyFrame, subs: Subscriptions, month: Month
                       ) -> pl.LazyFrame:
    """Split each segment of an item where the app's plan changes; add column ``plan``.

    The pieces partition the item's segments: every piece has one item value and one
    plan (null before the app's first plan event), with its own start, end and days.
    No day is materialised, so this stays small however many apps there are.
    """
    plans = subs.segments.lazy().filter(pl.col("item") == "plan").select(
        "sdk_app_id", _plan=pl.col("value"), _ps=pl.col("start"), _pe=pl.col("end"))
    before_first_plan = (
        plans.group_by("sdk_app_id").agg(_first=pl.col("_ps").min())
        .filter(pl.col("_first") > month.start)
        .select("sdk_app_id", _plan=pl.lit(None, dtype=pl.String), _ps=pl.lit(month.start),
                _pe=pl.col("_first") - pl.duration(days=1))
    )
    coverage = pl.concat([plans, before_first_plan])
    no_plan = pl.col("_ps").is_null()  # the app has no plan event at all
    return (
        item_segments.join(coverage, on="sdk_app_id", how="left")
        .with_columns(
            start=pl.when(no_plan).then(pl.col("start"))
            .otherwise(pl.max_horizontal("start", "_ps")),
            end=pl.when(no_plan).then(pl.col("end")).otherwise(pl.min_horizontal("end", "_pe")),
        )
        .filter(pl.col("end") >= pl.col("start"))
        .with_columns(
            days=((pl.col("end") - pl.col("start")).dt.total_days() + 1).cast(pl.Int64),
            plan=pl.col("_plan"),
        )
        .drop("_plan", "_ps", "_pe")
    )


def plan_days(usage: pl.DataFrame, subs: Subscriptions) -> pl.DataFrame:
    """Usage rows with column ``plan``: the plan in force that day, or null before the
    app's first plan event. Computed once and shared by pricing and entitlements.

    `usage` must be sorted by (sdk_app_id, date), as `validate_usage` returns it. A
    plan segment lasts until the next one starts, so the plan of a day is the one of the
    latest segment starting on or before it: an as-of join per app over sorted rows (a
    merge, no hashing of the usage rows). The result keeps the usage's order.
    """
    segs = (
        subs.segments.lazy().filter(pl.col("item") == "plan")
        .select("sdk_app_id", plan=pl.col("value").cast(PLAN_DTYPE), _start=pl.col("start"))
        .sort("sdk_app_id", "_start")
    )
    # Only the plan column comes out of the join; the usage's own columns are shared with
    # the result, not copied (on the large month they are ~700 MiB).
    plan = (
        usage.lazy().select("sdk_app_id", "date")
        .join_asof(segs, left_on="date", right_on="_start", by="sdk_app_id",
                   strategy="backward", check_sortedness=False)
        .select("plan")
        .collect()
    )
    if plan.height != usage.height:  # pragma: no cover - an as-of join keeps every left row
        raise AssertionError("plan_days lost usage rows")
    return usage.hstack(plan).with_columns(pl.col("sdk_app_id").set_sorted())


def plan_periods_frame(subs: Subscriptions) -> pl.DataFrame:
    """Each app's plans over the month: one row per run of days on one plan.

    Columns: sdk_app_id, plan, start, end, sorted by app and start. Two events that set
    the same plan one after the other make one run (the invoice tells the plan story,
    not the change log).
    """
    plans = subs.segments.filter(pl.col("item") == "plan").sort("sdk_app_id", "start")
    return (
        plans.with_columns(run=pl.struct("sdk_app_id", "value").rle_id())
        .group_by("sdk_app_id", "run", maintain_order=True)
        .agg(plan=pl.col("value").first(), start=pl.col("start").min(),
             end=pl.col("end").max())
        .select("sdk_app_id", "plan", "start", "end")
    )
