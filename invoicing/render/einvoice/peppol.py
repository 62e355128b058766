"""Peppol BIS Billing 3.0: a UBL 2.1 Invoice or CreditNote written beside the PDF.

Belgium requires it for B2B invoices since January 2026, and German and French buyers
accept it. The file goes to ``invoices/<number>.xml`` (``credit_notes/<number>.xml`` for a
credit note) next to the PDF, is listed in the manifest with its SHA-256, and is what an
access point would send over the Peppol network (sending is not part of the batch). The
buyer's Peppol participant id (``peppol_scheme`` + ``peppol_id`` of `customers`) is the
document's endpoint; the seller's comes from ``seller.toml``.

Amounts are the page's, signed as EN 16931 expects: a credit note states what it credits
as positive figures. A prorated plan fee states the monthly fee as the price of
``days_in_month`` days and the days on the plan as the quantity, as in Factur-X; where
that product misses the rounded amount by more than Peppol's tolerance (PEPPOL-EN16931-R120,
0.02: a currency without minor units), the line states its own amount as the price of
its days instead.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from xml.etree.ElementTree import (
    Element,
    ParseError,
    SubElement,
    fromstring,
    register_namespace,
    tostring,
)

from invoicing.core.documents import InvoiceDocument, Line, Party
from invoicing.core.errors import InputError, Source
from invoicing.render.einvoice.common import (
    CREDIT_NOTE_TERMS,
    EInvoiceSeller,
    Payment,
    VatCategory,
    XmlFigures,
    amount_text,
    buyer_reference,
    line_items,
    number_text,
    payment_for,
    street_lines,
    vat_category,
    xml_text,
)
from invoicing.storage import readable

CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
for _prefix in NS:
    register_namespace(_prefix, NS[_prefix])
#: A Peppol electronic address scheme (EAS) is a four-digit code (``0208``, ``9925``).
_EAS = re.compile(r"[0-9]{4}")
#: PEPPOL-EN16931-R120: how far quantity x price may be from the line amount.
_SLACK = Decimal("0.02")


class _Writer:
    """Builds one UBL document: elements in the default namespace of the root, ``cac:`` and
    ``cbc:`` children, every amount with the document's currency."""

    def __init__(self, currency: str) -> None:
        self.currency = currency

    def el(self, parent: Element, tag: str, text: object = None, **attrs: str) -> Element:
        prefix, name = tag.split(":")
        child = SubElement(parent, f"{{{NS[prefix]}}}{name}", attrs)
        if text is not None:
            child.text = xml_text(text)
        return child

    def amount(self, parent: Element, tag: str, value: Decimal) -> None:
        self.el(parent, tag, amount_text(value, self.currency), currencyID=self.currency)


def _address(w: _Writer, party: Element, lines: tuple[str, ...], postcode: str | None,
             city: str | None, country: str) -> None:
    address = w.el(party, "cac:PostalAddress")
    head = street_lines(lines)
    for tag, text in zip(("cbc:StreetName", "cbc:AdditionalStreetName"), head, strict=False):
        w.el(address, tag, text)
    if city:
        w.el(address, "cbc:CityName", city)
    if postcode:
        w.el(address, "cbc:PostalZone", postcode)
    if len(head) > 2:
        w.el(w.el(address, "cac:AddressLine"), "cbc:Line", head[2])
    w.el(w.el(address, "cac:Country"), "cbc:IdentificationCode", country)


def _tax_scheme(w: _Writer, parent: Element, company_id: str) -> None:
    scheme = w.el(parent, "cac:PartyTaxScheme")
    w.el(scheme, "cbc:CompanyID", company_id)
    w.el(w.el(scheme, "cac:TaxScheme"), "cbc:ID", "VAT")


def _seller(w: _Writer, root: Element, seller: EInvoiceSeller, pay: Payment | None) -> None:
    party = w.el(w.el(root, "cac:AccountingSupplierParty"), "cac:Party")
    w.el(party, "cbc:EndpointID", seller.peppol_id, schemeID=str(seller.peppol_scheme))
    if pay and pay.creditor_id:  # BT-90, the SEPA creditor identifier
        w.el(w.el(party, "cac:PartyIdentification"), "cbc:ID", pay.creditor_id,
             schemeID="SEPA")
    _address(w, party, seller.address_lines, seller.postcode, seller.city, str(seller.country))
    _tax_scheme(w, party, str(seller.vat_id))
    w.el(w.el(party, "cac:PartyLegalEntity"), "cbc:RegistrationName", seller.name)
    if seller.email:
        w.el(w.el(party, "cac:Contact"), "cbc:ElectronicMail", seller.email)


def _buyer(w: _Writer, root: Element, buyer: Party) -> None:
    party = w.el(w.el(root, "cac:AccountingCustomerParty"), "cac:Party")
    w.el(party, "cbc:EndpointID", buyer.peppol_id, schemeID=str(buyer.peppol_scheme))
    w.el(w.el(party, "cac:PartyIdentification"), "cbc:ID", buyer.customer_id)
    _address(w, party, buyer.address_lines, buyer.postcode, buyer.city, buyer.country)
    if buyer.tax_id:
        _tax_scheme(w, party, buyer.tax_id)
    w.el(w.el(party, "cac:PartyLegalEntity"), "cbc:RegistrationName", buyer.name)
    if buyer.email:
        w.el(w.el(party, "cac:Contact"), "cbc:ElectronicMail", buyer.email)


def _payment(w: _Writer, root: Element, pay: Payment) -> None:
    means = w.el(root, "cac:PaymentMeans")
    w.el(means, "cbc:PaymentMeansCode", pay.code)
    w.el(means, "cbc:PaymentID", pay.reference)
    if pay.iban:
        account = w.el(means, "cac:PayeeFinancialAccount")
        w.el(account, "cbc:ID", pay.iban)
        if pay.account_name:
            w.el(account, "cbc:Name", pay.account_name)
        if pay.bic:
            w.el(w.el(account, "cac:FinancialInstitutionBranch"), "cbc:ID", pay.bic)
    if pay.mandate_reference:
        w.el(w.el(means, "cac:PaymentMandate"), "cbc:ID", pay.mandate_reference)


def _tax_category(w: _Writer, parent: Element, tag: str, vat: VatCategory,
                  reasons: bool) -> None:
    category = w.el(parent, tag)
    w.el(category, "cbc:ID", vat.code)
    w.el(category, "cbc:Percent", number_text(vat.percent))
    if reasons and vat.reason_code:
        w.el(category, "cbc:TaxExemptionReasonCode", vat.reason_code)
    if reasons and vat.reason:
        w.el(category, "cbc:TaxExemptionReason", vat.reason)
    w.el(w.el(category, "cac:TaxScheme"), "cbc:ID", "VAT")


def _line(w: _Writer, root: Element, credit: bool, number: int, name: str, line: Line,
          sign: int, vat: VatCategory) -> None:
    item_line = w.el(root, "cac:CreditNoteLine" if credit else "cac:InvoiceLine")
    w.el(item_line, "cbc:ID", number)
    amount = sign * line.amount
    unit, quantity, price, base = "C62", Decimal(int(line.quantity)), line.unit_price, None
    if line.days_in_month is not None and line.days_on_plan is not None:
        unit, quantity, base = "DAY", Decimal(line.days_on_plan), Decimal(line.days_in_month)
        if abs(quantity * price / base - abs(amount)) > _SLACK:
            price, base = abs(amount), quantity
    w.el(item_line, "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity",
         number_text(quantity), unitCode=unit)
    w.amount(item_line, "cbc:LineExtensionAmount", amount)
    item = w.el(item_line, "cac:Item")
    w.el(item, "cbc:Name", name)
    w.el(w.el(item, "cac:SellersItemIdentification"), "cbc:ID", line.item)
    _tax_category(w, item, "cac:ClassifiedTaxCategory", vat, reasons=False)
    price_el = w.el(item_line, "cac:Price")
    w.el(price_el, "cbc:PriceAmount", number_text(price), currencyID=w.currency)
    if base is not None:
        w.el(price_el, "cbc:BaseQuantity", number_text(base), unitCode=unit)


def ubl_xml(doc: InvoiceDocument, seller: EInvoiceSeller) -> bytes:
    """The document as a Peppol BIS Billing 3.0 UBL Invoice or CreditNote (no clock)."""
    buyer = doc.customer
    vat = vat_category(buyer.customer_id, buyer.country, buyer.tax_id, doc.tax_rate, seller)
    credit = doc.kind == "credit_note"
    sign = -1 if credit else 1
    w = _Writer(doc.currency)
    root = Element(f"{{{NS['cn' if credit else 'inv']}}}{'CreditNote' if credit else 'Invoice'}")
    w.el(root, "cbc:CustomizationID", CUSTOMIZATION)
    w.el(root, "cbc:ProfileID", PROFILE)
    w.el(root, "cbc:ID", doc.invoice_number)
    w.el(root, "cbc:IssueDate", doc.issue_date.isoformat())
    if not credit:
        w.el(root, "cbc:DueDate", doc.due_date.isoformat())
    w.el(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode",
         "381" if credit else "380")
    w.el(root, "cbc:DocumentCurrencyCode", doc.currency)
    w.el(root, "cbc:BuyerReference", buyer_reference(buyer))
    period = w.el(root, "cac:InvoicePeriod")
    w.el(period, "cbc:StartDate", doc.period_start.isoformat())
    w.el(period, "cbc:EndDate", doc.period_end.isoformat())
    preceding = doc.credits_invoice or doc.replaces_invoice
    if preceding:
        ref = w.el(w.el(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
        w.el(ref, "cbc:ID", preceding)
        if doc.credits_invoice and doc.credits_invoice_date:  # BT-26
            w.el(ref, "cbc:IssueDate", doc.credits_invoice_date.isoformat())
    pay = payment_for(doc, seller)
    _seller(w, root, seller, pay)
    _buyer(w, root, buyer)
    w.el(w.el(root, "cac:Delivery"), "cbc:ActualDeliveryDate", doc.period_end.isoformat())
    if pay:
        _payment(w, root, pay)
    if credit:
        w.el(w.el(root, "cac:PaymentTerms"), "cbc:Note", CREDIT_NOTE_TERMS)
    tax_total = w.el(root, "cac:TaxTotal")
    w.amount(tax_total, "cbc:TaxAmount", sign * doc.tax)
    subtotal = w.el(tax_total, "cac:TaxSubtotal")
    w.amount(subtotal, "cbc:TaxableAmount", sign * doc.subtotal)
    w.amount(subtotal, "cbc:TaxAmount", sign * doc.tax)
    _tax_category(w, subtotal, "cac:TaxCategory", vat, reasons=True)
    sums = w.el(root, "cac:LegalMonetaryTotal")
    w.amount(sums, "cbc:LineExtensionAmount", sign * doc.subtotal)
    w.amount(sums, "cbc:TaxExclusiveAmount", sign * doc.subtotal)
    w.amount(sums, "cbc:TaxInclusiveAmount", sign * doc.total)
    w.amount(sums, "cbc:PayableAmount", sign * doc.total)
    for number, name, line in line_items(doc):
        _line(w, root, credit, number, name, line, sign, vat)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="utf-8",
                                                                    xml_declaration=False)


def read_figures(xml: bytes) -> XmlFigures:
    """Parse the figures back out of a Peppol UBL file; ValueError if it is not one."""
    try:
        root = fromstring(xml)
    except ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
    credit = root.tag == f"{{{NS['cn']}}}CreditNote"
    if not credit and root.tag != f"{{{NS['inv']}}}Invoice":
        raise ValueError("not a UBL Invoice or CreditNote")

    def text(path: str) -> str:
        node = root.find(path, NS)
        if node is None or node.text is None:
            raise ValueError(f"no {path.rsplit('/', 1)[-1]}")
        return node.text

    line = "cac:CreditNoteLine" if credit else "cac:InvoiceLine"
    return XmlFigures(
        number=text("cbc:ID"),
        type_code=text("cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode"),
        line_amounts=tuple(Decimal(str(n.text)) for n in
                           root.findall(f"{line}/cbc:LineExtensionAmount", NS)),
        subtotal=Decimal(text("cac:LegalMonetaryTotal/cbc:LineExtensionAmount")),
        tax=Decimal(text("cac:TaxTotal/cbc:TaxAmount")),
        total=Decimal(text("cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount")),
    )


class PeppolBis:
    """Peppol BIS Billing 3.0 (UBL 2.1), written beside the PDF (`EInvoiceFormat`)."""

    name = "peppol"
    title = "Peppol BIS Billing 3.0 (UBL)"
    kinds = frozenset({"invoice", "credit_note"})
    embedded_name: str | None = None
    xmp_extension: bytes | None = None

    def check(self, buyer: Party, seller: EInvoiceSeller, label: str, row: int) -> None:
        """A Peppol buyer needs its participant id and a structured address; the seller
        its own participant id."""
        def refuse(column: str, why: str) -> None:
            raise InputError(Source(label, column, row), f"customer {buyer.customer_id} "
                             f"({buyer.country}) gets a Peppol BIS 3.0 e-invoice, {why}")

        if not buyer.peppol_scheme or not _EAS.fullmatch(buyer.peppol_scheme):
            refuse("peppol_scheme", "which needs the four-digit scheme (EAS code, such as "
                   "0208) of its Peppol participant id")
        if not buyer.peppol_id:
            refuse("peppol_id", "which needs its Peppol participant id")
        for column in ("postcode", "city"):
            if not getattr(buyer, column):
                refuse(column, f"which needs the {column} of its address")
        if not seller.peppol_scheme or not seller.peppol_id or not seller.city \
                or not seller.postcode:
            missing = next(k for k in ("peppol_scheme", "peppol_id", "city", "postcode")
                           if not getattr(seller, k))
            raise InputError(Source(seller.source), f"key {missing!r} missing: customer "
                             f"{buyer.customer_id} ({buyer.country}) gets a Peppol BIS 3.0 "
                             "e-invoice, which needs the seller's Peppol participant id "
                             "(peppol_scheme, peppol_id) and structured address")

    def file_name(self, kind: str, number: str) -> str:
        """``invoices/<number>.xml`` or ``credit_notes/<number>.xml``, beside the PDF."""
        folder = "credit_notes" if kind == "credit_note" else "invoices"
        return f"{folder}/{number}.xml"

    def build(self, doc: InvoiceDocument, seller: EInvoiceSeller) -> bytes:
        return ubl_xml(doc, seller)

    def read(self, pdf: Path, files: Path, kind: str, number: str) -> bytes | None:
        """The file beside the PDF, or None when there is none."""
        path = files / self.file_name(kind, number)
        if not path.is_file():
            return None
        source = readable(path)
        if isinstance(source, Path):
            return source.read_bytes()
        return source.read()

    def figures(self, xml: bytes) -> XmlFigures:
        return read_figures(xml)


PEPPOL = PeppolBis()
