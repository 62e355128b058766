"""Adding a pricing model is one module plus its tests.

The model below ("volume": every block at the price of the band the total reaches) is
written here as a test would write a new module under `invoicing/pricing/models/`, and
registered for one test. Nothing else is edited: the price-book reader takes its keys
and reads its section, `line_items.parquet` carries its declared breakdown, and the page,
`diff` and the e-invoice explain it with the words they already have.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from pypdf import PdfReader

from invoicing.core.money import MONEY
from invoicing.load.pricebook import MAX_QUANTITY
from invoicing.pricing.lines import line_amount
from invoicing.pricing.models import MODELS, graduated
from invoicing.pricing.models.contract import PricingModel, excess_and_blocks
from invoicing.pricing.models.graduated import GraduatedTerms
from tests.builders import MonthBuilder, d, run_cli
from tests.pricing.test_graduated import USD_BANDS, graduated_book


def _volume_price(peak: pl.Expr, terms: pl.DataFrame) -> dict[str, pl.Expr]:
    excess, blocks = excess_and_blocks(peak)
    width = sum(1 for column in terms.columns if column.endswith("_lower"))
    price: pl.Expr = pl.lit(None, dtype=MONEY)
    for i in reversed(range(width)):
        upper = pl.col(f"band{i}_upper").fill_null(MAX_QUANTITY)
        reached = (blocks > pl.col(f"band{i}_lower")) & (blocks <= upper)
        price = pl.when(reached).then(pl.col(f"band{i}_price")).otherwise(price)
    price = price.fill_null(pl.col("band0_price"))
    amount = line_amount(price, blocks)
    return {
        "excess": excess, "blocks": blocks, "quantity": blocks, "unit_price": price,
        "amount": amount,
        "bands": pl.when(blocks > 0).then(pl.concat_str(
            pl.lit('[{"first_block":1,"last_block":'), blocks, pl.lit(',"blocks":'), blocks,
            pl.lit(',"price_per_block":"'), price.cast(pl.String),
            pl.lit('","amount":"'), amount.cast(pl.String), pl.lit('"}]'),
        )).otherwise(pl.lit("[]")),
    }


def _volume_terms_frame(terms: Mapping[str, GraduatedTerms]) -> pl.DataFrame:
    return graduated.terms_frame(terms)


VOLUME: PricingModel = SimpleNamespace(
    name="volume", keys=graduated.keys, evidence=graduated.evidence,
    read_terms=graduated.read_terms, terms_frame=_volume_terms_frame, price=_volume_price)


def test_a_new_model_needs_no_other_change(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, "volume", VOLUME)
    book = graduated_book(usd=USD_BANDS.replace('"graduated"', '"volume"'))
    b = MonthBuilder(pricebook=book).customer("c1")
    b.app(1, "c1").day(1, d(3), dau=125_000)      # 12 blocks: all at the second band's price
    out = tmp_path / "out"
    assert run_cli(b.write(tmp_path / "in"), out).exit_code == 0
    items = pl.read_parquet(out / "2026-10/line_items.parquet").filter(
        pl.col("item") == "dau_overage").row(0, named=True)
    assert (items["quantity"], items["unit_price"], items["amount"]) == (
        Decimal(12), Decimal("99.99"), Decimal("1199.88"))
    assert json.loads(items["bands"]) == [{"first_block": 1, "last_block": 12, "blocks": 12,
                                           "price_per_block": "99.990000",
                                           "amount": "1199.880000"}]
    page = " ".join(PdfReader(out / "2026-10/invoices/IM-202610-000001.pdf").pages[0]
                    .extract_text().split())
    assert "12 blocks of 10,000 Blocks 1–12: 12 × $99.99 = $1,199.88" in page
