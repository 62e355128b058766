"""Factur-X (profile EN 16931): a UN/CEFACT Cross Industry Invoice embedded in the PDF/A-3.

A Factur-X invoice is the PDF/A-3 a person reads plus a CII XML, ``factur-x.xml``, that
the buyer's accounting system reads. `FacturX.build` makes that XML from the same
`InvoiceDocument` the page prints, so every amount is the page's amount (and the
Parquet's); the renderer embeds it with the relationship ``Alternative`` and adds the
Factur-X XMP extension (`XMP_EXTENSION`).

Signs: a credit note (type code 381) states the amounts it credits as positive figures,
as EN 16931 expects; they are the negation of the credit note's (negative) lines.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import Element, SubElement, register_namespace, tostring

from invoicing.core.documents import InvoiceDocument, Line, Party
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

XML_NAME = "factur-x.xml"
#: BT-24, the specification identifier of the Factur-X EN 16931 profile.
GUIDELINE = "urn:cen.eu:en16931:2017"

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
for _prefix, _uri in NS.items():
    register_namespace(_prefix, _uri)

#: The Factur-X XMP metadata (document type, file name, version, conformance level) and
#: the PDF/A extension schema that declares the ``fx`` properties, as Factur-X 1.0
#: specifies them. Spliced into the PDF's ``rdf:RDF``; it carries no date.
XMP_EXTENSION = b"""<rdf:Description \
xmlns:fx="urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#" rdf:about="">\
<fx:DocumentType>INVOICE</fx:DocumentType>\
<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName><fx:Version>1.0</fx:Version>\
<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel></rdf:Description>\
<rdf:Description xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" \
xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" \
xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#" rdf:about="">\
<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">\
<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>\
<pdfaSchema:namespaceURI>urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#\
</pdfaSchema:namespaceURI><pdfaSchema:prefix>fx</pdfaSchema:prefix>\
<pdfaSchema:property><rdf:Seq>\
<rdf:li rdf:parseType="Resource"><pdfaProperty:name>DocumentFileName</pdfaProperty:name>\
<pdfaProperty:valueType>Text</pdfaProperty:valueType>\
<pdfaProperty:category>external</pdfaProperty:category>\
<pdfaProperty:description>The name of the embedded XML document</pdfaProperty:description>\
</rdf:li>\
<rdf:li rdf:parseType="Resource"><pdfaProperty:name>DocumentType</pdfaProperty:name>\
<pdfaProperty:valueType>Text</pdfaProperty:valueType>\
<pdfaProperty:category>external</pdfaProperty:category>\
<pdfaProperty:description>The type of the hybrid document in capital letters, e.g. \
INVOICE or ORDER</pdfaProperty:description></rdf:li>\
<rdf:li rdf:parseType="Resource"><pdfaProperty:name>Version</pdfaProperty:name>\
<pdfaProperty:valueType>Text</pdfaProperty:valueType>\
<pdfaProperty:category>external</pdfaProperty:category>\
<pdfaProperty:description>The actual version of the standard applying to the embedded \
XML document</pdfaProperty:description></rdf:li>\
<rdf:li rdf:parseType="Resource"><pdfaProperty:name>ConformanceLevel</pdfaProperty:name>\
<pdfaProperty:valueType>Text</pdfaProperty:valueType>\
<pdfaProperty:category>external</pdfaProperty:category>\
<pdfaProperty:description>The conformance level of the embedded XML document\
</pdfaProperty:description></rdf:li>\
</rdf:Seq></pdfaSchema:property></rdf:li></rdf:Bag></pdfaExtension:schemas>\
</rdf:Description>"""


# --- the CII XML --------------------------------------------------------------------------


def _el(parent: Element, tag: str, text: object = None, **attrs: str) -> Element:
    prefix, name = tag.split(":")
    child = SubElement(parent, f"{{{NS[prefix]}}}{name}", attrs)
    if text is not None:
        child.text = xml_text(text)
    return child


def _date(parent: Element, tag: str, day: object, kind: str = "udt") -> None:
    _el(_el(parent, tag), f"{kind}:DateTimeString", f"{day:%Y%m%d}", format="102")


def _address(party: Element, lines: tuple[str, ...], country: str, postcode: str | None,
             city: str | None) -> None:
    address = _el(party, "ram:PostalTradeAddress")
    if postcode:
        _el(address, "ram:PostcodeCode", postcode)
    for tag, text in zip(("ram:LineOne", "ram:LineTwo", "ram:LineThree"), street_lines(lines),
                         strict=False):
        _el(address, tag, text)
    if city:
        _el(address, "ram:CityName", city)
    _el(address, "ram:CountryID", country)


def _line(tx: Element, number: int, name: str, line: Line, sign: int, currency: str,
          vat: VatCategory) -> None:
    item = _el(tx, "ram:IncludedSupplyChainTradeLineItem")
    _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", number)
    product = _el(item, "ram:SpecifiedTradeProduct")
    _el(product, "ram:SellerAssignedID", line.item)
    _el(product, "ram:Name", name)
    price = _el(_el(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice")
    _el(price, "ram:ChargeAmount", number_text(line.unit_price))
    unit, quantity = "C62", int(line.quantity)
    if line.days_in_month is not None and line.days_on_plan is not None:
        # A prorated plan fee: the monthly fee is the price of days_in_month days, and the
        # quantity is the days on the plan, so quantity x price = the (rounded) amount.
        unit, quantity = "DAY", line.days_on_plan
        _el(price, "ram:BasisQuantity", line.days_in_month, unitCode=unit)
    _el(_el(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", quantity,
        unitCode=unit)
    settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    tax = _el(settlement, "ram:ApplicableTradeTax")
    _el(tax, "ram:TypeCode", "VAT")
    _el(tax, "ram:CategoryCode", vat.code)
    _el(tax, "ram:RateApplicablePercent", number_text(vat.percent))
    _el(_el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation"),
        "ram:LineTotalAmount", amount_text(sign * line.amount, currency))


def _parties(tx: Element, doc: InvoiceDocument, seller: EInvoiceSeller) -> None:
    agreement = _el(tx, "ram:ApplicableHeaderTradeAgreement")
    buyer = doc.customer
    _el(agreement, "ram:BuyerReference", buyer_reference(buyer))
    party = _el(agreement, "ram:SellerTradeParty")
    _el(party, "ram:Name", seller.name)
    _address(party, seller.address_lines, str(seller.country), seller.postcode, seller.city)
    if seller.email:
        _el(_el(party, "ram:URIUniversalCommunication"), "ram:URIID", seller.email,
            schemeID="EM")
    _el(_el(party, "ram:SpecifiedTaxRegistration"), "ram:ID", seller.vat_id, schemeID="VA")
    party = _el(agreement, "ram:BuyerTradeParty")
    _el(party, "ram:ID", buyer.customer_id)
    _el(party, "ram:Name", buyer.name)
    _address(party, buyer.address_lines, buyer.country, buyer.postcode, buyer.city)
    if buyer.email:
        _el(_el(party, "ram:URIUniversalCommunication"), "ram:URIID", buyer.email,
            schemeID="EM")
    if buyer.tax_id:
        _el(_el(party, "ram:SpecifiedTaxRegistration"), "ram:ID", buyer.tax_id, schemeID="VA")


def _payment_means(settlement: Element, pay: Payment) -> None:
    means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    _el(means, "ram:TypeCode", pay.code)
    if pay.iban:
        account = _el(means, "ram:PayeePartyCreditorFinancialAccount")
        _el(account, "ram:IBANID", pay.iban)
        if pay.account_name:
            _el(account, "ram:AccountName", pay.account_name)
    if pay.bic:
        _el(_el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution"), "ram:BICID", pay.bic)


def _settlement(tx: Element, doc: InvoiceDocument, sign: int, vat: VatCategory,
                pay: Payment | None) -> None:
    cur = doc.currency
    settlement = _el(tx, "ram:ApplicableHeaderTradeSettlement")
    if pay and pay.creditor_id:
        _el(settlement, "ram:CreditorReferenceID", pay.creditor_id)
    if pay:
        _el(settlement, "ram:PaymentReference", pay.reference)
    _el(settlement, "ram:InvoiceCurrencyCode", cur)
    if pay:
        _payment_means(settlement, pay)
    tax = _el(settlement, "ram:ApplicableTradeTax")
    _el(tax, "ram:CalculatedAmount", amount_text(sign * doc.tax, cur))
    _el(tax, "ram:TypeCode", "VAT")
    if vat.reason:
        _el(tax, "ram:ExemptionReason", vat.reason)
    _el(tax, "ram:BasisAmount", amount_text(sign * doc.subtotal, cur))
    _el(tax, "ram:CategoryCode", vat.code)
    if vat.reason_code:
        _el(tax, "ram:ExemptionReasonCode", vat.reason_code)
    _el(tax, "ram:RateApplicablePercent", number_text(vat.percent))
    period = _el(settlement, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", doc.period_start)
    _date(period, "ram:EndDateTime", doc.period_end)
    terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
    if doc.kind == "credit_note":
        # No due date: nothing is due on a credit note, and its page shows none (BT-20
        # says so instead, as BR-CO-25 asks of a positive amount without a due date).
        _el(terms, "ram:Description", CREDIT_NOTE_TERMS)
    else:
        _date(terms, "ram:DueDateDateTime", doc.due_date)
    if pay and pay.mandate_reference:
        _el(terms, "ram:DirectDebitMandateID", pay.mandate_reference)
    sums = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(sums, "ram:LineTotalAmount", amount_text(sign * doc.subtotal, cur))
    _el(sums, "ram:TaxBasisTotalAmount", amount_text(sign * doc.subtotal, cur))
    _el(sums, "ram:TaxTotalAmount", amount_text(sign * doc.tax, cur), currencyID=cur)
    _el(sums, "ram:GrandTotalAmount", amount_text(sign * doc.total, cur))
    _el(sums, "ram:DuePayableAmount", amount_text(sign * doc.total, cur))
    preceding = doc.credits_invoice or doc.replaces_invoice
    if preceding:
        ref = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(ref, "ram:IssuerAssignedID", preceding)
        if doc.credits_invoice and doc.credits_invoice_date:  # BT-26
            _date(ref, "ram:FormattedIssueDateTime", doc.credits_invoice_date, "qdt")


def cii_xml(doc: InvoiceDocument, seller: EInvoiceSeller) -> bytes:
    """The document as a Factur-X EN 16931 CII XML (UTF-8, no clock, same bytes each time)."""
    buyer = doc.customer
    vat = vat_category(buyer.customer_id, buyer.country, buyer.tax_id, doc.tax_rate, seller)
    credit = doc.kind == "credit_note"
    sign = -1 if credit else 1
    root = Element(f"{{{NS['rsm']}}}CrossIndustryInvoice")
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", GUIDELINE)
    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", doc.invoice_number)
    _el(header, "ram:TypeCode", "381" if credit else "380")
    _date(header, "ram:IssueDateTime", doc.issue_date)
    tx = _el(root, "rsm:SupplyChainTradeTransaction")
    for number, name, line in line_items(doc):
        _line(tx, number, name, line, sign, doc.currency, vat)
    _parties(tx, doc, seller)
    # BT-72: the service is delivered through the last day of the billing period (an
    # empty delivery element is a warning of the EN 16931 rules).
    delivery = _el(_el(tx, "ram:ApplicableHeaderTradeDelivery"),
                   "ram:ActualDeliverySupplyChainEvent")
    _date(delivery, "ram:OccurrenceDateTime", doc.period_end)
    _settlement(tx, doc, sign, vat, payment_for(doc, seller))
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="utf-8",
                                                                    xml_declaration=False)


# --- reading it back (verify, tests) ------------------------------------------------------


def read_embedded_xml(pdf: Path | IO[bytes]) -> bytes | None:
    """The ``factur-x.xml`` embedded in a PDF, or None when it has none."""
    from pypdf import PdfReader

    found = PdfReader(pdf).attachments.get(XML_NAME)
    return found[0] if found else None


def read_figures(xml: bytes) -> XmlFigures:
    """Parse the figures back out of a ``factur-x.xml``; ValueError if it is not one."""
    from xml.etree.ElementTree import ParseError, fromstring

    try:
        root = fromstring(xml)
    except ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
    ns = dict(NS)

    def text(path: str) -> str:
        node = root.find(path, ns)
        if node is None or node.text is None:
            raise ValueError(f"no {path.rsplit('/', 1)[-1]} in {XML_NAME}")
        return node.text

    sums = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/" \
           "ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
    lines = root.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem/"
                         "ram:SpecifiedLineTradeSettlement/"
                         "ram:SpecifiedTradeSettlementLineMonetarySummation/"
                         "ram:LineTotalAmount", ns)
    return XmlFigures(
        number=text("rsm:ExchangedDocument/ram:ID"),
        type_code=text("rsm:ExchangedDocument/ram:TypeCode"),
        line_amounts=tuple(Decimal(str(node.text)) for node in lines),
        subtotal=Decimal(text(sums + "ram:LineTotalAmount")),
        tax=Decimal(text(sums + "ram:TaxTotalAmount")),
        total=Decimal(text(sums + "ram:GrandTotalAmount")),
    )


class FacturX:
    """The Factur-X EN 16931 format: CII XML embedded in the PDF/A-3 (`EInvoiceFormat`)."""

    name = "facturx"
    title = "Factur-X EN 16931 (CII)"
    kinds = frozenset({"invoice", "credit_note"})
    embedded_name: str | None = XML_NAME
    xmp_extension: bytes | None = XMP_EXTENSION

    def check(self, buyer: Party, seller: EInvoiceSeller, label: str, row: int) -> None:
        """Nothing beyond the checks every format makes (`einvoice.check_month`)."""

    def file_name(self, kind: str, number: str) -> str:
        return XML_NAME

    def build(self, doc: InvoiceDocument, seller: EInvoiceSeller) -> bytes:
        return cii_xml(doc, seller)

    def read(self, pdf: Path, files: Path, kind: str, number: str) -> bytes | None:
        """The XML embedded in ``pdf`` (``files`` and the number are not needed)."""
        return read_embedded_xml(readable(pdf))

    def figures(self, xml: bytes) -> XmlFigures:
        return read_figures(xml)


FACTURX = FacturX()
