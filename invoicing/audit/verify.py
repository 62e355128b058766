"""`verify`: prove that a published month still matches its inputs.

Four checks, each reported as one line naming the file:

1. every file listed in each revision's manifest exists with the recorded SHA-256, no
   unlisted file sits among them, and each revision names the SHA-256 of the previous
   revision's manifest (the chain is intact);
2. the input files have the hashes the latest manifest recorded;
3. the month recomputed from the inputs equals the published line items and totals;
4. the line items embedded in every current PDF equal the recomputed ones;
5. every current invoice PDF of an EU customer embeds a ``factur-x.xml`` whose number,
   line amounts and totals equal the recomputed ones, and no other invoice PDF embeds
   one; each EU credit note's XML states (positive, type 381) what its parquet credits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl

from invoicing.audit.diff import changed_inputs, compare, issued_month
from invoicing.audit.reports import evidence_text, money
from invoicing.core.timeframe import Month
from invoicing.load.inputs import sha256_file
from invoicing.pipeline import compute_month
from invoicing.pricing.lines import LINE_SCHEMA
from invoicing.publish.issued import REVISIONS, IssuedMonth, Revision
from invoicing.publish.locking import month_lock
from invoicing.render import einvoice
from invoicing.render.attachment import read_attachment
from invoicing.storage import MANIFEST, readable, relative_name


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


def verify_month(input_dir: Path, out_dir: Path, month: Month, pricebook: Path | None = None
                 ) -> VerifyReport:
    report = VerifyReport()
    issued: IssuedMonth = issued_month(out_dir, month)  # before the lock: it creates --out
    with month_lock(out_dir, month):
        revisions = issued.revisions()
        report.revisions = len(revisions)
        for i, rev in enumerate(revisions):
            _check_files(rev, revisions[i - 1] if i else None, report)

        latest = revisions[-1]
        policy = latest.manifest.get("options", {}).get("on_conflict", "error")
        computed = compute_month(input_dir, month, pricebook, policy)
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
                    f"({evidence_text(ln.item, ln.old)}), recomputed "
                    f"{money(ln.new_amount, cur)} ({evidence_text(ln.item, ln.new)})")
            if not change.lines:
                report.mismatches.append(
                    f"{latest.path / 'invoices.parquet'}: customer {change.customer_id}: "
                    f"published total {money(change.old_total, cur)}, recomputed "
                    f"{money(change.new_total, cur)}")

        # Each current PDF carries its own copy of the lines; compare it with the
        # recomputation for that invoice number.
        recomputed = computed.assembled.line_items.drop("invoice_number").join(
            invoices.select("customer_id", "invoice_number"), on="customer_id")
        recomputed_totals = computed.assembled.invoices.drop("invoice_number").join(
            invoices.select("customer_id", "invoice_number"), on="customer_id").join(
            computed.inputs.customers.select("customer_id", "country"), on="customer_id")
        by_rev = {r.number: r for r in revisions}
        cols = ["invoice_number", *LINE_SCHEMA]
        for number, rev_no in invoices.filter(pl.col("invoice_number").is_not_null()).select(
                "invoice_number", "issued_in_revision").rows():
            pdf = by_rev[int(rev_no)].files / "invoices" / f"{number}.pdf"
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
            totals = recomputed_totals.filter(pl.col("invoice_number") == number).row(
                0, named=True)
            report.mismatches.extend(_check_einvoice(pdf, totals, expected["amount"].to_list()))
        countries = computed.inputs.customers.select("customer_id", "country")
        for rev in revisions:
            report.mismatches.extend(_check_credit_note_einvoices(rev, countries))
    return report


def _check_credit_note_einvoices(rev: Revision, countries: pl.DataFrame) -> list[str]:
    """Check 5 for the credit notes of a revision: the XML states what they credit (381)."""
    if not (rev.path / "credit_notes.parquet").is_file():
        return []
    notes = pl.read_parquet(rev.path / "credit_notes.parquet").join(countries, on="customer_id")
    items = pl.read_parquet(rev.path / "credit_note_items.parquet")
    problems = []
    for note in notes.iter_rows(named=True):
        number = note["credit_note_number"]
        credited = {**note, "invoice_number": number,
                    **{k: -note[k] for k in ("subtotal", "tax", "total")}}
        amounts = [-a for a in items.filter(pl.col("invoice_number") == number)["amount"]]
        problems += _check_einvoice(rev.path / "credit_notes" / f"{number}.pdf", credited,
                                    amounts, type_code="381", against="credit_notes.parquet")
    return problems


def _check_einvoice(pdf: Path, totals: dict[str, object], amounts: list[object],
                    type_code: str = "380", against: str = "the recomputed month") -> list[str]:
    """Check 5 for one PDF; one line per problem."""
    try:
        xml = einvoice.read_embedded_xml(readable(pdf))
    except (OSError, ValueError) as exc:
        return [f"{pdf}: cannot read attachments ({exc})"]
    if not einvoice.is_eu(str(totals["country"])):
        return [] if xml is None else [f"{pdf}: a non-EU customer's PDF embeds "
                                       f"{einvoice.XML_NAME}"]
    if xml is None:
        return [f"{pdf}: an EU customer's PDF without {einvoice.XML_NAME}"]
    try:
        got = einvoice.read_figures(xml)
    except ValueError as exc:
        return [f"{pdf}: {einvoice.XML_NAME} unreadable ({exc})"]
    want = (totals["invoice_number"], type_code, tuple(amounts), totals["subtotal"],
            totals["tax"], totals["total"])
    if (got.number, got.type_code, got.line_amounts, got.subtotal, got.tax,
            got.total) != want:
        return [f"{pdf}: embedded {einvoice.XML_NAME} differs from {against}"]
    return []
