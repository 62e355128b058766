"""The graduated pricing model: bands of blocks, each at its own price.

Every amount below is worked by hand from the bands of `USD_BANDS` (quota 10,000, block
10,000; blocks 1-10 at 149.99, 11 and on at 99.99) or `KRW_BANDS` (0 decimals; blocks
1-2 at 206,000, 3-5 at 150,000, 6 and on at 100,000.5), first on a literal frame, then
through a whole month (price book to line_items).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from invoicing.core.errors import ExitCode
from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month
from invoicing.pricing.models import graduated
from invoicing.pricing.models.graduated import Band, GraduatedTerms
from tests.builders import PRICEBOOK_KRW, PRICEBOOK_USD, MonthBuilder, assert_stopped, d, run_cli

USD_TERMS = GraduatedTerms(10_000, 10_000, (Band(10, Decimal("149.99")),
                                            Band(None, Decimal("99.99"))))
KRW_TERMS = GraduatedTerms(10_000, 10_000, (Band(2, Decimal("206000")),
                                            Band(5, Decimal("150000")),
                                            Band(None, Decimal("100000.5"))))

BLOCK_SECTION = '''[version.dau_overage]
free_quota = 10000
block = 10000
price_per_block = "{price}"
'''
USD_BANDS = '''[version.dau_overage]
model = "graduated"
free_quota = 10000
block = 10000

[[version.dau_overage.band]]
up_to_blocks = 10
price_per_block = "149.99"

[[version.dau_overage.band]]
price_per_block = "99.99"
'''
KRW_BANDS = '''[version.dau_overage]
model = "graduated"
free_quota = 10000
block = 10000

[[version.dau_overage.band]]
up_to_blocks = 2
price_per_block = "206000"

[[version.dau_overage.band]]
up_to_blocks = 5
price_per_block = "150000"

[[version.dau_overage.band]]
price_per_block = "100000.5"
'''


def graduated_book(usd: str = USD_BANDS, krw: str = KRW_BANDS) -> str:
    """The test price book with the DAU overage of each currency replaced."""
    book = (PRICEBOOK_USD.replace(BLOCK_SECTION.format(price="149.99"), usd)
            + PRICEBOOK_KRW.replace(BLOCK_SECTION.format(price="206000"), krw))
    assert book.count('model = "graduated"') == (usd + krw).count('model = "graduated"')
    return book.format(policy="month_start")


def priced(terms: GraduatedTerms, peaks: list[int], minor_units: int) -> pl.DataFrame:
    frame = graduated.terms_frame({"v": terms})
    rows = pl.DataFrame({"pricebook_version": ["v"] * len(peaks), "peak_value": peaks,
                         "minor_units": [minor_units] * len(peaks)})
    return rows.join(frame, on="pricebook_version").select(
        "peak_value", **graduated.price(pl.col("peak_value"), frame))


def band_list(text: str) -> list[tuple[int, int, int, str, str]]:
    return [(b["first_block"], b["last_block"], b["blocks"], b["price_per_block"], b["amount"])
            for b in json.loads(text)]


# --- the model on a frame ----------------------------------------------------------------


def test_usd_bands_at_zero_one_the_edge_and_beyond() -> None:
    got = priced(USD_TERMS, [0, 10_000, 10_001, 110_000, 110_001, 260_000], minor_units=2)
    assert got["blocks"].to_list() == [0, 0, 1, 10, 11, 25]
    assert got["quantity"].to_list() == [0, 0, 1, 1, 1, 1]
    assert got["amount"].to_list() == [
        Decimal("0"), Decimal("0"),
        Decimal("149.99"),                       # 1 × 149.99
        Decimal("1499.90"),                      # exactly the first band's edge: 10 × 149.99
        Decimal("1599.89"),                      # 10 × 149.99 + 1 × 99.99
        Decimal("2999.75"),                      # 10 × 149.99 + 15 × 99.99 (1,499.85)
    ]
    # Every line multiplies out: quantity × unit price is the amount.
    assert got["unit_price"].to_list() == got["amount"].to_list()
    assert [band_list(b) for b in got["bands"]] == [
        [], [],
        [(1, 1, 1, "149.99", "149.99")],
        [(1, 10, 10, "149.99", "1499.9")],
        [(1, 10, 10, "149.99", "1499.9"), (11, 11, 1, "99.99", "99.99")],
        [(1, 10, 10, "149.99", "1499.9"), (11, 25, 15, "99.99", "1499.85")],
    ]


def test_krw_bands_round_once_on_the_exact_sum() -> None:
    # 8 blocks: 2 × 206,000 + 3 × 150,000 + 3 × 100,000.5 = 412,000 + 450,000 + 300,001.5
    # = 1,162,001.5, rounded once, half up, to the won: 1,162,002.
    got = priced(KRW_TERMS, [30_000, 50_001, 90_000], minor_units=0).to_dicts()
    assert [(r["blocks"], r["unit_price"], r["amount"]) for r in got] == [
        (2, Decimal("412000"), Decimal("412000")),             # exactly the first edge
        (5, Decimal("862000"), Decimal("862000")),             # 412,000 + 3 × 150,000
        (8, Decimal("1162001.5"), Decimal("1162002")),
    ]
    assert band_list(got[2]["bands"]) == [(1, 2, 2, "206000", "412000"),
                                          (3, 5, 3, "150000", "450000"),
                                          (6, 8, 3, "100000.5", "300001.5")]


def test_one_open_band_is_the_block_model() -> None:
    terms = GraduatedTerms(10_000, 10_000, (Band(None, Decimal("149.99")),))
    got = priced(terms, [10**15], minor_units=2).row(0, named=True)
    # (10^15 − 10,000) / 10,000 = 99,999,999,999 blocks × 149.99, as test_pricing_models
    assert got["amount"] == Decimal("14998999999850.01")


# --- through a month ---------------------------------------------------------------------


def month(book: str) -> MonthBuilder:
    b = MonthBuilder(pricebook=book)
    b.customer("c1").customer("k1", currency="KRW", country="KR", locale="ko_KR")
    b.app(1, "c1").day(1, d(3), dau=125_000)      # 12 blocks
    b.app(2, "c1").day(2, d(4), dau=10_000)       # within the quota
    b.app(3, "k1").day(3, d(5), dau=90_000)       # 8 blocks
    return b


def test_a_month_priced_by_bands_in_usd_and_krw(tmp_path: Path) -> None:
    computed = compute_month(month(graduated_book()).write(tmp_path / "in"), Month(2026, 10))
    dau = computed.assembled.line_items.filter(pl.col("item") == "dau_overage")
    rows = {r["sdk_app_id"]: r for r in dau.to_dicts()}
    assert {app: (r["quantity"], r["unit_price"], r["amount"]) for app, r in rows.items()} == {
        1: (Decimal(1), Decimal("1699.88"), Decimal("1699.88")),  # 10 × 149.99 + 2 × 99.99
        2: (Decimal(0), Decimal("0"), Decimal("0")),
        3: (Decimal(1), Decimal("1162001.5"), Decimal("1162002")),
    }
    assert band_list(rows[1]["bands"]) == [(1, 10, 10, "149.99", "1499.9"),
                                           (11, 12, 2, "99.99", "199.98")]
    assert rows[2]["bands"] == "[]"
    assert rows[1]["description"] == ("DAU overage: peak 125000 on 2026-10-03, free quota "
                                      "10000, excess 115000, 12 block(s) of 10000")
    # The group overage of the same versions stays in blocks: no bands.
    groups = computed.assembled.line_items.filter(pl.col("item") == "group_overage")
    assert groups["bands"].to_list() == [None, None, None]


def test_versions_may_choose_different_models(tmp_path: Path) -> None:
    book = graduated_book(krw=BLOCK_SECTION.format(price="206000"))
    computed = compute_month(month(book).write(tmp_path / "in"), Month(2026, 10))
    dau = computed.assembled.line_items.filter(pl.col("item") == "dau_overage").sort("sdk_app_id")
    assert dau.select("sdk_app_id", "quantity", "unit_price", "amount", "bands").rows() == [
        (1, Decimal(1), Decimal("1699.88"), Decimal("1699.88"),
         dau["bands"][0]),
        (2, Decimal(0), Decimal("0"), Decimal("0"), "[]"),
        (3, Decimal(8), Decimal("206000"), Decimal("1648000"), None),  # 8 blocks × 206,000
    ]


# --- the price book ----------------------------------------------------------------------


@pytest.mark.parametrize(("section", "message"), [
    (USD_BANDS.replace('"graduated"', '"tiered"'),
     "key 'dau_overage.model': unknown pricing model 'tiered'; the known models are blocks, "
     "graduated"),
    (USD_BANDS.replace('price_per_block = "99.99"', 'up_to_blocks = 20\nprice_per_block = '
                       '"99.99"'),
     "key 'dau_overage.band[2].up_to_blocks': the last band has no limit: it takes every "
     "block above the previous band"),
    (USD_BANDS.replace("up_to_blocks = 10\n", ""),
     "key 'dau_overage.band[1].up_to_blocks': missing (only the last band has no limit)"),
    (USD_BANDS.replace("up_to_blocks = 10\n", "up_to_blocks = 0\n"),
     "key 'dau_overage.band[1].up_to_blocks': must be a positive integer"),
    (KRW_BANDS.replace("up_to_blocks = 5", "up_to_blocks = 2"),
     "key 'dau_overage.band[2].up_to_blocks': must be above the previous band's 2"),
    (USD_BANDS.replace('price_per_block = "99.99"', 'price_per_block = 99.99'),
     "key 'dau_overage.band[2].price_per_block': must be a quoted decimal string such as "
     "\"399.00\", got 99.99"),
    (USD_BANDS.replace("block = 10000\n", 'block = 10000\nprice_per_block = "149.99"\n'),
     "key 'dau_overage.price_per_block': not a key of model 'graduated' (its keys: model, "
     "band, block, free_quota)"),
    (USD_BANDS.replace('up_to_blocks = 10\n', 'up_to_blocks = 10\nprice = "1"\n'),
     "key 'dau_overage.band[1].price': not a key of a band (its keys: price_per_block, "
     "up_to_blocks)"),
    (USD_BANDS.split("[[")[0],
     "key 'dau_overage.band': missing"),
])
def test_a_bad_band_stops_the_run_naming_its_key(tmp_path: Path, section: str,
                                                 message: str) -> None:
    book = graduated_book(usd=section)
    folder = month(book).write(tmp_path / "in")
    version = 1 if book.index('currency = "USD"') < book.index('currency = "KRW"') else 2
    assert_stopped(run_cli(folder, tmp_path / "out"), ExitCode.INPUT_ERROR,
                   f"pricebook.toml: version #{version}, {message}", tmp_path / "out")


# --- the bands on the page, in the e-invoice and in diff ----------------------------------


def _text(pdf: Path) -> str:
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(pdf).pages)


def test_bands_are_explained_on_the_page_in_the_xml_and_by_diff(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from lxml import etree

    from invoicing.cli import main
    from invoicing.render import einvoice

    b = MonthBuilder(pricebook=graduated_book().replace('KR = "0.10"', 'KR = "0.10"\nDE = "0.19"'))
    b.customer("c1", country="DE").customer("k1", currency="KRW", country="KR",
                                            locale="ko_KR")
    b.app(1, "c1").day(1, d(3), dau=125_000)      # 12 blocks
    b.app(3, "k1").day(3, d(5), dau=90_000)       # 8 blocks
    folder, out = b.write(tmp_path / "in"), tmp_path / "out"
    assert run_cli(folder, out).exit_code == 0
    month = out / "2026-10"

    usd = _text(month / "invoices/IM-202610-000001.pdf")
    for words in ("12 blocks of 10,000", "Blocks 1–10: 10 × $149.99 = $1,499.90",
                  "Blocks 11–12: 2 × $99.99 = $199.98", "$1,699.88"):
        assert words in usd, words
    krw = _text(month / "invoices/IM-202610-000002.pdf")
    for words in ("8블록 (1블록 = 10,000)", "1–2번째 블록: 2블록 × ₩206,000 = ₩412,000",
                  "6–8번째 블록: 3블록 × ₩100,000.5 = ₩300,001.5", "₩1,162,002"):
        assert words in krw, words

    xml = einvoice.read_embedded_xml(month / "invoices/IM-202610-000001.pdf")
    assert xml is not None
    names = etree.fromstring(xml).xpath("//ram:SpecifiedTradeProduct/ram:Name/text()",
                                        namespaces=einvoice.NS)
    assert ("App 1 App 1: DAU overage: Peak DAU 125,000 on October 3, 2026; Free quota "
            "10,000, excess 115,000; 12 blocks of 10,000; Blocks 1–10: 10 × $149.99 = "
            "$1,499.90; Blocks 11–12: 2 × $99.99 = $199.98") in names

    # verify reads the bands back from every PDF's embedded line items.
    verified = CliRunner().invoke(main, ["verify", "--month", "2026-10", "--input",
                                         str(folder), "--out", str(out)])
    assert verified.exit_code == 0, verified.output

    # One more block (135,000): diff shows the bands before and after.
    usage = folder / "usage/part=0/usage.parquet"
    frame = pl.read_parquet(usage).with_columns(
        dau=pl.when(pl.col("sdk_app_id") == 1).then(135_000).otherwise(pl.col("dau")))
    frame.write_parquet(usage)
    args = ["diff", "--month", "2026-10", "--input", str(folder), "--out", str(out)]
    text = CliRunner().invoke(main, args).output
    assert ("Pro, Peak DAU 125,000 on October 3, 2026, 12 blocks of 10,000, Blocks 1–10: "
            "10 × $149.99 = $1,499.90, Blocks 11–12: 2 × $99.99 = $199.98") in text
    assert "Blocks 11–13: 3 × $99.99 = $299.97" in text
    report = json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).output)
    [line] = report["customers"][0]["lines"]
    assert (line["old_amount"], line["new_amount"]) == ("1699.88", "1799.87")
    assert line["new"]["bands"] == [
        {"first_block": 1, "last_block": 10, "blocks": 10, "price_per_block": "149.99",
         "amount": "1499.9"},
        {"first_block": 11, "last_block": 13, "blocks": 3, "price_per_block": "99.99",
         "amount": "299.97"},
    ]
