"""What a customer can follow on the PDF alone (issue 14), checked on the extracted text.

* the plan story of each app: when its plan changed during the month, its section says
  so, and every line whose price depends on the plan names that plan;
* prorated plan fees print share of the month × monthly fee = amount, and the notes explain the
  price book's plan-fee policy (not the other one);
* an overage within the free quota is one evidence row without an amount;
* a continued app repeats its name on the next page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

from invoicing.core.documents import InvoiceDocument
from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month, documents
from invoicing.render.pdf import InvoiceRenderer
from tests.builders import MonthBuilder, d

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "2026-10"
SELLER = ("IM Cloud Services Ltd.", "1 Harbour Road")


@pytest.fixture(scope="module")
def renderer() -> InvoiceRenderer:
    return InvoiceRenderer()


@pytest.fixture(scope="module")
def sample_docs() -> dict[str, InvoiceDocument]:
    docs: Iterator[InvoiceDocument] = documents(compute_month(SAMPLE, Month(2026, 10)), SELLER)
    return {doc.invoice_number: doc for doc in docs}


def pages(renderer: InvoiceRenderer, doc: InvoiceDocument) -> list[str]:
    reader = PdfReader(BytesIO(renderer.render_pdf(doc)))
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def test_an_app_that_changed_plan_tells_its_plan_story(
        renderer: InvoiceRenderer, sample_docs: dict[str, InvoiceDocument]) -> None:
    text = " ".join(pages(renderer, sample_docs["IM-202610-000001"]))
    # Acme Support Desk: Flagship on the 1st, Pro from the 15th (month_start: Flagship fee).
    start = text.index("Acme Support Desk SDKAppID 1400000102")
    section = text[start:text.index("App subtotal", start)]
    assert section.startswith(
        "Acme Support Desk SDKAppID 1400000102 "
        "Plan: Flagship until October 14, 2026 · Pro from October 15, 2026 ")
    assert "Plan fee Plan in force on October 1, 2026: Flagship 1 $1,199.00 $1,199.00" in section
    # Flagship includes unlimited live-broadcast groups: the line says which plan did not.
    assert ("Unlimited live- broadcast groups Not included in Pro Active 31 days "
            "(Oct 1 – 31, 2026) 1 $99.00 $99.00") in section
    assert "Peak group count 250,000 on October 6, 2026 (Flagship)" in section
    # The DAU peak stayed within the quota: evidence, no money line.
    assert ("Within the free quota Peak DAU 6,223 on October 25, 2026, free quota 10,000"
            in section)
    assert "DAU overage" not in section
    # An app created mid-month, and an app on one plan all month.
    other = " ".join(pages(renderer, sample_docs["IM-202610-000002"]))
    assert "Plan: Pro from October 10, 2026" in other
    assert "Bluebird Events SDKAppID 1400000202 Plan: Flagship all month" in other
    assert ("A plan change applies at once to features and quotas, and to the plan fee "
            "from the next month.") in text


@pytest.mark.parametrize("number, story", [
    ("IM-202610-000006",
     "플랜: 2026년 10월 14일까지 플래그십 버전 · 2026년 10월 15일부터 프로 버전"),
    ("IM-202610-000010", "套餐：2026年10月22日前为专业版 · 2026年10月23日起为旗舰版"),
])
def test_plan_story_in_korean_and_chinese(renderer: InvoiceRenderer,
                                          sample_docs: dict[str, InvoiceDocument],
                                          number: str, story: str) -> None:
    assert story in " ".join(pages(renderer, sample_docs[number])).replace("\u2060", "")


def test_a_prorated_invoice_multiplies_out_and_explains_its_policy(
        renderer: InvoiceRenderer, sample_docs: dict[str, InvoiceDocument]) -> None:
    text = " ".join(pages(renderer, sample_docs["IM-202610-000010"]))
    # 云帆IM under prorate_daily: 22/31 × ¥999.00 = ¥708.97; 9/31 × ¥2,999.00 = ¥870.68.
    assert "22/31 ¥999.00 ¥708.97" in text
    assert "9/31 ¥2,999.00 ¥870.68" in text
    assert "数量：按月费计 22/31 个月" in text
    assert "套餐费按天计算" in text
    assert "套餐费按当月 1 日生效的套餐收取" not in text


def test_a_long_invoice_repeats_the_app_name_and_keeps_totals_with_the_notes(
        tmp_path: Path, renderer: InvoiceRenderer) -> None:
    b = MonthBuilder().customer("c1")
    b.app(1, "c1", plan="pro", name="Big app")
    for addon, tier in (("group_member_limit", "3000"), ("groups_per_user", "2000"),
                        ("history_retention_days", "60"), ("avchatroom_unlimited", "on")):
        b.event(1, d(1), addon, tier)
    for app in range(2, 16):
        b.app(app, "c1", plan="pro", name=f"App {app:02d}")
        b.event(app, d(1), "history_retention_days", "60").event(app, d(1), "av_call", "on")
        b.day(app, d(3), dau=25_000, groups=250_000)
    computed = compute_month(b.write(tmp_path / "in"), Month(2026, 10))
    (doc,) = documents(computed, SELLER)
    texts = pages(renderer, doc)
    assert len(texts) >= 3
    heads = [re.findall(r"((?:Big app|App \d\d) SDKAppID \d+) Plan: Pro all month Item Details",
                        page) for page in texts]
    # Every later page starts with an app's head, or holds the closing totals and notes.
    assert all(head or "Subtotal" in text for head, text in zip(heads[1:], texts[1:],
                                                                 strict=True))
    # 15 apps, and the head of every app that continues onto the next page is repeated.
    named = [name for page in heads for name in page]
    assert len(set(named)) == 15 and len(named) > 15
    assert "Subtotal" in texts[-1] and "Postpaid monthly billing" in texts[-1]


def test_chinese_bold_is_a_real_bold_face(renderer: InvoiceRenderer,
                                          sample_docs: dict[str, InvoiceDocument]) -> None:
    """Bold Chinese comes from InvoiceHans-Bold.otf (CFF outlines), not from WenQuanYi
    (TrueType) emboldened by Pango."""
    reader = PdfReader(BytesIO(renderer.render_pdf(sample_docs["IM-202610-000010"])))
    files = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            name = str(font["/BaseFont"]).split("+", 1)[1]
            files[name] = sorted(k for k in descriptor if k.startswith("/FontFile"))
    assert files == {"Invoice-Hans": ["/FontFile2"], "Invoice-Hans-Bold": ["/FontFile3"]}
