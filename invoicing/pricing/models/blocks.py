"""The block model (R2, R3): every started block of the excess at one price.

Price-book section::

    [version.dau_overage]        # model = "blocks" is the default
    free_quota = 10000
    block = 10000
    price_per_block = "149.99"

``excess = max(0, peak − free_quota)``, ``blocks = ceil(excess / block)`` and the line
is ``blocks × price_per_block``, rounded once (R7). Its evidence: the free quota, the
block size and the excess; the blocks are the line's quantity, the price its unit price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from invoicing.core.money import MONEY
from invoicing.load.pricebook import MetricReader
from invoicing.pricing.lines import line_amount
from invoicing.pricing.models.contract import QUOTA_KEYS, excess_and_blocks, read_quota_and_block

name: str = "blocks"
keys: frozenset[str] = QUOTA_KEYS | {"price_per_block"}
evidence: tuple[str, ...] = ("free_quota", "block", "excess")


@dataclass(frozen=True)
class BlockTerms:
    """Terms of the block model.

    Attributes:
      free_quota: units included in Pro and Flagship each day.
      block: size of one billed block; a partial block counts whole.
      price_per_block: price of one block.
    """

    free_quota: int
    block: int
    price_per_block: Decimal


def read_terms(r: MetricReader, section: str) -> BlockTerms:
    quota, block = read_quota_and_block(r, section)
    return BlockTerms(quota, block, r.decimal(f"{section}.price_per_block"))


def terms_frame(terms: Mapping[str, BlockTerms]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "pricebook_version": list(terms),
            "free_quota": [t.free_quota for t in terms.values()],
            "block": [t.block for t in terms.values()],
            "price_per_block": [t.price_per_block for t in terms.values()],
        },
        schema={"pricebook_version": pl.String, "free_quota": pl.Int64, "block": pl.Int64,
                "price_per_block": MONEY},
    )


def price(peak: pl.Expr, terms: pl.DataFrame) -> dict[str, pl.Expr]:
    excess, blocks = excess_and_blocks(peak)
    price_per_block = pl.col("price_per_block")
    return {
        "excess": excess,
        "blocks": blocks,
        "quantity": blocks,
        "unit_price": price_per_block,
        "amount": line_amount(price_per_block, blocks),
    }
