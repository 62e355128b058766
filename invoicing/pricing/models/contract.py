"""What a pricing model of an overage metric is (R2, R3), and the pieces models share.

A model prices one metric's monthly peak for the apps whose price-book version chose it
(``[version.dau_overage] model = "graduated"``). It is one module that declares:

* ``name``: how the price book names it;
* ``keys``: the keys of its price-book section (besides ``model``), so that the
  price-book reader can refuse any other key;
* ``evidence``: the line columns its breakdown fills (`pricing.lines.LINE_SCHEMA`),
  which the page, the reports and the e-invoice explain through
  `invoicing.render.evidence_text`;
* ``read_terms``: its price-book section as a typed record (through the reader of
  `invoicing.load.pricebook`, so every bad key is one line naming it);
* ``terms_frame``: the terms of the versions that chose it, one row per version;
* ``price``: Polars expressions over a frame holding ``peak_value``, ``minor_units``
  and its terms columns: the amount and its breakdown.

Adding a model is one new module with these attributes, registered in
`invoicing.pricing.models.MODELS`, plus its tests: the reader, the line schema, the
template, the reports and the XML consume the declared breakdown as they find it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import polars as pl

from invoicing.load.pricebook import MetricReader

#: Keys every model reads the same way: the daily free quota and the block size.
QUOTA_KEYS = frozenset({"free_quota", "block"})
#: Columns `price` must return (with the evidence columns the model declares).
PRICED = ("quantity", "unit_price", "amount", "blocks")


class PricingModel(Protocol):
    """The contract of a pricing model (see the module's docstring)."""

    name: str
    keys: frozenset[str]
    evidence: tuple[str, ...]

    def read_terms(self, r: MetricReader, section: str) -> Any:
        """The terms of price-book section ``section`` (``dau_overage``), or `r.fail`."""
        ...

    def terms_frame(self, terms: Mapping[str, Any]) -> pl.DataFrame:
        """Version id -> terms as one row per version (column ``pricebook_version``)."""
        ...

    def price(self, peak: pl.Expr, terms: pl.DataFrame) -> dict[str, pl.Expr]:
        """Expressions for `PRICED` and the evidence columns, over a frame that holds
        ``minor_units`` and the columns of `terms` (as `terms_frame` returned it).

        ``blocks`` is the number of blocks billed (a working column: the description
        names it); ``quantity × unit_price`` rounds to ``amount`` (R7).
        """
        ...


def read_quota_and_block(r: MetricReader, section: str) -> tuple[int, int]:
    """``free_quota`` (0 or more) and ``block`` (1 or more) of a section."""
    return (r.positive_int(f"{section}.free_quota", allow_zero=True),
            r.positive_int(f"{section}.block"))


def excess_and_blocks(peak: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """``excess = max(0, peak − free_quota)`` and ``blocks = ceil(excess / block)``, over
    the columns ``free_quota`` and ``block``.

    Integer arithmetic only: ``ceil(a / b) = (a + b − 1) // b`` for a >= 0, b > 0.
    """
    excess = pl.max_horizontal(peak - pl.col("free_quota"), pl.lit(0, dtype=pl.Int64))
    return excess, (excess + pl.col("block") - 1) // pl.col("block")
