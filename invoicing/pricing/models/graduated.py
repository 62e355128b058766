"""The graduated model: bands of blocks, each band at its own price.

Price-book section::

    [version.dau_overage]
    model = "graduated"
    free_quota = 10000
    block = 10000

    [[version.dau_overage.band]]     # blocks 1 to 10
    up_to_blocks = 10
    price_per_block = "149.99"

    [[version.dau_overage.band]]     # the last band has no limit: blocks 11 and on
    price_per_block = "99.99"

The blocks are counted as in the block model (``ceil(max(0, peak − free_quota) /
block)``). Band *i* covers the blocks after the previous band's ``up_to_blocks`` up to
its own; limits rise strictly and only the last band has none. Each band's amount is
``blocks in the band × its price``, exact; the line is their sum, rounded once (R7). The
line's quantity is 1 (0 when no block is billed) and its unit price that exact sum, so
that it multiplies out like every other line.

Evidence: the free quota, the block size, the excess and ``bands``: a JSON array with
one object per band that billed blocks, ``{"first_block": 1, "last_block": 10,
"blocks": 10, "price_per_block": "149.99", "amount": "1499.9"}``, decimals as exact
strings (`invoicing.render.evidence_text.bands` reads it back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from invoicing.core.money import MONEY, WORK
from invoicing.load.pricebook import MAX_QUANTITY, MetricReader
from invoicing.pricing.lines import line_amount
from invoicing.pricing.models.contract import QUOTA_KEYS, excess_and_blocks, read_quota_and_block

name: str = "graduated"
keys: frozenset[str] = QUOTA_KEYS | {"band"}
evidence: tuple[str, ...] = ("free_quota", "block", "excess", "bands")
#: The keys of one ``[[band]]`` table.
BAND_KEYS = frozenset({"up_to_blocks", "price_per_block"})


@dataclass(frozen=True)
class Band:
    """One band of blocks.

    Attributes:
      up_to_blocks: the last block of the band, counted from the first billed block;
        None for the last band, which has no limit.
      price_per_block: price of each block in the band.
    """

    up_to_blocks: int | None
    price_per_block: Decimal


@dataclass(frozen=True)
class GraduatedTerms:
    """Terms of the graduated model.

    Attributes:
      free_quota: units included in Pro and Flagship each day.
      block: size of one billed block; a partial block counts whole.
      bands: the bands in order, the last one without a limit.
    """

    free_quota: int
    block: int
    bands: tuple[Band, ...]


def read_terms(r: MetricReader, section: str) -> GraduatedTerms:
    quota, block = read_quota_and_block(r, section)
    tables = r.get(f"{section}.band")
    if not isinstance(tables, list) or not tables:
        r.fail(f"{section}.band", "must list the bands as [[...band]] tables, at least one")
    bands: list[Band] = []
    for i, table in enumerate(tables, start=1):
        key = f"{section}.band[{i}]"
        if not isinstance(table, dict):
            r.fail(key, "must be a table")
        unknown = sorted(set(table) - BAND_KEYS)
        if unknown:
            r.fail(f"{key}.{unknown[0]}", "not a key of a band (its keys: price_per_block, "
                   "up_to_blocks)")
        last = i == len(tables)
        limit = table.get("up_to_blocks")
        if last and limit is not None:
            r.fail(f"{key}.up_to_blocks", "the last band has no limit: it takes every "
                   "block above the previous band")
        if not last:
            if limit is None:
                r.fail(f"{key}.up_to_blocks", "missing (only the last band has no limit)")
            limit = r.positive_int(f"{key}.up_to_blocks", value=limit)
            if bands and bands[-1].up_to_blocks is not None and limit <= bands[-1].up_to_blocks:
                r.fail(f"{key}.up_to_blocks", f"must be above the previous band's "
                       f"{bands[-1].up_to_blocks}")
        if "price_per_block" not in table:
            r.fail(f"{key}.price_per_block", "missing")
        price = r.decimal(f"{key}.price_per_block", table["price_per_block"])
        bands.append(Band(limit, price))
    return GraduatedTerms(quota, block, tuple(bands))


def terms_frame(terms: Mapping[str, GraduatedTerms]) -> pl.DataFrame:
    """One row per version; band *i* as columns ``band<i>_lower`` (blocks before it; null
    when the version has fewer bands), ``band<i>_upper`` (null: no limit) and
    ``band<i>_price``."""
    width = max(len(t.bands) for t in terms.values())
    columns: dict[str, list[Any]] = {
        "pricebook_version": list(terms),
        "free_quota": [t.free_quota for t in terms.values()],
        "block": [t.block for t in terms.values()],
    }
    schema: dict[str, pl.DataType] = {"pricebook_version": pl.String(),
                                      "free_quota": pl.Int64(), "block": pl.Int64()}
    for i in range(width):
        lowers, uppers, prices = [], [], []
        for t in terms.values():
            present = i < len(t.bands)
            lowers.append((t.bands[i - 1].up_to_blocks if i else 0) if present else None)
            uppers.append(t.bands[i].up_to_blocks if present else None)
            prices.append(t.bands[i].price_per_block if present else None)
        columns |= {f"band{i}_lower": lowers, f"band{i}_upper": uppers,
                    f"band{i}_price": prices}
        schema |= {f"band{i}_lower": pl.Int64(), f"band{i}_upper": pl.Int64(),
                   f"band{i}_price": MONEY}
    return pl.DataFrame(columns, schema=schema)


def _decimal_text(value: pl.Expr) -> pl.Expr:
    """A decimal as exact text without trailing zeros (``149.99``, ``1500``)."""
    return value.cast(MONEY).cast(pl.String).str.replace(r"\.?0+$", "")


def price(peak: pl.Expr, terms: pl.DataFrame) -> dict[str, pl.Expr]:
    excess, blocks = excess_and_blocks(peak)
    width = sum(1 for column in terms.columns if column.endswith("_lower"))
    total: pl.Expr = pl.lit(0, dtype=WORK)
    objects = []
    for i in range(width):
        lower, price_per_block = pl.col(f"band{i}_lower"), pl.col(f"band{i}_price")
        room = (pl.col(f"band{i}_upper") - lower).fill_null(MAX_QUANTITY)
        in_band = pl.min_horizontal(pl.max_horizontal(blocks - lower, pl.lit(0)), room)
        in_band = in_band.fill_null(0)  # the version has fewer bands
        amount = price_per_block.cast(WORK) * in_band.cast(WORK)
        total = total + amount.fill_null(0)
        objects.append(pl.when(in_band > 0).then(pl.concat_str(
            pl.lit('{"first_block":'), lower + 1, pl.lit(',"last_block":'), lower + in_band,
            pl.lit(',"blocks":'), in_band,
            pl.lit(',"price_per_block":"'), _decimal_text(price_per_block),
            pl.lit('","amount":"'), _decimal_text(amount), pl.lit('"}'))))
    quantity = (blocks > 0).cast(pl.Int64)
    unit_price = total.cast(MONEY)  # exact: prices have at most MONEY's decimals
    return {
        "excess": excess,
        "blocks": blocks,
        "quantity": quantity,
        "unit_price": unit_price,
        "amount": line_amount(unit_price, quantity),
        "bands": pl.concat_str(pl.lit("["), pl.concat_str(objects, separator=",",
                                                          ignore_nulls=True), pl.lit("]")),
    }
