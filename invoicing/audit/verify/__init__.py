"""`verify`: prove that a published month still matches its inputs, and that nothing
issued has been altered, added or taken away.

Each check reports one line per mismatch, naming the file and the fact, and a damaged
month is a list of mismatches (exit 7), never a crash:

1. the stored files (`chain.py`): every file each revision's manifest lists exists with
   the recorded SHA-256 and its protection (read-only, or Object Lock retention when the
   month was published with it); no other file sits under the month; each revision names
   the SHA-256 of the previous manifest; the chain ends in the expected head
   (``--expect-head``); document numbers run without gap or reuse across revisions;
2. the input files have the hashes the latest manifest recorded;
3. the published facts (`facts.py`): every manifest's totals and counts against its
   Parquet files and the latest one against the recomputation; every ``pdf_sha256``
   against the manifest; every PDF's embedded line items and ``factur-x.xml`` against its
   revision's rows;
4. the month recomputed from the inputs equals the current line items and totals, each
   current document was issued with the buyer data the inputs hold now, and every current
   PDF embeds the recomputed lines.

Documents are checked against the buyer they were issued to (kept in
``invoices.parquet``); a month published before documents kept it is checked against the
customers table today. When a mismatch is found in a month published by other software,
the first line says so: the difference may come from the code, not the inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import polars as pl

from invoicing import __version__
from invoicing.assemble.computed import Computed
from invoicing.audit.diff import changed_inputs, compare, seller_changed
from invoicing.audit.reports import evidence_text, money
from invoicing.audit.verify.chain import check_files, check_head, check_numbers, check_strays
from invoicing.audit.verify.facts import (
    COLS,
    check_documents,
    check_einvoice,
    check_manifest_against_files,
    check_manifest_against_recomputation,
    check_pdf_hashes,
    compare_embedded,
    invoices_of,
    issued_parties,
    read_table,
)
from invoicing.audit.verify.report import VerifyReport
from invoicing.core.documents import Party
from invoicing.core.errors import InvoicingError, NotPublishedError
from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month, conflict_policy
from invoicing.publish.heads import Head, read_head_records, record_problems
from invoicing.publish.issued import IssuedMonth, Revision
from invoicing.publish.locking import month_lock
from invoicing.render import einvoice
from invoicing.render.environment import software_digest
from invoicing.storage import MANIFEST, OBJECTS, list_files
from invoicing.validate.usage import OnConflict

__all__ = ["VerifyReport", "verify_month"]


def _guarded(report: VerifyReport, where: object, check: Callable[[], None]) -> None:
    """Run one check; whatever a damaged file makes it raise is a mismatch naming `where`
    (an error of the command itself, such as bad inputs or an unreachable store, is not)."""
    try:
        check()
    except InvoicingError:
        raise
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else ""
        report.add(f"{where}: damaged, cannot be checked ({type(exc).__name__}"
                   f"{': ' + text if text else ''})")


def verify_month(input_dir: Path, out_dir: Path, month: Month, pricebook: Path | None = None,
                 expect_head: str | None = None, *, seller: Path | None = None,
                 on_conflict: OnConflict | None = None) -> VerifyReport:
    report = VerifyReport()
    issued = IssuedMonth(out_dir, month)
    if not issued.exists():
        # On object storage an unfinished run leaves objects under objects/<key>/: not a
        # published month, unless a head was recorded or expected, or other files are there.
        stored = list_files(issued.root) if issued.root.exists() else []
        records, unreadable = read_head_records(out_dir, month.label)
        report.mismatches.extend(unreadable + record_problems(records, {}))
        if expect_head is not None:
            report.add(f"{issued.root / MANIFEST}: missing: the month ends in no head, not "
                       f"the expected {expect_head}")
        if any(not name.startswith(f"{OBJECTS}/") for name in stored):
            report.add(f"{issued.root / MANIFEST}: missing, but {len(stored)} file(s) sit "
                       "under the month")
        if report.ok:
            raise NotPublishedError(f"{issued.root}: the month has not been published; "
                                    "use 'invoicing run' first")
        return report
    with month_lock(out_dir, month):
        revisions, problems = issued.scan()
        report.mismatches.extend(problems)
        report.revisions = len(revisions)
        if not revisions:
            return report
        latest = revisions[-1]
        report.head = Head(month.label, latest.number, latest.manifest_sha256)
        check_head(report.head, expect_head, revisions, report)
        records, unreadable = read_head_records(out_dir, month.label)
        report.mismatches.extend(unreadable + record_problems(
            records, {r.number: r.manifest_sha256 for r in revisions}))
        for i, rev in enumerate(revisions):
            previous = revisions[i - 1] if i else None
            _guarded(report, rev.path, partial(check_files, rev, previous, report))
        _guarded(report, issued.root, lambda: check_strays(issued.root, revisions, report))
        _guarded(report, issued.root, lambda: check_numbers(month, revisions, report))

        computed = compute_month(input_dir, month, pricebook,
                                 conflict_policy(on_conflict, latest.manifest), seller=seller)
        for path in changed_inputs(latest.manifest, computed):
            report.add(f"{input_dir / path}: input differs from {latest.path / MANIFEST} "
                       "(SHA-256)")
        _guarded(report, latest.path / MANIFEST,
                 lambda: check_manifest_against_recomputation(latest, computed, report))
        parties = einvoice.buyers(computed.inputs.customers)
        issued_to: dict[str, Party] = {}
        _guarded(report, issued.root, lambda: issued_to.update(issued_parties(revisions, report)))
        for rev in revisions:
            _guarded(report, rev.files, partial(check_manifest_against_files, rev, report))
            _guarded(report, rev.files, partial(check_pdf_hashes, rev, revisions, report))
            _guarded(report, rev.files, partial(check_documents, rev, parties, report,
                                                issued_to))
        _guarded(report, latest.files, lambda: _check_current(issued, revisions, computed,
                                                              report, issued_to))
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


def _check_current(issued: IssuedMonth, revisions: list[Revision], computed: Computed,
                   report: VerifyReport, issued_to: dict[str, Party]) -> None:
    """The current state equals the recomputation, and so does every current PDF."""
    latest = revisions[-1]
    items = read_table(latest, "line_items.parquet", report)
    invoices = invoices_of(latest, report)
    if items is None:
        raise ValueError(f"{latest.path / MANIFEST} lists no line_items.parquet")
    report.line_items = items.height
    numbered = invoices.filter(pl.col("invoice_number").is_not_null())
    for cur, total, count in numbered.group_by("currency").agg(
            pl.col("total").sum(), pl.len()).rows():
        report.totals[cur] = (total, count)
    for change in compare(items, invoices, computed.assembled,
                          seller_changed(latest.manifest, computed)):
        cur = change.currency
        for ln in change.lines:
            report.add(
                f"{latest.files / 'line_items.parquet'}: customer {change.customer_id} app "
                f"{ln.sdk_app_id} {ln.item}: published {money(ln.old_amount, cur)} "
                f"({evidence_text(ln.item, ln.old, cur)}), recomputed "
                f"{money(ln.new_amount, cur)} ({evidence_text(ln.item, ln.new, cur)})")
        if change.documents:
            report.add(f"{latest.files / 'invoices.parquet'}: customer {change.customer_id}: "
                       f"issued with other data than the inputs hold now "
                       f"({', '.join(change.documents)})")
        if not change.lines and (not change.documents or change.old_total != change.new_total):
            report.add(f"{latest.files / 'invoices.parquet'}: customer {change.customer_id}: "
                       f"published total {money(change.old_total, cur)}, recomputed "
                       f"{money(change.new_total, cur)}")

    recomputed = computed.assembled.line_items.drop("invoice_number").join(
        invoices.select("customer_id", "invoice_number"), on="customer_id")
    recomputed_totals = computed.assembled.invoices.drop("invoice_number").join(
        invoices.select("customer_id", "invoice_number"), on="customer_id")
    parties = einvoice.buyers(computed.inputs.customers)
    by_rev = {r.number: r for r in revisions}
    for number, rev_no in numbered.select("invoice_number", "issued_in_revision").rows():
        rev = by_rev.get(int(rev_no)) if rev_no is not None else None
        if rev is None:
            report.add(f"{latest.files / 'invoices.parquet'}: {number}: issued in revision "
                       f"{rev_no}, which is not in the chain")
            continue
        pdf = rev.files / "invoices" / f"{number}.pdf"
        report.pdfs += 1
        expected = recomputed.filter(pl.col("invoice_number") == number).select(COLS)
        compare_embedded(pdf, expected, "the recomputed month", report)
        totals = recomputed_totals.filter(pl.col("invoice_number") == number)
        if totals.is_empty():
            report.add(f"{pdf}: current, but its customer is not in the inputs (reissue the "
                       "month to credit it)")
            continue
        row = totals.row(0, named=True)
        buyer = issued_to.get(number) or parties.get(row["customer_id"])
        report.mismatches.extend(check_einvoice(pdf, rev.files, buyer,
                                                row, expected["amount"].to_list(),
                                                against="the recomputed month", report=report))
