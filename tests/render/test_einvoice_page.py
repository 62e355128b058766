"""What the page of an EU VAT invoice prints (Art. 226 of the VAT Directive), and the
payment instructions every page prints from ``templates/seller.toml``.

Rendered from hand-built documents (tests/documents_factory.py): the seller's VAT id with
its label, the buyer's VAT id, "VAT" on the tax line, "Reverse charge" in the invoice's
language, the exemption reason of E and Z, the structured address, the buyer reference
(BT-10), the payment instructions (credit transfer, SEPA direct debit, card), and a
credit note that names the date of the invoice it reverses and no due date.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

import invoicing.render.pdf as pdf_module
from invoicing.core.documents import InvoiceDocument, Party
from invoicing.render import einvoice
from invoicing.render.pdf import InvoiceRenderer
from tests.documents_factory import CUSTOMERS, make_document
from tests.render.test_render import assert_in_cjk, text_of

IBAN = "IE29AIBK93115212345678"


@pytest.fixture(scope="module")
def renderer() -> InvoiceRenderer:
    return InvoiceRenderer()


def eu_document(country: str, tax_id: str | None, rate: str, locale: str = "en_US",
                **party: str | None) -> InvoiceDocument:
    customer = Party("C9", "Muster GmbH", "buchhaltung@muster.example", "Hauptstraße 1",
                     country, tax_id, **party)  # type: ignore[arg-type]
    doc = make_document(locale, customer=customer)
    tax = (doc.subtotal * Decimal(rate)).quantize(Decimal("0.01"))
    return replace(doc, tax_rate=Decimal(rate), tax=tax, total=doc.subtotal + tax)


def test_standard_rated_eu_page(renderer: InvoiceRenderer) -> None:
    doc = eu_document("DE", "DE811234567", "0.19", postcode="10117", city="Berlin",
                      buyer_reference="PO-4711")
    text = text_of(renderer.render_pdf(doc))
    assert "VAT ID IE3456789TH" in text  # the seller's, as its e-invoice states it
    assert "VAT ID DE811234567" in text  # the buyer's, with that label
    assert "VAT (19%)" in text and "Tax (" not in text
    assert "Hauptstraße 1 10117 Berlin" in text  # street, then "post code city"
    assert "Your reference PO-4711" in text
    assert "Reverse charge" not in text
    # Payment instructions: credit transfer to the seller's account, quoting the number.
    assert f"IBAN {IBAN}" in text and "BIC AIBKIE2D" in text
    assert f"Payment reference {doc.invoice_number}" in text
    assert "Bank transfer to IM Cloud Services Ltd." in text


@pytest.mark.parametrize(("country", "tax_id", "heading", "reason"), [
    ("FR", "FR40303265045", "Reverse charge",
     "VAT to be accounted for by the recipient (Art. 196, Directive 2006/112/EC)"),
    ("AT", "ATU12345675", "Exempt from VAT",
     "Exempt: education services (Art. 132(1)(i), Directive 2006/112/EC)"),
    ("LU", None, "Zero-rated supply", "Zero-rated supply"),
])
def test_zero_rated_eu_pages_say_why(renderer: InvoiceRenderer, country: str,
                                     tax_id: str | None, heading: str, reason: str) -> None:
    text = text_of(renderer.render_pdf(eu_document(country, tax_id, "0")))
    assert f"{heading} · {reason}" in text
    assert "VAT (0%)" in text


def test_reverse_charge_in_the_invoice_language(renderer: InvoiceRenderer) -> None:
    text = text_of(renderer.render_pdf(eu_document("FR", "FR40303265045", "0", "ko_KR")))
    assert_in_cjk("역발행 과세(Reverse charge): 매입자 납부", text)
    assert_in_cjk("부가가치세 등록번호 IE3456789TH", text)
    assert_in_cjk("결제 방법", text)


def test_a_page_outside_the_eu_keeps_tax_and_its_address(renderer: InvoiceRenderer) -> None:
    doc = make_document("en_US")
    text = text_of(renderer.render_pdf(doc))
    assert "VAT" not in text and "Tax (" in text
    assert "Tax ID" in text or doc.customer.tax_id is None
    assert doc.customer.postal_line is None
    assert f"IBAN {IBAN}" in text  # every page says how to pay


def test_direct_debit_and_card(renderer: InvoiceRenderer, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    doc = eu_document("DE", None, "0.19", mandate_reference="MND-9")
    text = text_of(renderer.render_pdf(doc))
    assert "Collected by SEPA direct debit on November 3, 2026." in text
    assert "Creditor ID IE98ZZZ300001" in text and "Mandate reference MND-9" in text
    assert "IBAN" not in text
    seller = einvoice.load_seller(einvoice.SELLER_FILE)
    assert seller.payment is not None
    card = replace(seller, payment=replace(seller.payment, method="card"))
    monkeypatch.setattr(pdf_module, "_einvoice_seller", lambda path: card)
    text = text_of(renderer.render_pdf(replace(doc, customer=CUSTOMERS["en_US"])))
    assert "Charged to the card on file on November 3, 2026." in text
    assert "IBAN" not in text


def test_credit_note_names_the_invoice_date_and_no_due_date(renderer: InvoiceRenderer
                                                            ) -> None:
    doc = eu_document("FR", "FR40303265045", "0")
    apps = tuple(replace(a, subtotal=-a.subtotal, lines=tuple(
        replace(ln, amount=-ln.amount) for ln in a.lines)) for a in doc.apps)
    note = replace(doc, kind="credit_note", invoice_number="CN-202610-000001", apps=apps,
                   credits_invoice="IM-202610-000007", credits_invoice_date=date(2026, 11, 1),
                   subtotal=-doc.subtotal, tax=-doc.tax, total=-doc.total)
    text = text_of(renderer.render_pdf(note))
    assert "Credits invoice IM-202610-000007 of November 1, 2026" in text
    assert "The credited amount is refunded or set off against the next invoice; no payment " \
           "is due." in text
    assert "Due date" not in text and "IBAN" not in text
    assert "-€0.00" not in text and "Reverse charge" in text
