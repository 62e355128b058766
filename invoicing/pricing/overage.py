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


def monthly_peaks(usage_with_plan: pl.DataFrame) -> pl.DataFrame:
    """Per app with usage on a Pro or Flagship day, each metric's peak over those days
    (R2: days on Free never bill), packed with its first day and that day's plan.

    This is all the overage needs from the daily usage, so the usage can be let go
    before the line items are made. One column per item of `METRICS`, each the
    maximum of ``key = ((value × 64) + (32 − day)) × 4 + plan code``: the order of the key
    is (value descending, date ascending), so the maximum decodes to the peak value,
    its first day and that day's plan (`overage_lines`).
    """
    # Bounds: `validate` refuses metrics above MAX_QUANTITY, so the key fits in an int64.
    assert MAX_QUANTITY * 64 * 4 + 31 * 4 + 3 < 2**63
    day = pl.col("date").dt.day().cast(pl.Int64)
    plan_code = pl.col("plan").to_physical().cast(pl.Int64)
    # A pure aggregation over every usage row: the streaming engine computes it over
    # slices of the rows, holding only the per-app maxima. The default engine would
    # first materialise the paid days and both packed keys (on the large month, +1.1 GiB
    # and twice the time: BENCHMARKS.md).
    return (
        usage_with_plan.lazy().filter(pl.col("plan").is_in(list(PAID_PLANS)))
        .group_by("sdk_app_id")
        .agg([((pl.col(metric) * 64 + (32 - day)) * 4 + plan_code).max().alias(item)
              for item, (metric, _label) in METRICS.items()])
        .collect(engine="streaming")
    )


def overage_lines(peaks: pl.LazyFrame, app_prices: pl.LazyFrame, month_start: date,
                  versions: list[PriceBookVersion]) -> pl.LazyFrame:
    """One line per app and metric for every app with usage on a Pro or Flagship day.

    `peaks` are the month's packed peaks (`monthly_peaks`); the peak is dated by its
    first day. The line is kept even at 0 blocks: it is the evidence that the peak
    stayed within the quota.
    """
    peaks = peaks.join(app_prices, on="sdk_app_id")
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
