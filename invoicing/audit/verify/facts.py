"""`verify`, the published facts: each fact printed in more than one place is compared in
all of them.

- each revision's manifest (`totals`, `counts`) against its own Parquet files, and the
  latest one's inputs, price-book versions, month gates, counts and totals against the
  recomputation;
- every PDF's SHA-256 in ``invoices.parquet`` / ``credit_notes.parquet`` against the
  manifest that lists the PDF;
- every PDF's embedded line items against its revision's Parquet rows, and every current
  invoice's against the recomputation;
- every EU document's ``factur-x.xml`` (number, type, line amounts, totals) against the
  same, and no other document embeds one.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from invoicing.assemble.computed import Computed
from invoicing.assemble.totals import as_issued_to
from invoicing.audit.verify.report import VerifyReport
from invoicing.core.documents import Party
from invoicing.core.timing import StageTimer
from invoicing.pricing.lines import LINE_SCHEMA
from invoicing.publish.issued import Revision, normalised
from invoicing.publish.manifest import manifest_for, totals_per_currency
from invoicing.render import einvoice
from invoicing.render.attachment import embedded_files, line_items_in, read_attachment
from invoicing.storage import MANIFEST, read_bytes, readable

#: Manifest fields a recomputation from the same inputs gives again.
RECOMPUTED_FIELDS = ("month", "run_id", "inputs_digest", "inputs", "pricebook_versions",
                     "options", "month_gates", "counts", "totals")
COLS = ["invoice_number", *LINE_SCHEMA]


def read_table(rev: Revision, name: str, report: VerifyReport) -> pl.DataFrame | None:
    """A Parquet file of a revision (read once per run), or None when it has none."""
    if name not in rev.manifest.get("outputs", {}):
        return None
    key = str(rev.files / name)
    if key not in report.tables:
        frame = pl.read_parquet(readable(rev.files / name))
        report.tables[key] = normalised(frame) if name == "invoices.parquet" else frame
    return report.tables[key]


def invoices_of(rev: Revision, report: VerifyReport) -> pl.DataFrame:
    found = read_table(rev, "invoices.parquet", report)
    if found is None:
        raise ValueError(f"{rev.path / MANIFEST} lists no invoices.parquet")
    return found


def check_manifest_against_files(rev: Revision, report: VerifyReport) -> None:
    """The manifest's totals and counts are those of the revision's own Parquet files."""
    manifest, where = rev.manifest, rev.path / MANIFEST
    invoices = invoices_of(rev, report)
    if manifest.get("totals") != totals_per_currency(invoices):
        report.add(f"{where}: totals differ from {rev.files / 'invoices.parquet'}")
    counts = manifest.get("counts", {})
    tables = {"line_items": "line_items.parquet", "anomalies": "anomalies.parquet",
              "usage_rows_rejected": "rejected_rows.parquet"}
    actual = {
        "customers": invoices.height,
        "invoices": int(invoices["invoice_number"].is_not_null().sum()),
        "zero_total_customers": int(invoices["invoice_number"].is_null().sum()),
        **{k: t.height for k, name in tables.items()
           if (t := read_table(rev, name, report)) is not None},
    }
    for key, value in actual.items():
        if counts.get(key) != value:
            report.add(f"{where}: counts.{key} is {counts.get(key)}, the published files "
                       f"hold {value}")


def check_manifest_against_recomputation(rev: Revision, computed: Computed,
                                         report: VerifyReport) -> None:
    """The latest manifest's facts are what the inputs give again."""
    # A month published with findings was necessarily accepted with --allow-incomplete.
    again = manifest_for(computed, {}, StageTimer(), allow_incomplete=True)
    for key in RECOMPUTED_FIELDS:
        if rev.manifest.get(key) != again[key]:
            report.add(f"{rev.path / MANIFEST}: field {key!r} differs from the recomputed month")


def check_pdf_hashes(rev: Revision, revisions: list[Revision], report: VerifyReport) -> None:
    """``pdf_sha256`` of every document row equals the manifest entry of its PDF."""
    by_number = {r.number: r for r in revisions}
    for number, issued_in, sha in invoices_of(rev, report).filter(
            pl.col("invoice_number").is_not_null()).select(
            "invoice_number", "issued_in_revision", "pdf_sha256").rows():
        issuer = by_number.get(int(issued_in)) if issued_in is not None else None
        listed = issuer.manifest.get("outputs", {}).get(f"invoices/{number}.pdf") \
            if issuer else None
        if listed is None:
            report.add(f"{rev.files / 'invoices.parquet'}: {number}: issued in revision "
                       f"{issued_in}, whose manifest lists no invoices/{number}.pdf")
        elif sha != listed:
            report.add(f"{rev.files / 'invoices.parquet'}: {number}: pdf_sha256 differs from "
                       f"invoices/{number}.pdf in {issuer.path / MANIFEST}")  # type: ignore
    notes = read_table(rev, "credit_notes.parquet", report)
    for number, sha in ([] if notes is None else
                        notes.select("credit_note_number", "pdf_sha256").rows()):
        if sha != rev.manifest.get("outputs", {}).get(f"credit_notes/{number}.pdf"):
            report.add(f"{rev.files / 'credit_notes.parquet'}: {number}: pdf_sha256 differs "
                       f"from credit_notes/{number}.pdf in {rev.path / MANIFEST}")


def issued_parties(revisions: list[Revision], report: VerifyReport) -> dict[str, Party]:
    """Invoice number -> the buyer it was issued to (with its e-invoice format), as its
    credit note repeats it. A month published before invoices kept their buyer data has
    none: its documents are checked against the customers table today."""
    found: dict[str, Party] = {}
    for rev in revisions:
        frame = invoices_of(rev, report)
        if "buyer_country" not in frame.columns or "einvoice_format" not in frame.columns:
            continue
        issued = frame.drop_nulls("invoice_number").select(
            "invoice_number", "customer_id", *as_issued_to())
        found.update(einvoice.buyers(issued, key="invoice_number"))
    return found


def check_documents(rev: Revision, parties: dict[str, Party], report: VerifyReport,
                    issued_to: dict[str, Party] | None = None) -> None:
    """Every PDF this revision issued embeds the line items of its rows, and each document
    has the e-invoice of its buyer's format (embedded or beside it) with its figures.

    A document's buyer is the one it was issued to (`issued_to`, by invoice number; a
    credit note's is its credited invoice's); `parties` (the customers today) serves
    documents of months published before invoices kept their buyer data."""
    issued_to = issued_to or {}
    outputs = rev.manifest.get("outputs", {})
    invoices = invoices_of(rev, report)
    items = read_table(rev, "line_items.parquet", report)
    for number in sorted(n[len("invoices/"):-4] for n in outputs
                         if n.startswith("invoices/") and n.endswith(".pdf")):
        rows = invoices.filter(pl.col("invoice_number") == number)
        pdf = rev.files / "invoices" / f"{number}.pdf"
        if rows.is_empty() or items is None:
            report.add(f"{pdf}: not in {rev.files / 'invoices.parquet'}")
            continue
        lines = items.filter(pl.col("invoice_number") == number).select(COLS)
        compare_embedded(pdf, lines, f"{rev.files / 'line_items.parquet'}", report)
        row = rows.row(0, named=True)
        buyer = issued_to.get(number) or parties.get(row["customer_id"])
        report.mismatches.extend(check_einvoice(pdf, rev.files, buyer,
                                                row, lines["amount"].to_list(),
                                                against=f"{rev.files / 'invoices.parquet'}",
                                                report=report))
    notes = read_table(rev, "credit_notes.parquet", report)
    note_items = read_table(rev, "credit_note_items.parquet", report)
    if notes is None or note_items is None:
        return
    for note in notes.iter_rows(named=True):
        number = note["credit_note_number"]
        pdf = rev.files / "credit_notes" / f"{number}.pdf"
        lines = note_items.filter(pl.col("invoice_number") == number).select(COLS)
        compare_embedded(pdf, lines, f"{rev.files / 'credit_note_items.parquet'}", report)
        credited = {**note, "invoice_number": number,
                    **{k: -note[k] for k in ("subtotal", "tax", "total")}}
        report.mismatches.extend(check_einvoice(
            pdf, rev.files,
            issued_to.get(note["credits_invoice"]) or parties.get(note["customer_id"]), credited,
            [-a for a in lines["amount"]], kind="credit_note", against="credit_notes.parquet",
            report=report))


def compare_embedded(pdf: Path, expected: pl.DataFrame, against: str,
                     report: VerifyReport) -> bool:
    """The PDF's embedded ``line_items.csv`` equals `expected`; False (reported) if not."""
    try:
        embedded = _read_once(report, pdf, "items")
    except Exception as exc:  # a damaged PDF is a finding, whatever the parser raises
        report.add(f"{pdf}: cannot read embedded line items ({type(exc).__name__})")
        return False
    if not embedded.select(COLS).equals(expected.select(COLS)):
        report.add(f"{pdf}: embedded line items differ from {against}")
        return False
    return True


#: What verify reads out of a PDF.
READERS: dict[str, Callable[[Any], Any]] = {
    "items": read_attachment, "xml": einvoice.read_embedded_xml}


def remember_embedded(report: VerifyReport, pdf: Path, data: bytes) -> None:
    """Parse what the PDF embeds (line items, XML) from its bytes, once per verify run:
    one parse of the PDF for both."""
    try:
        files = embedded_files(io.BytesIO(data))
    except Exception as exc:  # a damaged PDF: each check reports it
        report.embedded[str(pdf), "items"] = report.embedded[str(pdf), "xml"] = exc
        return
    try:
        report.embedded[str(pdf), "items"] = line_items_in(files)
    except Exception as exc:
        report.embedded[str(pdf), "items"] = exc
    report.embedded[str(pdf), "xml"] = files.get(einvoice.XML_NAME)


def _read_once(report: VerifyReport | None, pdf: Path, what: str) -> Any:
    """The PDF's embedded line items (``items``) or XML (``xml``): the PDF is read once per
    verify run and both are kept (each PDF is checked up to twice)."""
    if report is None:
        return READERS[what](readable(pdf))
    if (str(pdf), what) not in report.embedded:
        remember_embedded(report, pdf, read_bytes(pdf))
    found = report.embedded[str(pdf), what]
    if isinstance(found, Exception):
        raise found
    return found


def check_einvoice(pdf: Path, files: Path, buyer: Party | None, totals: dict[str, Any],
                   amounts: list[Any], kind: str = "invoice",
                   against: str = "the recomputed month",
                   report: VerifyReport | None = None) -> list[str]:
    """Check one document's e-invoices (``pdf`` in the revision folder ``files``); one line
    per problem. Every format is asked for its XML: the buyer's must be there and state
    the document's figures, the others must not."""
    number = str(totals["invoice_number"])
    if buyer is None:
        return [f"{pdf}: customer {totals.get('customer_id')} is not in the inputs"]
    chosen = einvoice.format_of(buyer, kind)
    problems = []
    for fmt in einvoice.FORMATS.values():
        name = fmt.file_name(kind, number)
        where = pdf if fmt.embedded_name else files / name
        try:
            # The embedded XML comes from the PDF read once per verify run.
            xml = (_read_once(report, pdf, "xml") if fmt.embedded_name
                   else fmt.read(pdf, files, kind, number))
        except Exception as exc:  # a damaged file is a finding, whatever the parser raises
            problems.append(f"{where}: cannot read the {fmt.title} e-invoice "
                            f"({type(exc).__name__})")
            continue
        if fmt is not chosen:
            if xml is not None:
                problems.append(f"{where}: a {fmt.title} e-invoice ({name}) for customer "
                                f"{buyer.customer_id}, whose format is "
                                f"{einvoice.format_name(buyer)}")
            continue
        if xml is None:
            problems.append(f"{where}: no {name} for customer {buyer.customer_id} "
                            f"({buyer.country}), whose format is {fmt.name}")
            continue
        try:
            got = fmt.figures(xml)
        except ValueError as exc:
            problems.append(f"{where}: {name} unreadable ({exc})")
            continue
        want = (number, "381" if kind == "credit_note" else "380", tuple(amounts),
                totals["subtotal"], totals["tax"], totals["total"])
        if (got.number, got.type_code, got.line_amounts, got.subtotal, got.tax,
                got.total) != want:
            problems.append(f"{where}: {name} differs from {against}")
    return problems
