"""R9: breaches of the plan limits. They change no charge; they are reported.

Each check is an expression over the daily usage (with the plan and the live-group
add-on in force that day) or over the add-on days. The result has one row per
(app, kind): first and last day, number of days, the limit and the worst value seen,
so finance can follow up without reading daily rows.
"""

from __future__ import annotations

import polars as pl

from invoicing.catalogue import FREE_DAU_CAP, INCLUDED_TIER, LIVE_GROUP_LIMIT, NON_LIVE_GROUP_LIMIT
from invoicing.pricing.states import as_of, effective_events, explode_days, segments
from invoicing.timeframe import Month

ANOMALY_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "sdk_app_id": pl.Int64(),
    "kind": pl.String(),
    "plan": pl.String(),
    "limit": pl.Int64(),
    "max_observed": pl.Int64(),
    "days": pl.Int64(),
    "first_date": pl.Date(),
    "last_date": pl.Date(),
    "detail": pl.String(),
}

_PLAN = pl.col("plan").fill_null("free")


def _usage_checks() -> dict[str, tuple[pl.Expr, pl.Expr, pl.Expr, str]]:
    """kind -> (condition on a usage day, limit, observed value, explanation)."""
    live = pl.col("live_group_count")
    non_live = pl.col("group_count") - live.fill_null(0)
    live_limit = (
        pl.when(_PLAN == "free").then(pl.lit(LIVE_GROUP_LIMIT["free"]))
        .when((_PLAN == "pro") & ~pl.col("avchatroom").eq("on").fill_null(False))
        .then(pl.lit(LIVE_GROUP_LIMIT["pro"]))
        .otherwise(pl.lit(None, dtype=pl.Int64))
    ).cast(pl.Int64)
    return {
        "usage_without_plan": (
            pl.col("plan").is_null(), pl.lit(None, dtype=pl.Int64), pl.col("dau"),
            "usage on a day with no plan (the app has no plan event yet); not billed",
        ),
        "free_dau_over_cap": (
            (_PLAN == "free") & (pl.col("dau") > FREE_DAU_CAP), pl.lit(FREE_DAU_CAP), pl.col("dau"),
            f"DAU above the Free plan's hard cap of {FREE_DAU_CAP}",
        ),
        "live_groups_over_limit": (
            live.is_not_null() & live_limit.is_not_null() & (live > live_limit),
            live_limit, live,
            "live-broadcast groups above the plan limit without avchatroom_unlimited",
        ),
        "free_non_live_groups_over_limit": (
            (_PLAN == "free") & (non_live > NON_LIVE_GROUP_LIMIT["free"]),
            pl.lit(NON_LIVE_GROUP_LIMIT["free"]), non_live,
            "non-live groups above the Free plan's limit",
        ),
    }


def _summarise(days: pl.LazyFrame, kind: str, cond: pl.Expr, limit: pl.Expr, observed: pl.Expr,
               detail: str) -> pl.LazyFrame:
    return (
        days.filter(cond)
        .with_columns(_limit=limit.cast(pl.Int64), _observed=observed.cast(pl.Int64))
        .group_by("sdk_app_id")
        .agg(
            plan=pl.col("plan").sort_by("date").last(),
            limit=pl.col("_limit").max(),
            max_observed=pl.col("_observed").max(),
            days=pl.len().cast(pl.Int64),
            first_date=pl.col("date").min(),
            last_date=pl.col("date").max(),
        )
        .with_columns(kind=pl.lit(kind), detail=pl.lit(detail))
    )


def find_anomalies(usage: pl.DataFrame, events: pl.DataFrame, apps: pl.DataFrame, month: Month
                   ) -> pl.DataFrame:
    """All R9 breaches of the month, one row per (app, kind), sorted."""
    log = effective_events(events, month)
    daily = as_of(as_of(usage.lazy(), log, "plan", "plan"), log, "avchatroom_unlimited",
                  "avchatroom")
    parts = [
        _summarise(daily, kind, cond, limit, observed, detail)
        for kind, (cond, limit, observed, detail) in _usage_checks().items()
    ]
    # Add-ons other than av_call (R6) are for Pro and Flagship apps only.
    addon_days = as_of(
        explode_days(segments(log, month).filter(
            pl.col("item").is_in(list(INCLUDED_TIER)) & (pl.col("value") != "off"))),
        log, "plan", "plan",
    )
    parts.append(
        _summarise(addon_days, "addon_on_free_plan", _PLAN == "free", pl.lit(None),
                   pl.lit(None), "")
        .drop("detail")
        .join(
            addon_days.filter(_PLAN == "free").group_by("sdk_app_id").agg(
                detail=pl.format("{} active on a day the app was not on Pro or Flagship",
                                 pl.col("item").unique().sort().str.join(", "))
            ),
            on="sdk_app_id",
        )
    )
    result = pl.concat([p.select(sorted(p.collect_schema().names())) for p in parts],
                       how="diagonal_relaxed")
    return (
        result.join(apps.lazy().select("sdk_app_id", "customer_id"), on="sdk_app_id", how="left")
        .select([pl.col(n).cast(t) for n, t in ANOMALY_SCHEMA.items()])
        .sort("customer_id", "sdk_app_id", "kind")
        .collect()
    )
