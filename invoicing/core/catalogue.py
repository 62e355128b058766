"""The product catalogue: plans, add-ons and the plan limits of SPEC §1.

These are facts about the product, not prices (prices live in the price book).
They are kept as small frames so the pricing and anomaly expressions can join on them.
"""

from __future__ import annotations

import polars as pl

PLANS: tuple[str, ...] = ("free", "pro", "flagship")
#: Plans whose days bill DAU and group overage and may hold add-ons (R2-R4).
PAID_PLANS: tuple[str, ...] = ("pro", "flagship")

ON_OFF_ADDONS: tuple[str, ...] = ("avchatroom_unlimited", "av_call")
TIERED_ADDONS: tuple[str, ...] = ("group_member_limit", "groups_per_user", "history_retention_days")
#: Every add-on, in the order its lines appear under an app.
ADDONS: tuple[str, ...] = (
    "avchatroom_unlimited",
    "group_member_limit",
    "groups_per_user",
    "history_retention_days",
    "av_call",
)
#: Every item a subscription event may name.
EVENT_ITEMS: tuple[str, ...] = ("plan", *ADDONS)

#: Order of an app's lines on the invoice and in line_items.parquet.
LINE_ORDER: dict[str, int] = {
    "plan_fee": 0,
    "dau_overage": 1,
    "group_overage": 2,
    **{name: 3 + i for i, name in enumerate(ADDONS)},
}

#: Sentinel tier for "unlimited" (larger than any numeric tier).
UNLIMITED = 2**62

#: What each plan already includes, per add-on (R4, R5). An add-on day is chargeable
#: only when its tier exceeds this. `on` counts as tier 1; unlimited as `UNLIMITED`.
#: A day with no plan is treated like Free for entitlements.
INCLUDED_TIER: dict[str, dict[str, int]] = {
    "avchatroom_unlimited": {"free": 0, "pro": 0, "flagship": UNLIMITED},
    "group_member_limit": {"free": 20, "pro": 200, "flagship": 2000},
    "groups_per_user": {"free": 50, "pro": 500, "flagship": 1000},
    "history_retention_days": {"free": 7, "pro": 7, "flagship": 30},
}

#: Plan limits checked for anomalies (R9). None = unlimited.
FREE_DAU_CAP = 100
#: Free peak group count: Pro and Flagship bill the excess (R3); Free has no overage.
FREE_GROUP_CAP = 100_000
#: Net new groups per day, every plan.
NET_NEW_GROUPS_PER_DAY = 10_000
LIVE_GROUP_LIMIT: dict[str, int | None] = {"free": 10, "pro": 50, "flagship": None}
NON_LIVE_GROUP_LIMIT: dict[str, int | None] = {"free": 100, "pro": None, "flagship": None}


def included_tier_frame() -> pl.DataFrame:
    """(item, plan, included_tier) for the tier comparison of R4."""
    rows = [
        (item, plan, tier)
        for item, by_plan in INCLUDED_TIER.items()
        for plan, tier in by_plan.items()
    ]
    return pl.DataFrame(
        rows, schema={"item": pl.String, "plan": pl.String, "included_tier": pl.Int64},
        orient="row",
    )
