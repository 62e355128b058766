"""`verify`: prove that a published month still matches its inputs.

Four checks, each reported as one line naming the file:

1. every file listed in each revision's manifest exists with the recorded SHA-256, no
   unlisted file sits among them, and each revision names the SHA-256 of the previous
   revision's manifest (the chain is intact);
2. the input files have the hashes the latest manifest recorded;
3. the month recomputed from the inputs equals the published line items and totals;
4. the line items embedded in every current PDF equal the recomputed ones;
5. every current invoice of a customer with an e-invoice format has that format's XML
   (``factur-x.xml`` embedded in the PDF, or the Peppol ``invoices/<number>.xml`` beside
   it) whose number, line amounts and totals equal the recomputed ones, and no document
   has the XML of a format it does not use; each credit note's XML states (positive,
   type 381) what its ``credit_notes.parquet`` row credits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl

from invoicing import __version__
from invoicing.assemble.totals import BUYER_COLUMNS
from invoicing.audit.diff import changed_inputs, compare, issued_month
from invoicing.audit.reports import evidence_text, money
from invoicing.core.documents import Party
from invoicing.core.timeframe import Month
from invoicing.load.inputs import sha256_file
from invoicing.pipeline import compute_month, conflict_policy
from invoicing.pricing.lines import LINE_SCHEMA
from invoicing.publish.issued import REVISIONS, IssuedMonth, Revision
from invoicing.publish.locking import month_lock
from invoicing.render import einvoice
from invoicing.render.attachment import read_attachment
from invoicing.render.environment import software_digest
from invoicing.storage import MANIFEST, readable, relative_name
from invoicing.validate.usage import OnConflict


@dataclass
class VerifyReport:
    """Counts of what was checked, and one line per mismatch.

    Attributes:
      files: published files checked against their manifest's SHA-256.
      invoices: invoice PDFs issued over all revisions (replaced ones included).
      credit_notes: credit-note PDFs issued over all revisions.
      pdfs: current invoices whose embedded line items were compared.
      line_items: current line items compared with the recomputation.
      revisions: revisions in the chain.
      totals: current totals per currency: (sum of totals, number of invoices).
      mismatches: one line per mismatch, naming the file.
    """

    files: int = 0
    invoices: int = 0
    credit_notes: int = 0
    pdfs: int = 0
    line_items: int = 0
    revisions: int = 0
    totals: dict[str, tuple[Decimal, int]] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _check_files(rev: Revision, previous: Revision | None, report: VerifyReport) -> None:
    listed = rev.manifest.get("outputs", {})
    for relative, expected in sorted(listed.items()):
        path = rev.files / relative
        report.files += 1
        report.invoices += relative.startswith("invoices/") and relative.endswith(".pdf")
        report.credit_notes += relative.startswith("credit_notes/") and relative.endswith(".pdf")
        if not path.is_file():
            report.mismatches.append(f"{path}: missing (listed in {rev.path / MANIFEST})")
        elif sha256_file(path) != expected:
            report.mismatches.append(f"{path}: SHA-256 differs from {rev.path / MANIFEST}")
    for path in sorted((p for p in rev.files.rglob("*") if p.is_file()),
                       key=lambda p: p.parts):
        relative = relative_name(path, rev.files) or str(path)
        if relative == MANIFEST or relative.startswith(f"{REVISIONS}/"):
            continue
        if relative not in listed:
            report.mismatches.append(f"{path}: not listed in {rev.path / MANIFEST}")
    if previous is not None:
        link = rev.manifest.get("revision", {}).get("previous_manifest_sha256")
        if link != previous.manifest_sha256:
            report.mismatches.append(
                f"{rev.path / MANIFEST}: previous_manifest_sha256 does not match "
                f"{previous.path / MANIFEST}")


def verify_month(input_dir: Path, out_dir: Path, month: Month, pricebook: Path | None = None,
                 *, seller: Path | None = None, on_conflict: OnConflict | None = None
                 ) -> VerifyReport:
    report = VerifyReport()
    issued: IssuedMonth = issued_month(out_dir, month)  # before the lock: it creates --out
    with month_lock(out_dir, month):
        revisions = issued.revisions()
        report.revisions = len(revisions)
        for i, rev in enumerate(revisions):
            _check_files(rev, revisions[i - 1] if i else None, report)

        latest = revisions[-1]
        computed = compute_month(input_dir, month, pricebook,
                                 conflict_policy(on_conflict, latest.manifest), seller=seller)
        for path in changed_inputs(latest.manifest, computed):
            report.mismatches.append(
                f"{input_dir / path}: input differs from {latest.path / MANIFEST} (SHA-256)")

        items, invoices = issued.current_state()
        report.line_items = items.height
        for cur, total, count in invoices.filter(pl.col("invoice_number").is_not_null()).group_by(
                "currency").agg(pl.col("total").sum(), pl.len()).rows():
            report.totals[cur] = (total, count)
        for change in compare(items, invoices, computed.assembled):
            cur = change.currency
            for ln in change.lines:
                report.mismatches.append(
                    f"{latest.path / 'line_items.parquet'}: customer {change.customer_id} app "
                    f"{ln.sdk_app_id} {ln.item}: published {money(ln.old_amount, cur)} "
                    f"({evidence_text(ln.item, ln.old, cur)}), recomputed "
                    f"{money(ln.new_amount, cur)} ({evidence_text(ln.item, ln.new, cur)})")
            if change.documents:
                report.mismatches.append(
                    f"{latest.path / 'invoices.parquet'}: customer {change.customer_id}: "
                    f"issued with other data than the inputs hold now "
                    f"({', '.join(change.documents)})")
            if not change.lines and (not change.documents
                                     or change.old_total != change.new_total):
                report.mismatches.append(
                    f"{latest.path / 'invoices.parquet'}: customer {change.customer_id}: "
                    f"published total {money(change.old_total, cur)}, recomputed "
                    f"{money(change.new_total, cur)}")

        # Each current PDF carries its own copy of the lines; compare it with the
        # recomputation for that invoice number.
        recomputed = computed.assembled.line_items.drop("invoice_number").join(
            invoices.select("customer_id", "invoice_number"), on="customer_id")
        recomputed_totals = computed.assembled.invoices.drop("invoice_number").join(
            invoices.select("customer_id", "invoice_number"), on="customer_id")
        parties = einvoice.buyers(computed.inputs.customers)
        issued_to = _issued_parties(revisions)
        by_rev = {r.number: r for r in revisions}
        cols = ["invoice_number", *LINE_SCHEMA]
        for number, rev_no in invoices.filter(pl.col("invoice_number").is_not_null()).select(
                "invoice_number", "issued_in_revision").rows():
            files = by_rev[int(rev_no)].files
            pdf = files / "invoices" / f"{number}.pdf"
            report.pdfs += 1
            try:
                embedded = read_attachment(readable(pdf))
            except (OSError, ValueError) as exc:
                report.mismatches.append(f"{pdf}: cannot read embedded line items ({exc})")
                continue
            expected = recomputed.filter(pl.col("invoice_number") == number).select(cols)
            if not embedded.select(cols).equals(expected):
                report.mismatches.append(
                    f"{pdf}: embedded line items differ from the recomputed month")
            recomputed_invoice = recomputed_totals.filter(pl.col("invoice_number") == number)
            if recomputed_invoice.is_empty():  # its customer is no longer in the inputs
                report.mismatches.append(f"{pdf}: current, but its customer is not in the "
                                         "inputs (reissue the month to credit it)")
                continue
            totals = recomputed_invoice.row(0, named=True)
            buyer = issued_to.get(number) or parties[totals["customer_id"]]
            report.mismatches.extend(_check_einvoice(
                pdf, files, buyer, totals, expected["amount"].to_list()))
        for rev in revisions:
            report.mismatches.extend(_check_credit_note_einvoices(rev, parties, issued_to))
        if report.mismatches:
            report.mismatches[:0] = _software_difference(latest)
    return report


def _software_difference(latest: Revision) -> list[str]:
    """A line naming the software difference when the month was published by other code:
    the mismatches may then come from the software, not from the inputs or the files."""
    published = latest.manifest.get("software", {})
    here = software_digest()
    if not published.get("sha256") or published["sha256"] == here:
        return []
    return [f"{latest.path / MANIFEST}: published by other software (invoicing "
            f"{published.get('version', '?')}, software_sha256 {published['sha256'][:12]}…; "
            f"this is {__version__}, {here[:12]}…): the differences below may come from the "
            "software rather than the inputs; verify with the software that published it"]


def _issued_parties(revisions: list[Revision]) -> dict[str, Party]:
    """Invoice number -> the buyer it was issued to (with its e-invoice format), as its
    credit note repeats it. A month published before invoices kept their buyer data has
    none: its documents are checked against the customers table today."""
    fields = Party.__dataclass_fields__
    found: dict[str, Party] = {}
    for rev in revisions:
        path = readable(rev.files / "invoices.parquet")
        frame = pl.read_parquet(path)
        if "buyer_country" not in frame.columns or "einvoice_format" not in frame.columns:
            continue
        for row in frame.drop_nulls("invoice_number").iter_rows(named=True):
            values = {c: row.get(b) for b, c in BUYER_COLUMNS.items() if c in fields}
            values["einvoice_format"] = row["einvoice_format"] or "none"
            found[row["invoice_number"]] = Party(customer_id=row["customer_id"],
                                                 **values)  # type: ignore[arg-type]
    return found


def _check_credit_note_einvoices(rev: Revision, parties: dict[str, Party],
                                 issued_to: dict[str, Party] | None = None) -> list[str]:
    """Check 5 for the credit notes of a revision: the XML states what they credit (381).

    A credit note's buyer is the one of the invoice it credits (`issued_to`); `parties`
    (the customers today) serves notes of invoices without one.
    """
    path = rev.files / "credit_notes.parquet"
    if not path.is_file():
        return []
    notes = pl.read_parquet(readable(path))
    items = pl.read_parquet(readable(rev.files / "credit_note_items.parquet"))
    problems = []
    for note in notes.iter_rows(named=True):
        number = note["credit_note_number"]
        credited = {**note, "invoice_number": number,
                    **{k: -note[k] for k in ("subtotal", "tax", "total")}}
        amounts = [-a for a in items.filter(pl.col("invoice_number") == number)["amount"]]
        buyer = (issued_to or {}).get(note["credits_invoice"]) or parties.get(note["customer_id"])
        if buyer is None:  # neither kept with its invoice nor in the inputs today
            continue
        problems += _check_einvoice(rev.files / "credit_notes" / f"{number}.pdf", rev.files,
                                    buyer, credited, amounts,
                                    kind="credit_note", against="credit_notes.parquet")
    return problems


def _check_einvoice(pdf: Path, files: Path, buyer: Party, totals: dict[str, object],
                    amounts: list[object], kind: str = "invoice",
                    against: str = "the recomputed month") -> list[str]:
    """Check 5 for one document (``pdf`` in the revision folder ``files``); one line per
    problem. Every format is asked for its XML: the buyer's must be there and state the
    document's figures, the others must not."""
    number = str(totals["invoice_number"])
    chosen = einvoice.format_of(buyer, kind)
    problems = []
    for fmt in einvoice.FORMATS.values():
        where = pdf if fmt.embedded_name else files / fmt.file_name(kind, number)
        try:
            xml = fmt.read(pdf, files, kind, number)
        except (OSError, ValueError) as exc:
            problems.append(f"{where}: cannot read the {fmt.title} e-invoice ({exc})")
            continue
        name = fmt.file_name(kind, number)
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
