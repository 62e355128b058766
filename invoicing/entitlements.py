"""Stage 4, entitlements (R9): breaches of the plan limits, reported, never billed.

Each check is an expression over the daily usage (with the plan and the live-group
add-on in force that day) or over the add-on days. The result has one row per
(app, kind): first and last day, number of days, the limit and the worst value seen,
so finance can follow up without reading daily rows.
"""

from __future__ import annotations

import polars as pl

from invoicing.core.catalogue import (
    FREE_DAU_CAP,
    FREE_GROUP_CAP,
    INCLUDED_TIER,
    LIVE_GROUP_LIMIT,
    NET_NEW_GROUPS_PER_DAY,
    NON_LIVE_GROUP_LIMIT,
    PAID_PLANS,
)
from invoicing.core.timeframe import Month
from invoicing.pricing.states import Subscriptions, in_force, with_plan_overlaps

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


def _usage_checks(avchatroom: pl.Expr | None = None
                  ) -> dict[str, tuple[pl.Expr, pl.Expr, pl.Expr, str]]:
    """kind -> (condition on a usage day, limit, observed value, explanation).

    `avchatroom` is the value of ``avchatroom_unlimited`` that day (default: the
    column of that name)."""
    avchatroom = pl.col("avchatroom") if avchatroom is None else avchatroom
    live = pl.col("live_group_count")
    non_live = pl.col("group_count") - live.fill_null(0)
    live_limit = (
        pl.when(_PLAN == "free").then(pl.lit(LIVE_GROUP_LIMIT["free"]))
        .when((_PLAN == "pro") & ~avchatroom.eq("on").fill_null(False))
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
        "free_group_count_over_limit": (
            (_PLAN == "free") & (pl.col("group_count") > FREE_GROUP_CAP),
            pl.lit(FREE_GROUP_CAP), pl.col("group_count"),
            "group count above the Free plan's 100,000 (Free bills no group overage)",
        ),
        "net_new_groups_over_limit": (
            pl.col("_net_new") > NET_NEW_GROUPS_PER_DAY,
            pl.lit(NET_NEW_GROUPS_PER_DAY), pl.col("_net_new"),
            "net new groups in one day (increase of group_count over the day before) above "
            "the daily limit of every plan",
        ),
    }


def _net_new_groups() -> pl.Expr:
    """The day-over-day increase of ``group_count``, where the day before has usage.

    The usage is sorted by (app, day), so the day before is the previous row when it
    is the same app and exactly one day earlier; otherwise the increase is unknown.
    """
    follows = ((pl.col("sdk_app_id") == pl.col("sdk_app_id").shift(1))
               & ((pl.col("date") - pl.col("date").shift(1)).dt.total_days() == 1))
    return pl.when(follows).then(pl.col("group_count") - pl.col("group_count").shift(1))


def _summarise(days: pl.LazyFrame, kind: str, cond: pl.Expr, limit: pl.Expr, observed: pl.Expr,
               detail: str) -> pl.LazyFrame:
    return (
        days.filter(cond)
        .with_columns(_limit=limit.cast(pl.Int64), _observed=observed.cast(pl.Int64))
        .group_by("sdk_app_id")
        .agg(
            plan=pl.col("plan").get(pl.col("date").arg_max()),
            limit=pl.col("_limit").max(),
            max_observed=pl.col("_observed").max(),
            days=pl.len().cast(pl.Int64),
            first_date=pl.col("date").min(),
            last_date=pl.col("date").max(),
        )
        .with_columns(kind=pl.lit(kind), detail=pl.lit(detail))
    )


def _paid_plan_not_on_first(subs: Subscriptions, month: Month,
                            month_start_apps: pl.Series | None) -> pl.LazyFrame:
    """Apps on Pro or Flagship for most of the month but not on its 1st: under the
    ``month_start`` policy (R1) they pay no plan fee this month, which finance may want
    to know. `month_start_apps`: the apps billed under that policy (None: all)."""
    plans = subs.segments.lazy().filter(pl.col("item") == "plan")
    if month_start_apps is not None:
        plans = plans.filter(pl.col("sdk_app_id").is_in(month_start_apps.implode()))
    paid = pl.col("value").is_in(list(PAID_PLANS))
    on_first = pl.col("start") == pl.lit(month.start)
    return (
        plans.group_by("sdk_app_id").agg(
            _paid_on_first=(paid & on_first).any(),
            days=pl.col("days").filter(paid).sum().cast(pl.Int64),
            first_date=pl.col("start").filter(paid).min(),
            last_date=pl.col("end").filter(paid).max(),
            plan=pl.col("value").filter(paid).get(pl.col("end").filter(paid).arg_max()),
        )
        .filter(~pl.col("_paid_on_first") & (pl.col("days") * 2 > month.days))
        .drop("_paid_on_first")
        .with_columns(
            kind=pl.lit("paid_plan_not_on_first"),
            limit=pl.lit(None, dtype=pl.Int64),
            max_observed=pl.lit(None, dtype=pl.Int64),
            detail=pl.format("on a paid plan {} of {} days but not on {}: no plan fee this "
                             "month under the month_start policy (R1)", pl.col("days"),
                             pl.lit(month.days), pl.lit(month.start.isoformat())),
        )
    )


def find_anomalies(usage_with_plan: pl.DataFrame, subs: Subscriptions, apps: pl.DataFrame,
                   month: Month, month_start_apps: pl.Series | None = None) -> pl.DataFrame:
    """All R9 breaches of the month, one row per (app, kind), sorted.

    `usage_with_plan` is the validated usage with the plan of each day (`plan_days`).
    Only the few days that could breach a limit go on to the add-on lookup.
    """
    # Only the few days that breach something (or may, for Pro live groups) are kept,
    # in one pass over the usage on its categorical plan; only Pro days above the Pro
    # live-group limit need the avchatroom_unlimited lookup.
    checks = _usage_checks()
    needs_addon = (pl.col("plan") == "pro") & (
        pl.col("live_group_count").fill_null(0) > LIVE_GROUP_LIMIT["pro"])

    def breaching(checks: dict[str, tuple[pl.Expr, pl.Expr, pl.Expr, str]]) -> pl.Expr:
        return pl.any_horizontal(
            [cond for kind, (cond, *_rest) in checks.items() if kind != "live_groups_over_limit"]
            + [checks["live_groups_over_limit"][0] & (pl.col("plan") != "pro")])

    # Off Pro, the live-group limit does not depend on the add-on: no lookup needed yet.
    no_addon = _usage_checks(pl.lit(None, dtype=pl.String))
    candidates = (
        usage_with_plan.lazy().with_columns(_net_new=_net_new_groups())
        .filter(needs_addon | breaching(no_addon).fill_null(False))
        .with_columns(pl.col("plan").cast(pl.String), avchatroom=pl.lit(None, dtype=pl.String))
        .collect().lazy()
    )
    days = pl.concat([
        in_force(candidates.filter(needs_addon).drop("avchatroom"), subs,
                 "avchatroom_unlimited", "avchatroom"),
        candidates.filter(~needs_addon & breaching(checks)),
    ]).collect().lazy()
    parts = [
        _summarise(days, kind, cond, limit, observed, detail)
        for kind, (cond, limit, observed, detail) in checks.items()
    ]
    # Add-ons other than av_call (R6) are for Pro and Flagship apps only.
    on_free = with_plan_overlaps(
        subs.segments.lazy().filter(
            pl.col("item").is_in(list(INCLUDED_TIER)) & (pl.col("value") != "off")),
        subs, month,
    ).filter(_PLAN == "free")
    parts.append(
        on_free.group_by("sdk_app_id").agg(
            plan=pl.col("plan").get(pl.col("end").arg_max()),
            limit=pl.lit(None, dtype=pl.Int64),
            max_observed=pl.lit(None, dtype=pl.Int64),
            days=pl.col("days").sum(),
            first_date=pl.col("start").min(),
            last_date=pl.col("end").max(),
            detail=pl.format("{} active on a day the app was not on Pro or Flagship",
                             pl.col("item").unique().sort().str.join(", ")),
        ).with_columns(kind=pl.lit("addon_on_free_plan"))
    )
    parts.append(_paid_plan_not_on_first(subs, month, month_start_apps))
    result = pl.concat([p.select(sorted(p.collect_schema().names())) for p in parts],
                       how="diagonal_relaxed")
    return (
        result.join(apps.lazy().select("sdk_app_id", "customer_id"), on="sdk_app_id", how="left")
        .select([pl.col(n).cast(t) for n, t in ANOMALY_SCHEMA.items()])
        .sort("customer_id", "sdk_app_id", "kind")
        .collect()
    )
