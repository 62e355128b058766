"""Credit notes and replacements of every VAT category and both syntaxes, from one reissue.

A corrected export changes one app of each 0 % customer of the sample month (C1016
reverse charge AE, C1018 exempt E, C1019 zero rated Z) and of the Peppol buyer (C1017,
standard rate S). The reissue writes a credit note and a replacement for each; every XML
must pass the official rules of its syntax (a negated zero amount, ``-0.00``, broke
BR-AE-09 and BR-Z-09 before), name the date of the invoice it reverses (BT-26), carry no
due date on a credit note, and `verify` must accept the month.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from lxml import etree
from pypdf import PdfReader

from invoicing.cli import main
from invoicing.render import einvoice
from invoicing.render.einvoice import peppol
from tests import facturx_check, peppol_check
from tests.conftest import sample_copy

pytestmark = pytest.mark.slow

#: Changed app -> (customer, VAT category, the invoice it had).
CHANGED = {1400001601: ("C1016", "AE", "IM-202610-000015"),
           1400001701: ("C1017", "S", "IM-202610-000016"),
           1400001801: ("C1018", "E", "IM-202610-000017"),
           1400001901: ("C1019", "Z", "IM-202610-000018")}


@pytest.fixture(scope="module")
def reissued(tmp_path_factory: pytest.TempPathFactory,
             sample_published: tuple[Path, str, str]) -> Path:
    """The sample month reissued after a DAU peak of 25,000 appeared in each changed app."""
    work = sample_copy(sample_published, tmp_path_factory.mktemp("reissue"))
    path = work / "in/usage/region=eu/2026-10.parquet"
    usage = pl.read_parquet(path).with_row_index()
    first = usage.group_by("sdk_app_id").agg(pl.col("index").min())
    firsts = first.filter(pl.col("sdk_app_id").is_in(list(CHANGED)))["index"].to_list()
    usage = usage.with_columns(
        dau=pl.when(pl.col("index").is_in(firsts)).then(pl.lit(25_000, dtype=pl.Int64))
        .otherwise(pl.col("dau"))).drop("index")
    pq.write_table(usage.to_arrow(), path)
    result = CliRunner().invoke(main, [
        "reissue", "--month", "2026-10", "--input", str(work / "in"), "--out",
        str(work / "out"), "--reason", "EU DAU export fixed", "--issue-date", "2026-11-20",
        "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("head: 2026-10 revision 1 sha256 ")
    assert result.stdout.splitlines()[1:-1] == [
        "  credit note CN-202610-000001 reverses IM-202610-000015",
        "  credit note CN-202610-000002 reverses IM-202610-000016",
        "  credit note CN-202610-000003 reverses IM-202610-000017",
        "  credit note CN-202610-000004 reverses IM-202610-000018",
        "  invoice IM-202610-000019 replaces IM-202610-000015",
        "  invoice IM-202610-000020 replaces IM-202610-000016",
        "  invoice IM-202610-000021 replaces IM-202610-000017",
        "  invoice IM-202610-000022 replaces IM-202610-000018"]
    return work


def xml_of(rev: Path, folder: str, number: str, customer: str) -> tuple[bytes, bool]:
    """(the document's XML, whether it is Peppol UBL)."""
    if customer == "C1017":
        return (rev / folder / f"{number}.xml").read_bytes(), True
    xml = einvoice.read_embedded_xml(rev / folder / f"{number}.pdf")
    assert xml is not None
    return xml, False


def texts(xml: bytes) -> list[str]:
    return [str(t) for t in etree.fromstring(xml).xpath("//text()")]


def test_every_credit_note_and_replacement_passes_its_rules(reissued: Path) -> None:
    rev = reissued / "out/2026-10/revisions/001"
    for i, (customer, category, _) in enumerate(CHANGED.values()):
        for folder, number in (("credit_notes", f"CN-202610-{i + 1:06d}"),
                               ("invoices", f"IM-202610-{i + 19:06d}")):
            xml, ubl = xml_of(rev, folder, number, customer)
            check = peppol_check if ubl else facturx_check
            assert check.validation_failures(xml) == [], (number, category)
            assert not [t for t in texts(xml) if t.startswith("-")], number  # never -0.00
            figures = (einvoice.PEPPOL if ubl else einvoice.FACTURX).figures(xml)
            assert figures.type_code == ("381" if folder == "credit_notes" else "380")


def test_credit_notes_name_the_reversed_invoice_and_its_date(reissued: Path) -> None:
    rev = reissued / "out/2026-10/revisions/001"
    cii = dict(einvoice.NS)
    for i, (customer, category, credited) in enumerate(CHANGED.values()):
        number = f"CN-202610-{i + 1:06d}"
        xml, ubl = xml_of(rev, "credit_notes", number, customer)
        tree = etree.fromstring(xml)
        if ubl:
            ns = peppol.NS
            assert tree.xpath("//cac:BillingReference//cbc:ID/text()", namespaces=ns) == [
                credited]
            assert tree.xpath("//cac:BillingReference//cbc:IssueDate/text()",
                              namespaces=ns) == ["2026-11-01"]
            assert tree.xpath("//cbc:DueDate | //cbc:PaymentDueDate", namespaces=ns) == []
            continue
        ref = "//ram:InvoiceReferencedDocument/"
        assert tree.xpath(ref + "ram:IssuerAssignedID/text()", namespaces=cii) == [credited]
        assert tree.xpath(ref + "ram:FormattedIssueDateTime/qdt:DateTimeString/text()",
                          namespaces=cii) == ["20261101"]
        assert tree.xpath("//ram:DueDateDateTime", namespaces=cii) == []
        assert tree.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
                          "ram:CategoryCode/text()", namespaces=cii) == [category]
        assert tree.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
                          "ram:CalculatedAmount/text()", namespaces=cii) == ["0.00"]


def test_credit_note_page_shows_the_date_and_no_due_date(reissued: Path) -> None:
    pdf = reissued / "out/2026-10/revisions/001/credit_notes/CN-202610-000001.pdf"
    text = " ".join("".join(p.extract_text() for p in PdfReader(pdf).pages).split())
    assert "Credits invoice IM-202610-000015 of November 1, 2026" in text
    assert "no payment is due" in text
    assert "Due date" not in text and "Collected by" not in text
    assert "Reverse charge" in text


def test_verify_checks_every_credit_note_xml(reissued: Path) -> None:
    result = CliRunner().invoke(main, ["verify", "--month", "2026-10", "--input",
                                       str(reissued / "in"), "--out", str(reissued / "out")])
    assert result.exit_code == 0, result.output
    assert "4 credit note(s)" in result.output
