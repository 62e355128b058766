"""R2 and R3: overage on the monthly peak of a daily metric, priced by a pricing model.

The peak of each metric is found here, once for every app; each price-book version
names the model that prices it (`invoicing.pricing.models`), and the model returns the
amount with its breakdown.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from invoicing.core.catalogue import PAID_PLANS
from invoicing.load.pricebook import MAX_QUANTITY, PriceBookVersion
from invoicing.pricing.models import MODELS
from invoicing.pricing.states import PLAN_DTYPE

METRICS: dict[str, tuple[str, str]] = {
    # item (the price-book section): (usage column, label in the description)
    "dau_overage": ("dau", "DAU"),
    "group_overage": ("group_count", "Peak group count"),
}


def overage_lines(usage_with_plan: pl.LazyFrame, app_prices: pl.LazyFrame, month_start: date,
                  versions: list[PriceBookVersion]) -> pl.LazyFrame:
    """One line per app and metric for every app with usage on a Pro or Flagship day.

    The peak is the metric's maximum over those days (R2: days on Free never bill),
    dated by its first day. The line is kept even at 0 blocks: it is the evidence that
    the peak stayed within the quota.
    """
    paid = usage_with_plan.filter(pl.col("plan").is_in(list(PAID_PLANS)))
    # One pass over the paid days for both metrics, with plain `max` aggregations. The
    # peak day is the first day with the maximum, so each day is packed into one
    # integer whose order is (value descending, date ascending), with the day's plan in
    # the lowest bits: key = ((value × 64) + (32 − day)) × 4 + plan code. The maximum
    # key decodes to the peak value, its first day and that day's plan.
    # Bounds: `validate` refuses metrics above MAX_QUANTITY, so the key fits in an int64.
    assert MAX_QUANTITY * 64 * 4 + 31 * 4 + 3 < 2**63
    day = pl.col("date").dt.day().cast(pl.Int64)
    plan_code = pl.col("plan").to_physical().cast(pl.Int64)
    peaks = (
        paid.group_by("sdk_app_id")
        .agg([((pl.col(metric) * 64 + (32 - day)) * 4 + plan_code).max().alias(item)
              for item, (metric, _label) in METRICS.items()])
        .join(app_prices, on="sdk_app_id")
    )
    plan_of_code = dict(enumerate(PLAN_DTYPE.categories))
    frames = []
    for item, (_metric, label) in METRICS.items():
        metric_peaks = peaks.with_columns(
            peak_value=pl.col(item) // 256,
            peak_date=pl.lit(month_start) + pl.duration(days=31 - (pl.col(item) // 4) % 64),
            plan=(pl.col(item) % 4).replace_strict(plan_of_code, return_dtype=pl.String),
            item=pl.lit(item),
        )
        for model_name, terms in _terms_by_model(versions, item).items():
            model = MODELS[model_name]
            terms_frame = model.terms_frame(terms)
            frames.append(
                metric_peaks.join(terms_frame.lazy(), on="pricebook_version")
                .with_columns(**model.price(pl.col("peak_value"), terms_frame))
                .with_columns(description=pl.format(
                    "{} overage: peak {} on {}, free quota {}, excess {}, {} block(s) of {}",
                    pl.lit(label), pl.col("peak_value"), pl.col("peak_date"),
                    pl.col("free_quota"), pl.col("excess"), pl.col("blocks"), pl.col("block"),
                ))
            )
    if not frames:  # no version in use (no customer to bill)
        return peaks.head(0)
    return pl.concat(frames, how="diagonal_relaxed")


def _terms_by_model(versions: list[PriceBookVersion], item: str) -> dict[str, dict[str, Any]]:
    """Model name -> version id -> the version's terms for `item`, in version order."""
    by_model: dict[str, dict[str, Any]] = {}
    for v in versions:
        pricing = v.overage[item]
        by_model.setdefault(pricing.model, {})[v.version_id] = pricing.terms
    return by_model
