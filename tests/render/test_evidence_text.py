"""The words that explain a line: one module for the page, the reports and the e-invoice,
in the three languages of the catalogues."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from invoicing.render import evidence_text

GRADUATED = {
    "item": "dau_overage", "plan": "pro", "quantity": Decimal(1),
    "unit_price": Decimal("1699.88"), "amount": Decimal("1699.88"), "peak_value": 125_000,
    "peak_date": date(2026, 10, 3), "free_quota": 10_000, "block": 10_000, "excess": 115_000,
    "bands": '[{"first_block":1,"last_block":10,"blocks":10,"price_per_block":"149.99",'
             '"amount":"1499.9"},{"first_block":11,"last_block":11,"blocks":1,'
             '"price_per_block":"99.99","amount":"99.99"}]',
}
BLOCKS = {**GRADUATED, "quantity": Decimal(2), "unit_price": Decimal("149.99"),
          "amount": Decimal("299.98"), "bands": None, "peak_value": 25_000, "excess": 15_000}


@pytest.mark.parametrize(("locale", "expected"), [
    ("en_US", ["Peak DAU 125,000 on October 3, 2026", "Free quota 10,000, excess 115,000",
               "11 blocks of 10,000", "Blocks 1–10: 10 × $149.99 = $1,499.90",
               "Block 11: 1 × $99.99 = $99.99"]),
    ("ko_KR", ["최대 DAU 125,000 (2026년 10월 3일)", "무료 할당량 10,000, 초과량 115,000",
               "11블록 (1블록 = 10,000)", "1–10번째 블록: 10블록 × US$149.99 = US$1,499.90",
               "11번째 블록: 1블록 × US$99.99 = US$99.99"]),
    ("zh_CN", ["DAU 峰值 125,000（2026年10月3日）", "免费额度 10,000，超出 115,000",
               "11 个计费单位（每单位 10,000）",
               "第 1–10 个计费单位：10 个 × US$149.99 = US$1,499.90",
               "第 11 个计费单位：1 个 × US$99.99 = US$99.99"]),
])
def test_graduated_bands_in_every_language(locale: str, expected: list[str]) -> None:
    facts = evidence_text.line_facts(GRADUATED, locale, "USD")
    assert [f.text for f in facts] == expected
    assert [f.kind for f in facts] == ["peak", "quota", "blocks", "band", "band"]


def test_the_report_and_the_xml_use_the_page_words() -> None:
    assert evidence_text.summary(BLOCKS, "en_US", "USD") == (
        "Pro, Peak DAU 25,000 on October 3, 2026, 2 blocks of 10,000")
    assert evidence_text.summary(GRADUATED, "en_US", "USD") == (
        "Pro, Peak DAU 125,000 on October 3, 2026, 11 blocks of 10,000, Blocks 1–10: 10 × "
        "$149.99 = $1,499.90, Block 11: 1 × $99.99 = $99.99")
    assert evidence_text.describe(BLOCKS, "en_US", "USD", plan_changed=True) == (
        "DAU overage: Peak DAU 25,000 on October 3, 2026 (Pro); Free quota 10,000, excess "
        "15,000; 2 blocks of 10,000 × $149.99")


def test_one_label_per_item_and_plan() -> None:
    assert evidence_text.item_label("group_member_limit", "en_US") == (
        "Members per group extension")
    assert evidence_text.item_label("group_member_limit", "ko_KR") == (
        "라이브 방송 그룹 외 그룹 인원 제한 확장")
    assert evidence_text.plan_label("free", "zh_CN") == "免费体验版"
    with pytest.raises(KeyError):
        evidence_text.item_label("unknown_item", "en_US")
