"""EN 16931 e-invoices (Factur-X, profile EN 16931) for customers in EU member states.

A Factur-X invoice is the PDF/A-3 a person reads plus a UN/CEFACT Cross Industry
Invoice (CII) XML, ``factur-x.xml``, that the buyer's accounting system reads. This
module builds that XML from the same `InvoiceDocument` the page prints, so every amount
is the page's amount (and the Parquet's); `render` embeds it with the relationship
``Alternative`` and adds the Factur-X XMP extension (`XMP_EXTENSION`).

What the inputs do not say and EN 16931 needs comes from ``templates/seller.toml``
(see `EInvoiceSeller`): the seller's country and VAT identifier, and for each EU
country whose customers pay 0 % VAT, the VAT category (reverse charge ``AE``, exempt
``E``, zero rated ``Z``) and the reason printed in the XML. A customer the XML cannot
describe correctly is refused (`check_month`, exit 3) rather than given an invalid XML.

Signs: a credit note (type code 381) states the amounts it credits as positive figures,
as EN 16931 expects; they are the negation of the credit note's (negative) lines.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO
from xml.etree.ElementTree import Element, SubElement, register_namespace, tostring

import polars as pl

from invoicing.core.documents import InvoiceDocument, Line
from invoicing.core.errors import InputError, Source
from invoicing.core.money import in_minor_units
from invoicing.render import evidence_text

XML_NAME = "factur-x.xml"
#: Where the seller's e-invoice facts live (the renderer reads the same file).
SELLER_FILE = Path(__file__).resolve().parents[2] / "templates" / "seller.toml"
#: BT-24, the specification identifier of the Factur-X EN 16931 profile.
GUIDELINE = "urn:cen.eu:en16931:2017"
#: The 27 member states (ISO 3166 alpha-2; Greece is GR here, EL only in VAT numbers).
EU_MEMBER_STATES = frozenset((
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"))
#: BR-CO-09: a VAT identifier starts with the ISO 3166 code of its country (EL for Greece).
_VAT_PREFIX = re.compile(r"[A-Z]{2}[0-9A-Za-z]")
#: Characters XML 1.0 cannot hold (C0 controls but tab, CR, LF; surrogates; U+FFFE/F).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: VAT categories a 0 % rate may declare, with the VATEX code of the reason (BT-121).
ZERO_RATE_CATEGORIES = {"AE": "VATEX-EU-AE", "E": None, "Z": None}

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


@dataclass(frozen=True)
class ZeroRate:
    """How an e-invoice declares 0 % VAT for customers of one EU country.

    Attributes:
      category: EN 16931 VAT category code: ``AE`` (reverse charge: the buyer accounts
        for the VAT; needs the buyer's VAT id), ``E`` (exempt) or ``Z`` (zero rated).
      reason: the exemption reason text (BT-120); required for AE and E.
    """

    category: str
    reason: str | None


@dataclass(frozen=True)
class EInvoiceSeller:
    """The seller as an EN 16931 party, from ``templates/seller.toml``.

    Attributes:
      name: legal name (BT-27).
      address_lines: the postal address, one entry per line (BT-35..BT-37).
      country: ISO 3166 alpha-2 code of the address (BT-40); None if the file lacks it.
      vat_id: VAT identification number with its country prefix (BT-31); None if absent.
      email: electronic address (BT-34), or None.
      zero_rates: EU country -> how its 0 % VAT is declared.
      source: the file, for error messages.
    """

    name: str
    address_lines: tuple[str, ...]
    country: str | None
    vat_id: str | None
    email: str | None
    zero_rates: Mapping[str, ZeroRate]
    source: str


def load_seller(path: Path) -> EInvoiceSeller:
    """Read the e-invoice facts of ``seller.toml``; a bad ``zero_rated_vat`` entry raises."""
    label = f"templates/{path.name}"
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    zero_rates: dict[str, ZeroRate] = {}
    for country, entry in sorted(data.get("zero_rated_vat", {}).items()):
        key = f"key 'zero_rated_vat.{country}'"
        if not isinstance(entry, dict) or entry.get("category") not in ZERO_RATE_CATEGORIES:
            raise InputError(Source(label), f"{key}: needs category = \"AE\", \"E\" or \"Z\"")
        reason = entry.get("reason")
        if entry["category"] in ("AE", "E") and not reason:
            raise InputError(Source(label), f"{key}: category {entry['category']} needs a "
                                            "reason (the exemption reason text of the e-invoice)")
        zero_rates[country] = ZeroRate(entry["category"], reason)
    return EInvoiceSeller(
        name=str(data["name"]),
        address_lines=tuple(ln.strip() for ln in str(data.get("address", "")).splitlines()
                            if ln.strip()),
        country=data.get("country"),
        vat_id=data.get("vat_id"),
        email=data.get("email"),
        zero_rates=zero_rates,
        source=label,
    )


def is_eu(country: str) -> bool:
    return country in EU_MEMBER_STATES


@dataclass(frozen=True)
class VatCategory:
    """The one VAT breakdown of a document (the rate is per customer, so one category).

    Attributes:
      code: ``S`` (standard), ``AE``, ``E`` or ``Z``.
      percent: the rate in percent (``19``, ``0``).
      reason: exemption reason text, or None.
      reason_code: VATEX code, or None.
    """

    code: str
    percent: Decimal
    reason: str | None
    reason_code: str | None


def vat_category(customer_id: str, country: str, tax_id: str | None, rate: Decimal,
                 seller: EInvoiceSeller, customers: Source | None = None) -> VatCategory:
    """The customer's VAT category, or `InputError` naming what the inputs lack.

    ``customers`` names the customer's row for the error of a missing VAT id.
    """
    if not seller.country or not seller.vat_id:
        missing = "country" if not seller.country else "vat_id"
        raise InputError(Source(seller.source),
                         f"key {missing!r} missing: customer {customer_id} ({country}) gets an "
                         "EN 16931 e-invoice, which needs the seller's country and VAT "
                         "identifier")
    if tax_id and not _VAT_PREFIX.match(tax_id):
        raise InputError(customers or Source("customers", "tax_id"),
                         f"customer {customer_id} ({country}) has the tax id {tax_id!r}, "
                         "which an EN 16931 e-invoice can only carry as a VAT identifier "
                         "starting with its country code (such as DE811234567)")
    percent = (rate * 100).normalize()
    if rate > 0:
        return VatCategory("S", percent, None, None)
    zero = seller.zero_rates.get(country)
    if zero is None:
        raise InputError(Source(seller.source),
                         f"key 'zero_rated_vat.{country}' missing: customer {customer_id} "
                         f"({country}) pays 0 % VAT; its EN 16931 e-invoice needs the VAT "
                         "category (AE, E or Z) and the reason")
    if zero.category == "AE" and not tax_id:
        raise InputError(customers or Source("customers", "tax_id"),
                         f"customer {customer_id} ({country}) is invoiced under reverse "
                         f"charge (zero_rated_vat.{country} = AE in {seller.source}) and "
                         "needs its VAT identifier")
    return VatCategory(zero.category, Decimal(0), zero.reason,
                       ZERO_RATE_CATEGORIES[zero.category])


def check_month(customers: pl.DataFrame, invoices: pl.DataFrame, label: str = "customers",
                seller: EInvoiceSeller | None = None) -> None:
    """Refuse (before anything is written) an EU customer its e-invoice cannot describe.

    ``invoices`` in `INVOICE_SCHEMA`; ``label`` names the customers file in errors. Only
    numbered invoices of EU customers are checked, so a month without EU customers never
    reads the seller file.
    """
    eu = invoices.filter(pl.col("invoice_number").is_not_null()).join(
        customers.with_row_index("_row", offset=1).select(
            "customer_id", "country", "tax_id", "_row"), on="customer_id"
    ).filter(pl.col("country").is_in(sorted(EU_MEMBER_STATES))).sort("customer_id")
    for row in eu.iter_rows(named=True):
        seller = seller or load_seller(SELLER_FILE)
        vat_category(row["customer_id"], row["country"], row["tax_id"], row["tax_rate"], seller,
                     Source(label, "tax_id", row["_row"]))


# --- the CII XML --------------------------------------------------------------------------


def _el(parent: Element, tag: str, text: object = None, **attrs: str) -> Element:
    prefix, name = tag.split(":")
    child = SubElement(parent, f"{{{NS[prefix]}}}{name}", attrs)
    if text is not None:
        # Customer text may hold control characters the PDF prints but XML cannot carry.
        child.text = _NOT_XML.sub("\ufffd", str(text))
    return child


def _date(parent: Element, tag: str, day: object, kind: str = "udt") -> None:
    _el(_el(parent, tag), f"{kind}:DateTimeString", f"{day:%Y%m%d}", format="102")


def _number(value: Decimal) -> str:
    """A decimal in plain notation without trailing zeros (``149.99``, ``19``)."""
    return format(value.normalize(), "f")


def _address(party: Element, lines: tuple[str, ...], country: str) -> None:
    address = _el(party, "ram:PostalTradeAddress")
    head = [*lines[:2], ", ".join(lines[2:])] if len(lines) > 2 else list(lines)
    for tag, text in zip(("ram:LineOne", "ram:LineTwo", "ram:LineThree"), head, strict=False):
        _el(address, tag, text)
    _el(address, "ram:CountryID", country)


def _line(tx: Element, number: int, name: str, line: Line, sign: int, currency: str,
          vat: VatCategory) -> None:
    item = _el(tx, "ram:IncludedSupplyChainTradeLineItem")
    _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", number)
    product = _el(item, "ram:SpecifiedTradeProduct")
    _el(product, "ram:SellerAssignedID", line.item)
    _el(product, "ram:Name", name)
    price = _el(_el(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice")
    _el(price, "ram:ChargeAmount", _number(line.unit_price))
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
    _el(tax, "ram:RateApplicablePercent", _number(vat.percent))
    _el(_el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation"),
        "ram:LineTotalAmount", in_minor_units(sign * line.amount, currency))


def _parties(tx: Element, doc: InvoiceDocument, seller: EInvoiceSeller) -> None:
    agreement = _el(tx, "ram:ApplicableHeaderTradeAgreement")
    _el(agreement, "ram:BuyerReference", doc.customer.customer_id)
    party = _el(agreement, "ram:SellerTradeParty")
    _el(party, "ram:Name", seller.name)
    _address(party, seller.address_lines, str(seller.country))
    if seller.email:
        _el(_el(party, "ram:URIUniversalCommunication"), "ram:URIID", seller.email,
            schemeID="EM")
    _el(_el(party, "ram:SpecifiedTaxRegistration"), "ram:ID", seller.vat_id, schemeID="VA")
    buyer = doc.customer
    party = _el(agreement, "ram:BuyerTradeParty")
    _el(party, "ram:ID", buyer.customer_id)
    _el(party, "ram:Name", buyer.name)
    _address(party, tuple(ln.strip() for ln in buyer.address.splitlines() if ln.strip()),
             buyer.country)
    if buyer.email:
        _el(_el(party, "ram:URIUniversalCommunication"), "ram:URIID", buyer.email,
            schemeID="EM")
    if buyer.tax_id:
        _el(_el(party, "ram:SpecifiedTaxRegistration"), "ram:ID", buyer.tax_id, schemeID="VA")


def _settlement(tx: Element, doc: InvoiceDocument, sign: int, vat: VatCategory) -> None:
    cur = doc.currency
    settlement = _el(tx, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:InvoiceCurrencyCode", cur)
    tax = _el(settlement, "ram:ApplicableTradeTax")
    _el(tax, "ram:CalculatedAmount", in_minor_units(sign * doc.tax, cur))
    _el(tax, "ram:TypeCode", "VAT")
    if vat.reason:
        _el(tax, "ram:ExemptionReason", vat.reason)
    _el(tax, "ram:BasisAmount", in_minor_units(sign * doc.subtotal, cur))
    _el(tax, "ram:CategoryCode", vat.code)
    if vat.reason_code:
        _el(tax, "ram:ExemptionReasonCode", vat.reason_code)
    _el(tax, "ram:RateApplicablePercent", _number(vat.percent))
    period = _el(settlement, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", doc.period_start)
    _date(period, "ram:EndDateTime", doc.period_end)
    _date(_el(settlement, "ram:SpecifiedTradePaymentTerms"), "ram:DueDateDateTime",
          doc.due_date)
    sums = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(sums, "ram:LineTotalAmount", in_minor_units(sign * doc.subtotal, cur))
    _el(sums, "ram:TaxBasisTotalAmount", in_minor_units(sign * doc.subtotal, cur))
    _el(sums, "ram:TaxTotalAmount", in_minor_units(sign * doc.tax, cur), currencyID=cur)
    _el(sums, "ram:GrandTotalAmount", in_minor_units(sign * doc.total, cur))
    _el(sums, "ram:DuePayableAmount", in_minor_units(sign * doc.total, cur))
    preceding = doc.credits_invoice or doc.replaces_invoice
    if preceding:
        _el(_el(settlement, "ram:InvoiceReferencedDocument"), "ram:IssuerAssignedID", preceding)


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
    number = 0
    for app in doc.apps:
        for line in app.lines:
            number += 1
            # The line's name: the app, then the words of the page (`evidence_text`).
            name = evidence_text.describe(line, doc.locale, doc.currency,
                                          plan_changed=app.plan_changed,
                                          period_start=doc.period_start)
            _line(tx, number, f"App {app.sdk_app_id} {app.app_name}: {name}", line, sign,
                  doc.currency, vat)
    _parties(tx, doc, seller)
    # BT-72: the service is delivered through the last day of the billing period (an
    # empty delivery element is a warning of the EN 16931 rules).
    delivery = _el(_el(tx, "ram:ApplicableHeaderTradeDelivery"),
                   "ram:ActualDeliverySupplyChainEvent")
    _date(delivery, "ram:OccurrenceDateTime", doc.period_end)
    _settlement(tx, doc, sign, vat)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="utf-8",
                                                                    xml_declaration=False)


# --- reading it back (verify, tests) ------------------------------------------------------


@dataclass(frozen=True)
class XmlFigures:
    """The figures of an embedded XML that `verify` compares with the recomputation.

    Attributes:
      number: BT-1, the document number.
      type_code: ``380`` or ``381``.
      line_amounts: BT-131 of every line, in order.
      subtotal: BT-106 (sum of line amounts).
      tax: BT-110.
      total: BT-112.
    """

    number: str
    type_code: str
    line_amounts: tuple[Decimal, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal


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
