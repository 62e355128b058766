"""`reissue`: credit notes and replacement invoices for what changed in a month.

Only the customers `diff` (`audit/diff.py`) finds changed get a credit note (reversing
the issued invoice and naming its number, with the buyer, currency, tax and e-invoice
format it was issued with) and, when the new total is not zero, a replacement invoice
whose number continues the month's sequence. A customer removed from the inputs has its
current invoice credited in full. Everybody else keeps their invoice. Nothing issued is
rewritten: the reissue adds a revision.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from invoicing import __version__
from invoicing.assemble.computed import Computed
from invoicing.assemble.document_builder import build_documents
from invoicing.assemble.totals import BUYER_COLUMNS, INVOICE_SCHEMA, Assembled, as_issued_to
from invoicing.audit.diff import (
    DOCUMENT_COLUMNS,
    CustomerChange,
    MonthDiff,
    changed_inputs,
    compare,
    issued_month,
    seller_changed,
)
from invoicing.core.errors import InputError, Source, UsageError
from invoicing.core.money import MONEY
from invoicing.core.timeframe import Month
from invoicing.core.timing import StageTimer
from invoicing.pipeline import compute_month, conflict_policy, einvoice_seller
from invoicing.publish.heads import HeadMismatchError
from invoicing.publish.issued import REVISIONS, IssuedMonth
from invoicing.publish.locking import month_lock
from invoicing.publish.manifest import manifest_for, retention_entry
from invoicing.render.einvoice import check_month as check_einvoices
from invoicing.render.einvoice import issued_formats, with_beside_files
from invoicing.render.progress import RenderFn
from invoicing.storage import Staging, check_retention, open_staging
from invoicing.validate.gates import enforce
from invoicing.validate.usage import OnConflict

CREDIT_NOTE_SCHEMA: dict[str, pl.DataType] = {
    "credit_note_number": pl.String(),
    "credits_invoice": pl.String(),
    "customer_id": pl.String(),
    "currency": pl.String(),
    "subtotal": MONEY,
    "tax": MONEY,
    "total": MONEY,
    "pdf_sha256": pl.String(),
}


@dataclass(frozen=True)
class ReissueResult:
    """What a reissue wrote.

    Attributes:
      revision: the new revision's number (0 when nothing was written).
      path: its folder.
      credit_notes: (credit note number, invoice it credits) pairs.
      invoices: (new invoice number, invoice it replaces or None) pairs.
      diff: the comparison the reissue acted on.
    """

    revision: int
    path: Path | None
    credit_notes: tuple[tuple[str, str], ...]
    invoices: tuple[tuple[str, str | None], ...]
    diff: MonthDiff


def operator() -> str:
    """Who ran the command: INVOICING_OPERATOR, else the login name."""
    for var in ("INVOICING_OPERATOR", "USER", "LOGNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@dataclass(frozen=True)
class _CreditNotes:
    """The credit notes of a revision: one per changed customer holding an invoice.

    Attributes:
      numbers: their ``CN-`` numbers, in customer order.
      credited: the invoices they reverse, with ``credit_note_number``.
      invoices: the credit notes as rows of ``invoices.parquet`` (negated totals).
      lines: their lines (the credited invoice's lines, negated).
      buyers: the buyer of each credited invoice as it was issued, in the columns of the
        customers table (what the credit note prints).
      issued_on: credited invoice number -> its issue date (BT-26 of the credit note).
    """

    numbers: list[str]
    credited: pl.DataFrame
    invoices: pl.DataFrame
    lines: pl.DataFrame
    buyers: pl.DataFrame
    issued_on: dict[str, date]


def with_issued_buyers(old_invoices: pl.DataFrame, customers: pl.DataFrame) -> pl.DataFrame:
    """`old_invoices` with the buyer data and e-invoice format of each issued document. A
    month published before documents kept them takes the customers table's data today
    (and the e-invoice by country), the best that is known."""
    missing = [c for c in DOCUMENT_COLUMNS if c not in old_invoices.columns]
    if not missing:
        return old_invoices
    today = customers.select("customer_id", *[
        (pl.col(c) if c in customers.columns else pl.lit(None, dtype=pl.String)).alias(b)
        for b, c in BUYER_COLUMNS.items() if b in missing])
    out = old_invoices.join(today, on="customer_id", how="left")
    if "einvoice_format" in missing:
        out = out.join(issued_formats(customers), on="customer_id", how="left")
    return out


def _issued_buyers(credited: pl.DataFrame, label: str) -> pl.DataFrame:
    """The buyers of the credited invoices, as the customers table would hold them."""
    unknown = credited.filter(pl.col("buyer_name").is_null())
    if unknown.height:
        cid, number = unknown["customer_id"][0], unknown["invoice_number"][0]
        raise InputError(Source(label, "customer_id"), f"customer {cid} is not in the inputs, "
                         f"and its invoice {number} was issued before documents kept their "
                         "buyer data: restore the customer's row to credit it")
    return credited.select("customer_id", "currency", *as_issued_to())


def _issue_dates(issued: IssuedMonth) -> dict[int, date]:
    """Revision number -> the issue date of the invoices it issued."""
    return {rev.number: issued.month.issue_date if rev.number == 0 else
            date.fromisoformat(rev.manifest["revision"]["issue_date"])
            for rev in issued.revisions()}


def _credit_notes(old_items: pl.DataFrame, old_invoices: pl.DataFrame, changed_ids: list[str],
                  month: Month, credit_seq: int, label: str, issue_dates: dict[int, date]
                  ) -> _CreditNotes:
    """Credit notes reversing the changed customers' invoices, with the buyer, currency,
    tax and e-invoice format those invoices were issued with (SPEC §8)."""
    credited = old_invoices.filter(pl.col("customer_id").is_in(changed_ids)
                                   & pl.col("invoice_number").is_not_null()).sort("customer_id")
    numbers = [f"CN-{month.compact}-{credit_seq + i + 1:06d}" for i in range(credited.height)]
    credited = credited.with_columns(credit_note_number=pl.Series(numbers, dtype=pl.String))
    invoices = credited.select(
        *DOCUMENT_COLUMNS, invoice_number=pl.col("credit_note_number"), customer_id="customer_id",
        currency="currency", subtotal=-pl.col("subtotal"), tax_rate="tax_rate",
        tax=-pl.col("tax"), total=-pl.col("total"), pricebook_version="pricebook_version",
        line_count="line_count", pdf_sha256=pl.lit(None, dtype=pl.String),
    ).select(list(INVOICE_SCHEMA)).cast(INVOICE_SCHEMA)  # type: ignore[arg-type]
    lines = (
        old_items.join(credited.select("invoice_number", "credit_note_number"),
                       on="invoice_number")
        .with_columns(invoice_number=pl.col("credit_note_number"), amount=-pl.col("amount"))
        .drop("credit_note_number")
        .select(list(old_items.columns))
    )
    issued_on = {n: issue_dates[int(r)] for n, r in
                 credited.select("invoice_number", "issued_in_revision").rows()}
    return _CreditNotes(numbers, credited, invoices, lines, _issued_buyers(credited, label),
                        issued_on)


@dataclass(frozen=True)
class _Replacements:
    """The month's state after a revision, and the invoices the revision issues.

    Attributes:
      number_of: changed customer with a non-zero new total -> its new ``IM-`` number.
      replaced: changed customer -> the invoice it held (None if it had none).
      state: every customer's current invoice (``invoices.parquet`` of the revision).
      state_items: every current line (``line_items.parquet`` of the revision).
      issued: the replacement (or first) invoices to render.
    """

    number_of: dict[str, str]
    replaced: dict[str, str | None]
    state: pl.DataFrame
    state_items: pl.DataFrame
    issued: Assembled


def _replacements(computed: Computed, old_items: pl.DataFrame, old_invoices: pl.DataFrame,
                  changes: list[CustomerChange], invoice_seq: int, revision: int
                  ) -> _Replacements:
    """Replacement (or first) invoices for changed customers with a non-zero new total,
    numbered on from the month's highest ``IM-`` number; everyone else keeps theirs."""
    new_inv = computed.assembled.invoices
    changed_ids = [c.customer_id for c in changes]
    fresh = new_inv.filter(pl.col("customer_id").is_in(changed_ids)
                           & (pl.col("total") != 0)).sort("customer_id")
    number_of = {cid: f"IM-{computed.month.compact}-{invoice_seq + i + 1:06d}"
                 for i, cid in enumerate(fresh["customer_id"])}
    kept = {c: (n, r, h) for c, n, r, h in old_invoices.select(
        "customer_id", "invoice_number", "issued_in_revision", "pdf_sha256").rows()}
    replaced = {c.customer_id: c.invoice_number for c in changes}

    def current(cid: str) -> tuple[str | None, int | None, str | None]:
        if cid in number_of:
            return number_of[cid], revision, None
        if cid in replaced:
            return None, None, None
        number, rev, sha = kept.get(cid, (None, None, None))
        return number, rev, sha

    now = [current(c) for c in new_inv["customer_id"].to_list()]
    state = new_inv.with_columns(
        invoice_number=pl.Series([n for n, _, _ in now], dtype=pl.String),
        issued_in_revision=pl.Series([r for _, r, _ in now], dtype=pl.Int64),
        replaces=pl.Series([replaced.get(c) if c in number_of else None
                            for c in new_inv["customer_id"].to_list()], dtype=pl.String),
        pdf_sha256=pl.Series([h for _, _, h in now], dtype=pl.String),
    )
    state_items = computed.assembled.line_items.drop("invoice_number").join(
        state.select("customer_id", "invoice_number"), on="customer_id", how="left"
    ).select(list(old_items.columns))
    issued = Assembled(
        line_items=state_items.filter(pl.col("customer_id").is_in(list(number_of))),
        invoices=state.filter(pl.col("customer_id").is_in(list(number_of))),
    )
    return _Replacements(number_of, replaced, state, state_items, issued)


def _render_revision(staging: Staging, computed: Computed, notes: _CreditNotes,
                     fresh: _Replacements, render: RenderFn, common: dict[str, Any]
                     ) -> dict[str, str]:
    """Render the credit notes and the replacement invoices into the staging area; return
    each document's PDF SHA-256 by number."""
    pdf_sha: dict[str, str] = {}
    month, inputs = computed.month, computed.inputs
    cn_links = {n: {"credits_invoice": inv, "credits_invoice_date": notes.issued_on[inv]}
                for n, inv in zip(notes.numbers, notes.credited["invoice_number"], strict=True)}
    docs = build_documents(Assembled(line_items=notes.lines, invoices=notes.invoices),
                           notes.buyers, inputs.apps, computed.versions, month,
                           kind="credit_note", links=cn_links, **common)
    # A Peppol customer's XML goes beside its PDF (credit_notes/ and invoices/<number>.xml).
    docs = with_beside_files(docs, staging.write_bytes, einvoice_seller(computed))
    for number, pdf in render(docs, len(notes.numbers)):
        pdf_sha[number] = staging.write_bytes(f"credit_notes/{number}.pdf", pdf)
    inv_links = {fresh.number_of[c]: {"replaces_invoice": old}
                 for c in fresh.number_of if (old := fresh.replaced.get(c))}
    docs = with_beside_files(build_documents(
        fresh.issued, inputs.customers, inputs.apps, computed.versions, month,
        links=inv_links, **common), staging.write_bytes, einvoice_seller(computed))
    for number, pdf in render(docs, len(fresh.number_of)):
        pdf_sha[number] = staging.write_bytes(f"invoices/{number}.pdf", pdf)
    return pdf_sha


def _with_sha(frame: pl.DataFrame, col: str, pdf_sha: dict[str, str]) -> pl.DataFrame:
    return frame.with_columns(pdf_sha256=pl.coalesce(
        pl.col(col).replace_strict(pdf_sha, default=None, return_dtype=pl.String),
        pl.col("pdf_sha256")))


def _write_revision_tables(staging: Any, computed: Computed, notes: _CreditNotes,
                           fresh: _Replacements, pdf_sha: dict[str, str]) -> None:
    credit_notes = _with_sha(notes.credited.select(
        "credit_note_number", credits_invoice="invoice_number", customer_id="customer_id",
        currency="currency", subtotal=-pl.col("subtotal"), tax=-pl.col("tax"),
        total=-pl.col("total"), pdf_sha256=pl.lit(None, dtype=pl.String),
    ).cast(CREDIT_NOTE_SCHEMA), "credit_note_number", pdf_sha)  # type: ignore[arg-type]
    staging.write_parquet("line_items.parquet", fresh.state_items)
    staging.write_parquet("invoices.parquet", _with_sha(fresh.state, "invoice_number", pdf_sha))
    staging.write_parquet("credit_notes.parquet", credit_notes)
    staging.write_parquet("credit_note_items.parquet", notes.lines)
    staging.write_parquet("rejected_rows.parquet", computed.usage.rejected)
    staging.write_parquet("anomalies.parquet", computed.anomalies)


def _revision_entry(revision: int, reason: str, created: datetime, issue_date: date,
                    latest: Any, notes: _CreditNotes, fresh: _Replacements
                    ) -> dict[str, Any]:
    """The manifest's ``revision`` block: why, who, when, and the hash-chain link."""
    return {
        "number": revision,
        "reason": reason,
        "operator": operator(),
        "created_at": created.isoformat(timespec="seconds"),
        "issue_date": issue_date.isoformat(),
        "previous_manifest_sha256": latest.manifest_sha256,
        "previous_revision": latest.number,
        "credit_notes": [{"number": n, "credits": inv} for n, inv in
                         zip(notes.numbers, notes.credited["invoice_number"], strict=True)],
        "invoices": [{"number": fresh.number_of[c], "replaces": fresh.replaced.get(c)}
                     for c in sorted(fresh.number_of)],
    }


def reissue_month(
    input_dir: Path, out_dir: Path, month: Month, *, reason: str, render: RenderFn,
    seller: Path | None = None, pricebook: Path | None = None,
    on_conflict: OnConflict | None = None, issue_date: date | None = None,
    now: datetime | None = None, allow_incomplete: bool = False,
    expect_head: str | None = None, retain_until: datetime | None = None,
) -> ReissueResult:
    """Write revision n+1: credit notes and replacement invoices for changed customers.

    `seller` is the seller file (default ``templates/seller.toml``); a change to it
    changes every current document, so each is credited and replaced. With
    `expect_head`, nothing is written unless the month still ends in that head (a
    deleted latest revision would otherwise make its numbers be spent again); with
    `retain_until`, the revision's objects are under Object Lock until then."""
    if not reason.strip():
        raise UsageError("--reason must not be empty: say why the month is reissued")
    if retain_until is not None:
        check_retention(out_dir)
    with month_lock(out_dir, month):
        issued = issued_month(out_dir, month)
        latest = issued.latest()
        head = issued.head()
        if expect_head is not None and expect_head.lower() != head.manifest_sha256:
            raise HeadMismatchError(
                f"{issued.root}: head is revision {head.revision} ({head.manifest_sha256}), "
                f"not the expected {expect_head}: a revision was deleted, rewritten or added "
                "since; nothing was written and no number was used")
        issued.check_recorded_heads()
        timer = StageTimer()
        computed = compute_month(input_dir, month, pricebook,
                                 conflict_policy(on_conflict, latest.manifest), timer,
                                 seller=seller)
        enforce(list(computed.gate_findings), month, allow_incomplete)
        old_items, old_invoices = issued.current_state()
        old_invoices = with_issued_buyers(old_invoices, computed.inputs.customers)
        changes = compare(old_items, old_invoices, computed.assembled,
                          seller_changed(latest.manifest, computed))
        diff = MonthDiff(month, latest.number, tuple(changes),
                         changed_inputs(latest.manifest, computed))
        if not changes and latest.manifest.get("inputs_digest") == computed.inputs_digest:
            return ReissueResult(0, None, (), (), diff)

        revision = latest.number + 1
        created = now or datetime.now(UTC)
        issue_date = issue_date or created.date()
        invoice_seq, credit_seq = issued.max_sequences()
        labels = computed.inputs.table_paths
        notes = _credit_notes(old_items, old_invoices, [c.customer_id for c in changes], month,
                              credit_seq, labels["customers"], _issue_dates(issued))
        fresh = _replacements(computed, old_items, old_invoices, changes, invoice_seq, revision)
        # Credit notes and replacements of EU customers are e-invoices too; a credit note
        # with the buyer it reverses.
        seller_facts = einvoice_seller(computed)
        check_einvoices(computed.inputs.customers, fresh.issued.invoices, labels["customers"],
                        seller_facts)
        check_einvoices(notes.buyers, notes.invoices, "the credited invoice", seller_facts)

        staging = open_staging(issued.root / REVISIONS, f"{revision:03d}", root=out_dir,
                               retain_until=retain_until)
        try:
            common: dict[str, Any] = dict(
                run_id=f"{month.compact}-r{revision}-{computed.inputs_digest[:12]}",
                inputs_digest=computed.inputs_digest, software_version=__version__,
                seller=computed.inputs.seller.lines, seller_file=computed.inputs.seller.text,
                issue_date=issue_date, revision=revision, plan_periods=computed.plan_periods,
            )
            pdf_sha = _render_revision(staging, computed, notes, fresh, render, common)
            _write_revision_tables(staging, computed, notes, fresh, pdf_sha)
            manifest = manifest_for(computed, dict(staging.hashes), timer, allow_incomplete)
            manifest["revision"] = _revision_entry(revision, reason, created, issue_date,
                                                   latest, notes, fresh)
            manifest["outputs"] = dict(sorted(staging.hashes.items()))
            if retain_until is not None:
                manifest["retention"] = retention_entry(retain_until)
            staging.write_manifest(manifest)
            path = staging.commit()
        except BaseException:
            staging.discard()
            raise
        issued.record_head(retain_until)
        return ReissueResult(
            revision, path,
            tuple(zip(notes.numbers, notes.credited["invoice_number"].to_list(), strict=True)),
            tuple((fresh.number_of[c], fresh.replaced.get(c)) for c in sorted(fresh.number_of)),
            diff,
        )
