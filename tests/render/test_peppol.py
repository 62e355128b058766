"""Peppol BIS Billing 3.0 (UBL) beside the PDF, and the e-invoice format interface.

The sample month's Peppol buyer (C1017, Belgium) gets ``invoices/<number>.xml`` next to
its PDF, listed in the manifest; it must pass the CEN EN 16931 UBL rules and the
OpenPeppol BIS 3.0 rules (tests/peppol_check.py) with no failed assertion, carry exactly
the Parquet's amounts, and `verify` must read it back. A third format plugs in with one
class (`test_a_third_format_is_one_class`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from lxml import etree
from pypdf import PdfReader

from invoicing.audit.verify.facts import check_einvoice as _check_einvoice
from invoicing.cli import main
from invoicing.core.documents import InvoiceDocument, Party
from invoicing.core.errors import ExitCode
from invoicing.render import einvoice
from invoicing.render.einvoice.common import XmlFigures
from invoicing.render.einvoice.peppol import NS
from tests.builders import PRICEBOOK_USD, MonthBuilder, assert_stopped, d, run_cli
from tests.conftest import sample_copy
from tests.documents_factory import make_app, make_document, prorated_lines
from tests.facturx_check import validation_failures as cii_failures
from tests.peppol_check import schematron_report, validation_failures, xsd_errors

pytestmark = pytest.mark.slow

NUMBER = "IM-202610-000016"  # C1017, the sample month's Peppol buyer


def xpath(xml: bytes, path: str) -> list[str]:
    return [str(v) for v in etree.fromstring(xml).xpath(path, namespaces=NS)]


@pytest.fixture(scope="module")
def sample_out(tmp_path_factory: pytest.TempPathFactory,
               sample_published: tuple[Path, str, str]) -> Path:
    return sample_copy(sample_published, tmp_path_factory.mktemp("peppol"))


def test_sample_peppol_invoice_is_beside_the_pdf_listed_and_valid(sample_out: Path) -> None:
    month = sample_out / "out/2026-10"
    xml = (month / f"invoices/{NUMBER}.xml").read_bytes()
    assert validation_failures(xml) == []
    assert sorted(p.name for p in month.rglob("*.xml")) == [f"{NUMBER}.xml"]
    outputs = json.loads((month / "manifest.json").read_text(encoding="utf-8"))["outputs"]
    assert outputs[f"invoices/{NUMBER}.xml"] == hashlib.sha256(xml).hexdigest()
    # Its PDF carries the line items only: the XML is beside it, not embedded.
    assert sorted(PdfReader(month / f"invoices/{NUMBER}.pdf").attachments) == [
        "line_items.csv"]
    row = pl.read_parquet(month / "invoices.parquet").filter(
        pl.col("invoice_number") == NUMBER).row(0, named=True)
    amounts = pl.read_parquet(month / "line_items.parquet").filter(
        pl.col("invoice_number") == NUMBER)["amount"].to_list()
    assert einvoice.PEPPOL.figures(xml) == XmlFigures(
        NUMBER, "380", tuple(amounts), row["subtotal"], row["tax"], row["total"])
    assert (row["subtotal"], row["tax"], row["total"]) == (
        Decimal("458.00"), Decimal("96.18"), Decimal("554.18"))


def test_sample_peppol_parties_payment_and_vat(sample_out: Path) -> None:
    xml = (sample_out / f"out/2026-10/invoices/{NUMBER}.xml").read_bytes()
    assert xpath(xml, "/*/cbc:CustomizationID/text()") == [
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"]
    buyer = "//cac:AccountingCustomerParty/cac:Party/"
    assert xpath(xml, buyer + "cbc:EndpointID/@schemeID") == ["0208"]
    assert xpath(xml, buyer + "cbc:EndpointID/text()") == ["0812345603"]
    assert xpath(xml, buyer + "cac:PostalAddress/cbc:CityName/text()") == ["Gent"]
    assert xpath(xml, buyer + "cac:PostalAddress/cbc:PostalZone/text()") == ["9000"]
    assert xpath(xml, buyer + "cac:PostalAddress/cbc:StreetName/text()") == [
        "Kortrijksesteenweg 12"]
    assert xpath(xml, "//cac:AccountingSupplierParty//cbc:EndpointID/text()") == [
        "IE3456789TH"]
    assert xpath(xml, "/*/cbc:BuyerReference/text()") == ["PO-2026-118"]
    # C1017 signed a SEPA mandate: direct debit (59) under the seller's creditor id.
    assert xpath(xml, "//cac:PaymentMeans/cbc:PaymentMeansCode/text()") == ["59"]
    assert xpath(xml, "//cac:PaymentMandate/cbc:ID/text()") == ["KANAAL-SDD-0001"]
    assert xpath(xml, "//cac:PartyIdentification/cbc:ID[@schemeID='SEPA']/text()") == [
        "IE98ZZZ300001"]
    assert xpath(xml, "//cac:TaxSubtotal/cac:TaxCategory/cbc:ID/text()") == ["S"]
    assert xpath(xml, "//cac:TaxSubtotal/cac:TaxCategory/cbc:Percent/text()") == ["21"]
    assert xpath(xml, "/*/cbc:DueDate/text()") == ["2026-11-03"]


def test_peppol_rules_can_fail(sample_out: Path) -> None:
    """The rules run: a total one cent off breaks BR-CO-15 and BR-CO-16, a lost endpoint
    PEPPOL-EN16931-R010, an element out of order the UBL XSD."""
    xml = (sample_out / f"out/2026-10/invoices/{NUMBER}.xml").read_bytes()
    broken = xml.replace(b'<cbc:TaxInclusiveAmount currencyID="EUR">554.18<',
                         b'<cbc:TaxInclusiveAmount currencyID="EUR">554.19<')
    assert broken != xml
    assert [f.split()[0] for f in schematron_report(broken, "CEN-EN16931-UBL.xslt")[1]] == [
        "BR-CO-15", "BR-CO-16"]
    no_endpoint = xml.replace(b'<cbc:EndpointID schemeID="0208">0812345603</cbc:EndpointID>',
                              b"")
    assert [f.split()[0] for f in validation_failures(no_endpoint)] == [
        "PEPPOL-EN16931-R010"]
    # The XSD: a note before the profile is out of UBL's element order.
    misplaced = xml.replace(b"<cbc:ProfileID>", b"<cbc:Note>x</cbc:Note><cbc:ProfileID>")
    assert "Element '{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}" \
           "Note': This element is not expected." in xsd_errors(misplaced)[0]


def test_verify_reads_the_peppol_file_back(sample_out: Path) -> None:
    result = CliRunner().invoke(main, ["verify", "--month", "2026-10", "--input",
                                       str(sample_out / "in"), "--out", str(sample_out / "out")])
    assert result.exit_code == 0, result.output
    files = sample_out / "out/2026-10"
    pdf = files / f"invoices/{NUMBER}.pdf"
    row = pl.read_parquet(files / "invoices.parquet").filter(
        pl.col("invoice_number") == NUMBER).row(0, named=True)
    items = pl.read_parquet(files / "line_items.parquet").filter(
        pl.col("invoice_number") == NUMBER)["amount"].to_list()
    buyer = einvoice.buyers(pl.read_csv(sample_out / "in/customers.csv",
                                        infer_schema=False))["C1017"]
    assert _check_einvoice(pdf, files, buyer, row, items) == []
    xml = files / f"invoices/{NUMBER}.xml"
    assert _check_einvoice(pdf, files, buyer, {**row, "tax": row["tax"] + 1}, items) == [
        f"{xml}: invoices/{NUMBER}.xml differs from the recomputed month"]
    # Had the customer chosen Factur-X, both the file beside and the missing embedded XML
    # would be reported.
    facturx = replace(buyer, einvoice_format="facturx")
    assert _check_einvoice(pdf, files, facturx, row, items) == [
        f"{pdf}: no factur-x.xml for customer C1017 (BE), whose format is facturx",
        f"{xml}: a Peppol BIS Billing 3.0 (UBL) e-invoice (invoices/{NUMBER}.xml) for "
        "customer C1017, whose format is facturx"]


# --- one document ------------------------------------------------------------------------

BELGIAN = Party("C9", "Kanaal Media BV", "boekhouding@kanaal.example", "Kortrijksesteenweg 12",
                "BE", "BE0812345603", postcode="9000", city="Gent", einvoice_format="peppol",
                peppol_scheme="0208", peppol_id="0812345603")


def belgian_document(currency: str = "USD", locale: str = "en_US") -> InvoiceDocument:
    apps = (make_app(1400000001, "Chat <&>", currency=currency),
            make_app(1400000002, "Support", prorated_lines(currency), currency=currency))
    doc = make_document(locale, customer=BELGIAN, apps=apps, currency=currency)
    digits = Decimal("1") if currency == "KRW" else Decimal("0.01")
    tax = (doc.subtotal * Decimal("0.21")).quantize(digits)
    return replace(doc, tax_rate=Decimal("0.21"), tax=tax, total=doc.subtotal + tax)


def credit_note(doc: InvoiceDocument) -> InvoiceDocument:
    """The document reversed as `reissue` builds a credit note: every amount negated."""
    apps = tuple(replace(a, subtotal=-a.subtotal, lines=tuple(
        replace(ln, amount=-ln.amount) for ln in a.lines)) for a in doc.apps)
    return replace(doc, kind="credit_note", invoice_number="CN-202610-000001", apps=apps,
                   credits_invoice=doc.invoice_number, credits_invoice_date=doc.issue_date,
                   subtotal=-doc.subtotal, tax=-doc.tax, total=-doc.total)


@pytest.mark.parametrize("currency", ["USD", "KRW"])
def test_invoice_and_credit_note_pass_both_rule_sets(currency: str) -> None:
    """Prorated lines included; in KRW (no minor unit) a prorated line states its own
    amount as the price of its days, so PEPPOL-EN16931-R120 holds."""
    seller = einvoice.load_seller(einvoice.SELLER_FILE)
    doc = belgian_document(currency)
    xml = einvoice.PEPPOL.build(doc, seller)
    assert validation_failures(xml) == []
    assert xml == einvoice.PEPPOL.build(doc, seller)  # no clock
    assert not [t for t in xpath(xml, "//*/text()") if t.startswith("-")]  # no -0.00
    note = einvoice.PEPPOL.build(credit_note(doc), seller)
    assert validation_failures(note) == []
    assert xpath(note, "/*/cbc:CreditNoteTypeCode/text()") == ["381"]
    assert xpath(note, "//cac:BillingReference//cbc:IssueDate/text()") == ["2026-11-01"]
    assert xpath(note, "//cbc:DueDate/text()") == []
    assert xpath(note, "//cac:PaymentTerms/cbc:Note/text()") == [
        einvoice.common.CREDIT_NOTE_TERMS]
    assert einvoice.PEPPOL.figures(note).total == doc.total


@pytest.mark.parametrize("method", ["credit_transfer", "card"])
def test_payment_means_in_both_syntaxes(method: str) -> None:
    seller = einvoice.load_seller(einvoice.SELLER_FILE)
    assert seller.payment is not None
    seller = replace(seller, payment=replace(seller.payment, method=method))
    doc = replace(belgian_document(), customer=replace(BELGIAN, mandate_reference=None))
    ubl = einvoice.PEPPOL.build(doc, seller)
    cii = einvoice.FACTURX.build(doc, seller)
    assert validation_failures(ubl) == [] and cii_failures(cii) == []
    code = {"credit_transfer": "30", "card": "48"}[method]
    assert xpath(ubl, "//cac:PaymentMeans/cbc:PaymentMeansCode/text()") == [code]
    iban = xpath(ubl, "//cac:PayeeFinancialAccount/cbc:ID/text()")
    assert iban == (["IE29AIBK93115212345678"] if method == "credit_transfer" else [])
    assert xpath(ubl, "//cac:PaymentMeans/cbc:PaymentID/text()") == [doc.invoice_number]


# --- inputs a Peppol document cannot describe are refused ------------------------------


def peppol_month(**optional: str | None) -> MonthBuilder:
    m = MonthBuilder(pricebook=PRICEBOOK_USD.format(policy="month_start"))
    fields = {"postcode": "75002", "city": "Paris", "einvoice_format": "peppol",
              "peppol_scheme": "0009", "peppol_id": "30326504500017", **optional}
    m.customer("C1", country="FR", tax_id="FR40303265045", **fields).app(1, "C1").day(1, d(3))
    return m


def test_a_small_peppol_month_is_written_and_verified(tmp_path: Path) -> None:
    result = run_cli(peppol_month().write(tmp_path / "in"), tmp_path / "out")
    assert result.exit_code == 0, result.output
    xml = (tmp_path / "out/2026-10/invoices/IM-202610-000001.xml").read_bytes()
    assert validation_failures(xml) == []
    assert xpath(xml, "//cac:TaxCategory/cbc:ID/text()") == ["AE"]
    assert xpath(xml, "//cac:TaxCategory/cbc:TaxExemptionReasonCode/text()") == ["VATEX-EU-AE"]
    verify = CliRunner().invoke(main, ["verify", "--month", "2026-10", "--input",
                                       str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert verify.exit_code == 0, verify.output


@pytest.mark.parametrize(("optional", "message"), [
    ({"peppol_id": None}, "customers.parquet, column 'peppol_id', row 1: customer C1 (FR) gets "
     "a Peppol BIS 3.0 e-invoice, which needs its Peppol participant id"),
    ({"peppol_scheme": "iso6523"}, "customers.parquet, column 'peppol_scheme', row 1: customer "
     "C1 (FR) gets a Peppol BIS 3.0 e-invoice, which needs the four-digit scheme (EAS code, "
     "such as 0208) of its Peppol participant id"),
    ({"city": None}, "customers.parquet, column 'city', row 1: customer C1 (FR) gets a Peppol "
     "BIS 3.0 e-invoice, which needs the city of its address"),
    ({"einvoice_format": "xrechnung"}, "customers.parquet, column 'einvoice_format', row 1: "
     "unknown e-invoice format 'xrechnung' (customer C1); one of: none, facturx, peppol"),
])
def test_peppol_inputs_are_checked(tmp_path: Path, optional: dict[str, str | None],
                                   message: str) -> None:
    result = run_cli(peppol_month(**optional).write(tmp_path / "in"), tmp_path / "out")
    assert_stopped(result, ExitCode.INPUT_ERROR, message, tmp_path / "out")


def test_a_format_outside_the_eu_is_refused(tmp_path: Path) -> None:
    m = MonthBuilder(pricebook=PRICEBOOK_USD.format(policy="month_start"))
    m.customer("C1", einvoice_format="facturx").app(1, "C1").day(1, d(3))
    result = run_cli(m.write(tmp_path / "in"), tmp_path / "out")
    assert_stopped(result, ExitCode.INPUT_ERROR,
                   "customers.parquet, column 'einvoice_format', row 1: customer C1 (US) is "
                   "outside the EU: its VAT is not described by EN 16931 e-invoices; leave the "
                   "column empty or write none", tmp_path / "out")


def test_none_opts_an_eu_customer_out(tmp_path: Path) -> None:
    result = run_cli(peppol_month(einvoice_format="none").write(tmp_path / "in"),
                     tmp_path / "out")
    assert result.exit_code == 0, result.output
    pdf = tmp_path / "out/2026-10/invoices/IM-202610-000001.pdf"
    assert sorted(PdfReader(pdf).attachments) == ["line_items.csv"]
    assert not list((tmp_path / "out/2026-10").rglob("*.xml"))


# --- the interface: a third syntax is one class ---------------------------------------


class PlainXml:
    """A made-up syntax written beside the PDF: only what `EInvoiceFormat` asks for."""

    name = "plain"
    title = "Plain XML"
    kinds = frozenset({"invoice"})
    embedded_name = None
    xmp_extension = None

    def check(self, buyer: Party, seller: object, label: str, row: int) -> None:
        pass

    def file_name(self, kind: str, number: str) -> str:
        return f"invoices/{number}.plain.xml"

    def build(self, doc: InvoiceDocument, seller: object) -> bytes:
        lines = " ".join(str(ln.amount) for app in doc.apps for ln in app.lines)
        return (f"<doc n='{doc.invoice_number}' lines='{lines}' sub='{doc.subtotal}' "
                f"tax='{doc.tax}' tot='{doc.total}'/>").encode()

    def read(self, pdf: Path, files: Path, kind: str, number: str) -> bytes | None:
        path = files / self.file_name(kind, number)
        return path.read_bytes() if path.is_file() else None

    def figures(self, xml: bytes) -> XmlFigures:
        el = etree.fromstring(xml)
        return XmlFigures(el.get("n"), "380", tuple(Decimal(a) for a in el.get("lines").split()),
                          Decimal(el.get("sub")), Decimal(el.get("tax")), Decimal(el.get("tot")))


def test_a_third_format_is_one_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(einvoice.FORMATS, "plain", PlainXml())  # type: ignore[arg-type]
    result = run_cli(peppol_month(einvoice_format="plain").write(tmp_path / "in"),
                     tmp_path / "out")
    assert result.exit_code == 0, result.output
    month = tmp_path / "out/2026-10"
    assert (month / "invoices/IM-202610-000001.plain.xml").read_bytes().startswith(
        b"<doc n='IM-202610-000001'")
    assert "invoices/IM-202610-000001.plain.xml" in json.loads(
        (month / "manifest.json").read_text(encoding="utf-8"))["outputs"]
    verify = CliRunner().invoke(main, ["verify", "--month", "2026-10", "--input",
                                       str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert verify.exit_code == 0, verify.output


def test_credit_note_issue_date_is_bt26_in_cii() -> None:
    seller = einvoice.load_seller(einvoice.SELLER_FILE)
    doc = replace(belgian_document(), customer=replace(BELGIAN, einvoice_format=None))
    note = einvoice.FACTURX.build(credit_note(doc), seller)
    assert cii_failures(note) == []
    cii = dict(einvoice.NS)
    tree = etree.fromstring(note)
    assert tree.xpath("//ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime/"
                      "qdt:DateTimeString/text()", namespaces=cii) == ["20261101"]
    assert tree.xpath("//ram:DueDateDateTime", namespaces=cii) == []
    assert doc.issue_date == date(2026, 11, 1)


@pytest.mark.parametrize(("drop", "message"), [
    ("[payment]", "key 'payment' missing: customer C1 (FR) gets an "
     "EN 16931 e-invoice, which needs the payment instructions (BG-16)"),
    ("peppol_id", "key 'peppol_id' missing: customer C1 (FR) gets a "
     "Peppol BIS 3.0 e-invoice, which needs the seller's Peppol participant id "
     "(peppol_scheme, peppol_id) and structured address"),
])
def test_a_seller_file_without_what_the_format_needs_is_refused(
        tmp_path: Path, drop: str, message: str) -> None:
    text = einvoice.SELLER_FILE.read_text(encoding="utf-8")
    if drop == "[payment]":
        start = text.index("[payment]")
        text = text[:start] + text[text.index("[zero_rated_vat.FR]"):]
    else:
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(drop))
    seller = tmp_path / "seller.toml"
    seller.write_text(text, encoding="utf-8")
    # The run's seller is an input (--seller): its e-invoice facts are checked too.
    result = run_cli(peppol_month().write(tmp_path / "in"), tmp_path / "out",
                     "--seller", str(seller))
    assert_stopped(result, ExitCode.INPUT_ERROR, f"{seller}: {message}", tmp_path / "out")
