"""EN 16931 e-invoices (Factur-X) inside the PDFs of EU customers.

Every EU invoice, credit note and replacement invoice of the sample month and of a
generated month must pass the Factur-X EN 16931 XSD and Schematron (tests/facturx_check.py)
with zero failures, carry exactly the amounts of the Parquet files, and only EU customers'
PDFs may embed a ``factur-x.xml``.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pikepdf
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from lxml import etree
from pypdf import PdfReader

from benchmarks.synth import SynthSpec, generate
from invoicing.audit.verify.facts import check_einvoice as _check_einvoice
from invoicing.cli import main
from invoicing.core.documents import Party
from invoicing.core.errors import ExitCode
from invoicing.render import einvoice
from invoicing.render.pdf import InvoiceRenderer
from tests.builders import PRICEBOOK_USD, MonthBuilder, assert_stopped, d, run_cli
from tests.conftest import sample_copy
from tests.documents_factory import make_app, make_document, prorated_lines
from tests.facturx_check import schematron_report, validation_failures

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "2026-10"
NS = dict(einvoice.NS)
#: The sample month's Factur-X invoices (C1017, IM-202610-000016, is Peppol: test_peppol.py).
EU_SAMPLE = {"IM-202610-000014": "C1015", "IM-202610-000015": "C1016",
             "IM-202610-000017": "C1018", "IM-202610-000018": "C1019"}

pytestmark = pytest.mark.slow


def attachments(pdf: Path) -> dict[str, bytes]:
    return {name: data[0] for name, data in PdfReader(pdf).attachments.items()}


def xml_of(pdf: Path) -> bytes:
    return attachments(pdf)[einvoice.XML_NAME]


def xpath(xml: bytes, path: str) -> list[str]:
    return [str(v) for v in etree.fromstring(xml).xpath(path, namespaces=NS)]


def assert_matches(xml: bytes, number: str, totals: dict[str, Decimal],
                   amounts: list[Decimal], sign: int = 1) -> None:
    """The XML's number, line amounts and totals are the Parquet's, to the cent."""
    got = einvoice.read_figures(xml)
    assert got.number == number
    assert got.line_amounts == tuple(sign * a for a in amounts)
    assert (got.subtotal, got.tax, got.total) == (
        sign * totals["subtotal"], sign * totals["tax"], sign * totals["total"])


# --- the sample month -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_out(tmp_path_factory: pytest.TempPathFactory,
               sample_published: tuple[Path, str, str]) -> Path:
    return sample_copy(sample_published, tmp_path_factory.mktemp("einvoice"))


def test_sample_eu_invoices_pass_xsd_and_schematron(sample_out: Path) -> None:
    for number in EU_SAMPLE:
        xml = xml_of(sample_out / f"out/2026-10/invoices/{number}.pdf")
        assert validation_failures(xml) == [], number


def test_sample_xml_amounts_equal_the_parquet(sample_out: Path) -> None:
    month = sample_out / "out/2026-10"
    invoices = pl.read_parquet(month / "invoices.parquet")
    items = pl.read_parquet(month / "line_items.parquet")
    eu = invoices.join(pl.read_csv(SAMPLE / "customers.csv").select("customer_id", "country"),
                       on="customer_id").filter(pl.col("country").is_in(["DE", "FR", "AT", "LU"]))
    assert sorted(eu["invoice_number"]) == sorted(EU_SAMPLE)
    for row in eu.iter_rows(named=True):
        number = row["invoice_number"]
        amounts = items.filter(pl.col("invoice_number") == number)["amount"].to_list()
        assert_matches(xml_of(month / f"invoices/{number}.pdf"), number, row, amounts)


def test_sample_vat_breakdown_and_parties(sample_out: Path) -> None:
    de = xml_of(sample_out / "out/2026-10/invoices/IM-202610-000014.pdf")
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
    assert xpath(de, tax + "ram:CategoryCode/text()") == ["S"]
    assert xpath(de, tax + "ram:RateApplicablePercent/text()") == ["19"]
    assert xpath(de, tax + "ram:BasisAmount/text()") == ["1662.99"]
    assert xpath(de, tax + "ram:CalculatedAmount/text()") == ["315.97"]
    assert xpath(de, "//ram:DuePayableAmount/text()") == ["1978.96"]
    address = "//ram:BuyerTradeParty/ram:PostalTradeAddress/"
    assert xpath(de, address + "ram:CountryID/text()") == ["DE"]
    # Structured address (BR-DE-4/-9): post code and city apart from the street line.
    assert xpath(de, address + "ram:PostcodeCode/text()") == ["10117"]
    assert xpath(de, address + "ram:LineOne/text()") == ["Friedrichstraße 68"]
    assert xpath(de, address + "ram:CityName/text()") == ["Berlin"]
    assert xpath(de, "//ram:BuyerReference/text()") == ["KF-2026-0042"]
    # BG-16: credit transfer (30) to the seller's IBAN, quoting the invoice number.
    means = "//ram:SpecifiedTradeSettlementPaymentMeans/"
    assert xpath(de, means + "ram:TypeCode/text()") == ["30"]
    assert xpath(de, means + "ram:PayeePartyCreditorFinancialAccount/ram:IBANID/text()") == [
        "IE29AIBK93115212345678"]
    assert xpath(de, means + "ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID/text()"
                 ) == ["AIBKIE2D"]
    assert xpath(de, "//ram:PaymentReference/text()") == ["IM-202610-000014"]
    assert xpath(de, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID/text()") == [
        "IE3456789TH"]
    assert xpath(de, "//rsm:ExchangedDocument/ram:TypeCode/text()") == ["380"]
    assert xpath(de, "//ram:BillingSpecifiedPeriod//udt:DateTimeString/text()") == [
        "20261001", "20261031"]
    assert xpath(de, "//ram:DueDateDateTime/udt:DateTimeString/text()") == ["20261103"]
    fr = xml_of(sample_out / "out/2026-10/invoices/IM-202610-000015.pdf")
    assert xpath(fr, tax + "ram:CategoryCode/text()") == ["AE"]
    assert xpath(fr, tax + "ram:RateApplicablePercent/text()") == ["0"]
    assert xpath(fr, tax + "ram:ExemptionReasonCode/text()") == ["VATEX-EU-AE"]
    assert xpath(fr, tax + "ram:CalculatedAmount/text()") == ["0.00"]
    assert xpath(fr, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID/text()") == [
        "FR40303265045"]
    # One XML line per charge, with quantity, unit price and amount.
    assert xpath(fr, "//ram:IncludedSupplyChainTradeLineItem//ram:BilledQuantity/text()") == [
        "1", "0", "0", "1", "1", "0", "1"]
    assert xpath(fr, "//ram:NetPriceProductTradePrice/ram:ChargeAmount/text()") == [
        "369", "139.99", "139.99", "45", "369", "139.99", "139.99"]
    assert xpath(fr, "//ram:SpecifiedTradeSettlementLineMonetarySummation/"
                     "ram:LineTotalAmount/text()") == [
        "369.00", "0.00", "0.00", "45.00", "369.00", "0.00", "139.99"]


def test_sample_non_eu_pdfs_have_no_facturx_xml(sample_out: Path) -> None:
    pdfs = sorted((sample_out / "out/2026-10/invoices").glob("*.pdf"))
    assert len(pdfs) == 18
    for pdf in pdfs:
        names = sorted(attachments(pdf))
        with pikepdf.open(pdf) as doc:
            xmp = doc.Root.Metadata.read_bytes()
            relationships = {str(f.UF): str(f.AFRelationship) for f in doc.Root.AF}
        if pdf.stem in EU_SAMPLE:
            assert names == ["factur-x.xml", "line_items.csv"]
            assert relationships == {"factur-x.xml": "/Alternative",
                                     "line_items.csv": "/Supplement"}
        else:
            assert names == ["line_items.csv"], pdf.name
            assert relationships == {"line_items.csv": "/Data"}
            assert b"factur-x" not in xmp


def test_eu_pdf_xmp_declares_facturx(sample_out: Path) -> None:
    with pikepdf.open(sample_out / "out/2026-10/invoices/IM-202610-000014.pdf") as doc:
        packet = doc.Root.Metadata.read_bytes()
        (xml_file,) = [f for f in doc.Root.AF if str(f.UF) == "factur-x.xml"][:1]
        assert str(xml_file.EF.F.Subtype) == "/text/xml"
    # The packet is well-formed, and the Factur-X properties sit inside its rdf:RDF.
    start = packet.index(b"<x:xmpmeta")
    root = etree.fromstring(packet[start:packet.index(b"</x:xmpmeta>") + 12])
    fx = {"fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
          "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
          "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#"}
    desc = "/*/rdf:RDF/rdf:Description/"
    assert root.xpath(desc + "fx:DocumentType/text()", namespaces=fx) == ["INVOICE"]
    assert root.xpath(desc + "fx:DocumentFileName/text()", namespaces=fx) == ["factur-x.xml"]
    assert root.xpath(desc + "fx:Version/text()", namespaces=fx) == ["1.0"]
    assert root.xpath(desc + "fx:ConformanceLevel/text()", namespaces=fx) == ["EN 16931"]
    assert root.xpath("//pdfaSchema:prefix/text()", namespaces=fx) == ["fx"]


def test_verify_passes_and_checks_the_xml(sample_out: Path) -> None:
    result = CliRunner().invoke(main, ["verify", "--month", "2026-10", "--input",
                                       str(sample_out / "in"), "--out", str(sample_out / "out")])
    assert result.exit_code == 0, result.output
    files = sample_out / "out/2026-10"
    row = pl.read_parquet(files / "invoices.parquet").filter(
        pl.col("invoice_number") == "IM-202610-000014").row(0, named=True)
    items = pl.read_parquet(files / "line_items.parquet").filter(
        pl.col("invoice_number") == "IM-202610-000014")["amount"].to_list()
    pdf = files / "invoices/IM-202610-000014.pdf"
    german = einvoice.buyers(pl.read_csv(SAMPLE / "customers.csv", infer_schema=False))["C1015"]
    assert _check_einvoice(pdf, files, german, row, items) == []
    off_by_a_cent = {**row, "total": row["total"] + Decimal("0.01")}
    assert _check_einvoice(pdf, files, german, off_by_a_cent, items) == [
        f"{pdf}: factur-x.xml differs from the recomputed month"]
    us_pdf = files / "invoices/IM-202610-000001.pdf"
    assert _check_einvoice(us_pdf, files, german, row, items) == [
        f"{us_pdf}: no factur-x.xml for customer C1015 (DE), whose format is facturx"]
    american = replace(german, country="US")
    assert _check_einvoice(pdf, files, american, row, items) == [
        f"{pdf}: a Factur-X EN 16931 (CII) e-invoice (factur-x.xml) for customer C1015, "
        "whose format is none"]


def test_schematron_catches_a_wrong_total(sample_out: Path) -> None:
    """The validators can fail: a grand total one cent off breaks BR-CO-15 and BR-CO-16."""
    xml = xml_of(sample_out / "out/2026-10/invoices/IM-202610-000014.pdf")
    broken = xml.replace(b"<ram:GrandTotalAmount>1978.96<", b"<ram:GrandTotalAmount>1978.97<")
    assert broken != xml
    _, failures = schematron_report(broken)
    assert [f.split()[0] for f in failures] == ["BR-CO-15", "BR-CO-16"]


# --- credit notes and replacement invoices --------------------------------------------


def test_credit_note_and_replacement_are_valid_einvoices(sample_out: Path,
                                                         tmp_path: Path) -> None:
    shutil.copytree(sample_out, tmp_path / "w")
    work = tmp_path / "w"
    path = work / "in/usage/region=eu/2026-10.parquet"
    usage = pl.read_parquet(path).with_row_index()
    first = usage.filter(pl.col("sdk_app_id") == 1400001502)["index"][0]
    usage = usage.with_columns(
        dau=pl.when(pl.col("index") == first).then(pl.lit(25_000, dtype=pl.Int64))
        .otherwise(pl.col("dau"))).drop("index")
    pq.write_table(usage.to_arrow(), path)
    args = ["--month", "2026-10", "--input", str(work / "in"), "--out", str(work / "out")]
    result = CliRunner().invoke(main, ["reissue", *args, "--reason", "DAU export fixed",
                                       "--issue-date", "2026-11-20", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:-1] == [
        "  credit note CN-202610-000001 reverses IM-202610-000014",
        "  invoice IM-202610-000019 replaces IM-202610-000014"]
    rev = work / "out/2026-10/revisions/001"

    note = xml_of(rev / "credit_notes/CN-202610-000001.pdf")
    assert validation_failures(note) == []
    assert xpath(note, "//rsm:ExchangedDocument/ram:TypeCode/text()") == ["381"]
    assert xpath(note, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()") == [
        "IM-202610-000014"]
    assert xpath(note, "//ram:IssueDateTime/udt:DateTimeString/text()") == ["20261120"]
    totals = pl.read_parquet(rev / "credit_notes.parquet").row(0, named=True)
    amounts = pl.read_parquet(rev / "credit_note_items.parquet")["amount"].to_list()
    assert totals["total"] == Decimal("-1978.96")
    # A credit note states what it credits as positive amounts (type code 381).
    assert_matches(note, "CN-202610-000001", totals, amounts, sign=-1)

    new = xml_of(rev / "invoices/IM-202610-000019.pdf")
    assert validation_failures(new) == []
    assert xpath(new, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()") == [
        "IM-202610-000014"]
    row = pl.read_parquet(rev / "invoices.parquet").filter(
        pl.col("invoice_number") == "IM-202610-000019").row(0, named=True)
    items = pl.read_parquet(rev / "line_items.parquet").filter(
        pl.col("invoice_number") == "IM-202610-000019")["amount"].to_list()
    assert_matches(new, "IM-202610-000019", row, items)
    verify = CliRunner().invoke(main, ["verify", *args])
    assert verify.exit_code == 0, verify.output
    # verify reads the credit note's XML too: a credit note stating 381 amounts that
    # differ from credit_notes.parquet is reported.
    from invoicing.audit.verify.facts import check_documents
    from invoicing.audit.verify.report import VerifyReport
    from invoicing.core.timeframe import Month
    from invoicing.publish.issued import IssuedMonth

    (revision,) = [r for r in IssuedMonth(work / "out", Month(2026, 10)).revisions()
                   if r.number == 1]
    parties = einvoice.buyers(pl.read_csv(SAMPLE / "customers.csv", infer_schema=False))
    report = VerifyReport()
    check_documents(revision, parties, report)
    assert report.mismatches == []
    notes = pl.read_parquet(rev / "credit_notes.parquet")
    notes.with_columns(total=pl.col("total") - Decimal("0.01")).write_parquet(
        rev / "credit_notes.parquet")
    report = VerifyReport()  # a new run: each run reads a file once
    check_documents(revision, parties, report)
    assert report.mismatches == [
        f"{rev / 'credit_notes/CN-202610-000001.pdf'}: factur-x.xml differs from "
        "credit_notes.parquet"]


# --- a generated month ------------------------------------------------------------------

#: Every third generated customer moves to an EU country (VAT id where reverse charge
#: needs one; KRW and CNY ones too, so the 0-digit currency and prorated plan fees occur).
EU_MOVES = [("DE", "DE811234567"), ("FR", "FR40303265045"), ("IT", None),
            ("NL", "NL859048467B01"), ("DE", None)]


def test_generated_month_einvoices(tmp_path: Path) -> None:
    month = tmp_path / "in"
    generate(SynthSpec(n_apps=60, n_customers=21, duplicates=0), month)
    customers = pl.read_parquet(month / "customers.parquet").with_row_index()
    moves = {i: EU_MOVES[(i // 3) % len(EU_MOVES)] for i in range(0, customers.height, 3)}
    customers = customers.with_columns(
        country=pl.struct("index", "country").map_elements(
            lambda r: moves[r["index"]][0] if r["index"] in moves else r["country"],
            return_dtype=pl.String),
        tax_id=pl.struct("index", "tax_id").map_elements(
            lambda r: moves[r["index"]][1] if r["index"] in moves else r["tax_id"],
            return_dtype=pl.String),
    ).drop("index")
    customers.write_parquet(month / "customers.parquet")
    book = (month / "pricebook.toml").read_text(encoding="utf-8")
    book = book.replace("[version.tax]\n", '[version.tax]\nDE = "0.19"\nIT = "0.22"\n')
    assert book.count('DE = "0.19"') >= 3
    (month / "pricebook.toml").write_text(book, encoding="utf-8")

    result = run_cli(month, tmp_path / "out", "--workers", "1")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out/2026-10"
    invoices = pl.read_parquet(out / "invoices.parquet").join(
        customers.select("customer_id", "country", "currency"), on=["customer_id", "currency"])
    items = pl.read_parquet(out / "line_items.parquet")
    numbered = invoices.filter(pl.col("invoice_number").is_not_null())
    eu = numbered.filter(pl.col("country").is_in(["DE", "FR", "IT", "NL"]))
    assert eu.height >= 6 and set(eu["currency"]) >= {"USD", "KRW", "CNY"}
    days = 0
    for row in numbered.iter_rows(named=True):
        pdf = out / f"invoices/{row['invoice_number']}.pdf"
        if row["country"] not in einvoice.EU_MEMBER_STATES:
            assert einvoice.XML_NAME not in attachments(pdf)
            continue
        xml = xml_of(pdf)
        assert validation_failures(xml) == [], row["invoice_number"]
        amounts = items.filter(pl.col("invoice_number") == row["invoice_number"])[
            "amount"].to_list()
        assert_matches(xml, row["invoice_number"], row, amounts)
        days += len(xpath(xml, "//ram:BasisQuantity[@unitCode='DAY']"))
    assert days > 0, "no prorated plan fee among the generated EU invoices"


# --- documents the inputs cannot describe are refused ---------------------------------


def eu_month(country: str, tax_id: str | None) -> MonthBuilder:
    m = MonthBuilder(pricebook=PRICEBOOK_USD.format(policy="month_start"))
    m.customer("C1", country=country, tax_id=tax_id).app(1, "C1").day(1, d(3))
    return m


def test_eu_customer_at_zero_percent_without_a_category_is_refused(tmp_path: Path) -> None:
    result = run_cli(eu_month("IT", "IT00743110157").write(tmp_path / "in"), tmp_path / "out",
                     "--workers", "1")
    assert_stopped(result, ExitCode.INPUT_ERROR,
                   "templates/seller.toml: key 'zero_rated_vat.IT' missing: customer C1 (IT) "
                   "pays 0 % VAT; its EN 16931 e-invoice needs the VAT category (AE, E or Z) "
                   "and the reason", tmp_path / "out")


def test_reverse_charge_customer_without_a_vat_id_is_refused(tmp_path: Path) -> None:
    result = run_cli(eu_month("FR", None).write(tmp_path / "in"), tmp_path / "out",
                     "--workers", "1")
    assert_stopped(result, ExitCode.INPUT_ERROR,
                   "customers.parquet, column 'tax_id', row 1: customer C1 (FR) is invoiced "
                   "under reverse "
                   "charge (zero_rated_vat.FR = AE in templates/seller.toml) and needs its "
                   "VAT identifier", tmp_path / "out")


def test_eu_tax_id_without_a_country_prefix_is_refused(tmp_path: Path) -> None:
    result = run_cli(eu_month("DE", "811234567").write(tmp_path / "in"), tmp_path / "out",
                     "--workers", "1")
    assert_stopped(result, ExitCode.INPUT_ERROR,
                   "customers.parquet, column 'tax_id', row 1: customer C1 (DE) has the tax id "
                   "'811234567', which an EN 16931 e-invoice can only carry as a VAT "
                   "identifier starting with its country code (such as DE811234567)",
                   tmp_path / "out")


def test_seller_without_a_vat_id_is_refused(tmp_path: Path) -> None:
    seller = tmp_path / "seller.toml"
    seller.write_text('name = "X Ltd."\naddress = "1 Road"\ncountry = "SG"\n', encoding="utf-8")
    result = run_cli(eu_month("FR", "FR40303265045").write(tmp_path / "in"), tmp_path / "out",
                     "--workers", "1", "--seller", str(seller))
    assert_stopped(result, ExitCode.INPUT_ERROR,
                   f"{seller}: key 'vat_id' missing: customer C1 (FR) gets an "
                   "EN 16931 e-invoice, which needs the seller's country and VAT identifier",
                   tmp_path / "out")


def test_non_eu_month_needs_no_e_invoice_facts_of_the_seller(tmp_path: Path) -> None:
    seller = tmp_path / "seller.toml"
    seller.write_text('name = "X Ltd."\naddress = "1 Road"\n', encoding="utf-8")
    result = run_cli(eu_month("US", None).write(tmp_path / "in"), tmp_path / "out",
                     "--workers", "1", "--seller", str(seller))
    assert result.exit_code == 0, result.output


# --- the XML of one document ------------------------------------------------------------

GERMAN = Party("C9", "Kiezfunk Berlin e.V.", "kasse@kiezfunk.example",
               "Friedrichstraße 68\n10117 Berlin\nHinterhaus, 2. OG\nEingang B", "DE", None)


def german_document() -> object:
    apps = (make_app(1400000001, "Chat <&> \"Live\""),
            make_app(1400000002, "Support", prorated_lines("USD")))
    doc = make_document("en_US", customer=GERMAN, apps=apps)
    tax = (doc.subtotal * Decimal("0.19")).quantize(Decimal("0.01"))
    return replace(doc, tax_rate=Decimal("0.19"), tax=tax, total=doc.subtotal + tax)


def test_document_xml_is_valid_escaped_and_has_no_clock() -> None:
    seller = einvoice.load_seller(einvoice.SELLER_FILE)
    doc = german_document()
    xml = einvoice.cii_xml(doc, seller)  # type: ignore[arg-type]
    assert validation_failures(xml) == []
    assert xml == einvoice.cii_xml(doc, seller)  # type: ignore[arg-type]
    assert xpath(xml, "//ram:BuyerTradeParty//ram:LineThree/text()") == [
        "Hinterhaus, 2. OG, Eingang B"]
    # Each line is named by its app, then the words of the page (evidence_text).
    names = xpath(xml, "//ram:SpecifiedTradeProduct/ram:Name/text()")
    assert names[0] == ("App 1400000001 Chat <&> \"Live\": Plan fee: Plan in force on "
                        "October 1, 2026: Pro")
    assert names[-1] == ("App 1400000002 Support: Plan fee: 10 of 31 days on Flagship; "
                         "Quantity: 10/31 of the month at the monthly fee")
    # Prorated plan fee: the monthly fee is the price of 31 days, quantity is the days.
    assert xpath(xml, "//ram:BasisQuantity/@unitCode") and set(
        xpath(xml, "//ram:BasisQuantity/text()")) == {"31"}
    # The only dates are the document's own: issue, period, delivery, due.
    dates = set(xpath(xml, "//udt:DateTimeString/text()"))
    assert dates == {"20261101", "20261001", "20261031", "20261103"}


def test_control_characters_in_customer_text_keep_the_xml_valid() -> None:
    seller = einvoice.load_seller(einvoice.SELLER_FILE)
    doc = german_document()
    odd = replace(GERMAN, name="Kiez\x01funk\x1f e.V.")
    xml = einvoice.cii_xml(replace(doc, customer=odd), seller)  # type: ignore[type-var]
    assert validation_failures(xml) == []
    assert xpath(xml, "//ram:BuyerTradeParty/ram:Name/text()") == ["Kiez\ufffdfunk\ufffd e.V."]


def test_rendering_twice_gives_the_same_bytes_and_drafts_carry_no_xml() -> None:
    renderer = InvoiceRenderer()
    doc = german_document()
    first = renderer.render_pdf(doc)  # type: ignore[arg-type]
    assert first == renderer.render_pdf(doc)  # type: ignore[arg-type]
    names = sorted(PdfReader(io.BytesIO(first)).attachments)
    assert names == ["factur-x.xml", "line_items.csv"]
    draft = renderer.render_pdf(doc, draft=True)  # type: ignore[arg-type]
    assert sorted(PdfReader(io.BytesIO(draft)).attachments) == ["line_items.csv"]
    assert date(2026, 11, 1) == doc.issue_date  # type: ignore[attr-defined]
