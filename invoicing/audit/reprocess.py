"""Reprocessing a month: compare a recomputation with what was issued (`diff`), and issue
credit notes and replacement invoices for what changed (`reissue`).

A customer's charges *changed* when any of its line items differs in any column (the
amount or the evidence behind it), or its invoice totals differ. Only those customers
get a credit note (reversing the issued invoice and naming its number) and, when the new
total is not zero, a replacement invoice whose number continues the month's sequence.
Everybody else keeps their invoice.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from invoicing import __version__
from invoicing.assemble.computed import Computed
from invoicing.assemble.document_builder import build_documents
from invoicing.assemble.totals import INVOICE_SCHEMA, Assembled
from invoicing.core.errors import NotPublishedError, UsageError
from invoicing.core.money import MONEY, in_minor_units
from invoicing.core.timeframe import Month
from invoicing.core.timing import StageTimer
from invoicing.pipeline import compute_month
from invoicing.pricing.lines import LINE_SCHEMA
from invoicing.publish.issued import REVISIONS, IssuedMonth
from invoicing.publish.locking import month_lock
from invoicing.publish.manifest import manifest_for
from invoicing.render.einvoice import check_month as check_einvoices
from invoicing.render.einvoice import with_beside_files
from invoicing.render.progress import RenderFn
from invoicing.storage import Staging, open_staging
from invoicing.validate.gates import enforce
from invoicing.validate.usage import OnConflict

#: What makes one charge of a month: a customer's app and item, and for a prorated plan
#: fee (one line per plan) the plan. An overage line whose peak moved to a day on another
#: plan is the same charge with other evidence, not a removed and an added line.
LINE_KEY = ["customer_id", "sdk_app_id", "item", "slot"]
#: The evidence `diff` shows next to the amounts of a changed charge.
EVIDENCE = ["plan", "quantity", "unit_price", "tier", "peak_value", "peak_date", "free_quota",
            "block", "excess", "bands", "days_on_plan", "days_in_month", "active_days",
            "first_active", "last_active", "trial_end"]
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
class LineChange:
    """One charge that differs, with its evidence before and after.

    Attributes:
      sdk_app_id, item: the charge.
      plan: the plan of the new line (of the old one if the charge disappeared).
      old_amount, new_amount: None where the charge exists on one side only.
      old, new: the evidence columns of `EVIDENCE` (plan, blocks, peak and its day, ...)
        of each side, or None where the charge exists on one side only.
    """

    sdk_app_id: int
    item: str
    plan: str | None
    old_amount: Decimal | None
    new_amount: Decimal | None
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None


@dataclass(frozen=True)
class CustomerChange:
    """A customer whose charges changed.

    Attributes:
      customer_id: the customer.
      currency: its currency now.
      invoice_number: the number currently issued, or None (zero total until now).
      old_total, new_total: totals as issued and as recomputed.
      lines: the charges that differ, by app and item.
      old_subtotal, new_subtotal, old_tax, new_tax: the other totals, the same way.
    """

    customer_id: str
    currency: str
    invoice_number: str | None
    old_total: Decimal
    new_total: Decimal
    lines: tuple[LineChange, ...]
    old_subtotal: Decimal = Decimal(0)
    new_subtotal: Decimal = Decimal(0)
    old_tax: Decimal = Decimal(0)
    new_tax: Decimal = Decimal(0)


@dataclass(frozen=True)
class MonthDiff:
    """The difference between the issued month and a recomputation.

    Attributes:
      revision: the revision compared with (the latest).
      changes: customers whose charges changed, by customer_id.
      changed_inputs: input files whose SHA-256 differs, or that appeared or vanished.
    """

    month: Month
    revision: int
    changes: tuple[CustomerChange, ...]
    changed_inputs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month.label,
            "compared_with_revision": self.revision,
            "changed_inputs": list(self.changed_inputs),
            "customers": [
                {
                    "customer_id": c.customer_id,
                    "currency": c.currency,
                    "invoice_number": c.invoice_number,
                    "old_total": str(in_minor_units(c.old_total, c.currency)),
                    "new_total": str(in_minor_units(c.new_total, c.currency)),
                    "old_subtotal": str(in_minor_units(c.old_subtotal, c.currency)),
                    "new_subtotal": str(in_minor_units(c.new_subtotal, c.currency)),
                    "old_tax": str(in_minor_units(c.old_tax, c.currency)),
                    "new_tax": str(in_minor_units(c.new_tax, c.currency)),
                    "lines": [
                        {
                            "sdk_app_id": ln.sdk_app_id,
                            "item": ln.item,
                            "plan": ln.plan,
                            "old_amount": _shown(ln.old_amount, c.currency),
                            "new_amount": _shown(ln.new_amount, c.currency),
                            "old": _evidence_json(ln.old),
                            "new": _evidence_json(ln.new),
                        }
                        for ln in c.lines
                    ],
                }
                for c in self.changes
            ],
        }


def _evidence_json(evidence: dict[str, Any] | None) -> dict[str, Any] | None:
    """Evidence as JSON values: dates ISO, prices as exact decimal strings, nulls left out;
    a whole quantity (blocks, months) as an integer, a share of a month as its decimal."""
    if evidence is None:
        return None

    def value(key: str, v: Any) -> Any:
        if key == "bands":  # JSON text in the line items: structured here
            return json.loads(v)
        if isinstance(v, date):
            return v.isoformat()
        if key == "quantity" and isinstance(v, Decimal) and v == v.to_integral_value():
            return int(v)
        return str(v) if isinstance(v, Decimal) else v

    return {k: value(k, v) for k, v in evidence.items() if v is not None}


def _shown(amount: Decimal | None, currency: str) -> str | None:
    return None if amount is None else str(in_minor_units(amount, currency))


def changed_inputs(issued_manifest: dict[str, Any], computed: Computed) -> tuple[str, ...]:
    old = {f["path"]: f["sha256"] for f in issued_manifest.get("inputs", [])}
    new = {f.path: f.sha256 for f in computed.inputs.files}
    return tuple(sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p)))


def _money(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)


def _slot() -> pl.Expr:
    """The plan of a prorated plan fee (one line per plan), else null (see `LINE_KEY`)."""
    return (pl.when((pl.col("item") == "plan_fee") & pl.col("days_on_plan").is_not_null())
            .then(pl.col("plan")))


def compare(old_items: pl.DataFrame, old_invoices: pl.DataFrame, new: Assembled
            ) -> list[CustomerChange]:
    """Customers whose lines or totals differ, with the differing charges (vectorised)."""
    cols = list(LINE_SCHEMA)
    # A month issued before a column existed (``bands``) has it as nulls.
    old_lines = old_items.with_columns(
        pl.lit(None, dtype=dtype).alias(name) for name, dtype in LINE_SCHEMA.items()
        if name not in old_items.columns).select(cols)
    new_lines = new.line_items.select(cols)
    differing = pl.concat([
        old_lines.join(new_lines, on=cols, how="anti", nulls_equal=True),
        new_lines.join(old_lines, on=cols, how="anti", nulls_equal=True),
    ])
    totals = ["customer_id", "currency", "subtotal", "tax_rate", "tax", "total"]
    moved = pl.concat([
        old_invoices.select(totals).join(new.invoices.select(totals), on=totals, how="anti",
                                         nulls_equal=True),
        new.invoices.select(totals).join(old_invoices.select(totals), on=totals, how="anti",
                                         nulls_equal=True),
    ])
    changed_ids = sorted(set(differing["customer_id"]) | set(moved["customer_id"]))
    if not changed_ids:
        return []

    def side(lines: pl.DataFrame, name: str) -> pl.DataFrame:
        return lines.filter(pl.col("customer_id").is_in(changed_ids)).select(
            "customer_id", "sdk_app_id", "item", _slot().alias("slot"),
            pl.col("amount").alias(f"{name}_amount"),
            pl.struct(EVIDENCE).alias(f"{name}_evidence"))

    line_diff = (
        side(old_lines, "old")
        .join(side(new_lines, "new"), on=LINE_KEY, how="full", coalesce=True, nulls_equal=True)
        .join(differing.select("customer_id", "sdk_app_id", "item", _slot().alias("slot"))
              .unique().with_columns(_differs=pl.lit(True)),
              on=LINE_KEY, how="left", nulls_equal=True)
        .filter(pl.col("_differs").fill_null(False))
        .sort(LINE_KEY, nulls_last=True)
    )
    lines_by_customer: dict[str, list[LineChange]] = {}
    for r in line_diff.to_dicts():
        old_ev = r["old_evidence"] if r["old_amount"] is not None else None
        new_ev = r["new_evidence"] if r["new_amount"] is not None else None
        lines_by_customer.setdefault(r["customer_id"], []).append(LineChange(
            sdk_app_id=r["sdk_app_id"], item=r["item"],
            plan=(new_ev or old_ev or {}).get("plan"),
            old_amount=r["old_amount"], new_amount=r["new_amount"], old=old_ev, new=new_ev,
        ))
    old_by_id = {r["customer_id"]: r for r in old_invoices.to_dicts()}
    new_by_id = {r["customer_id"]: r for r in new.invoices.to_dicts()}
    changes = []
    for cid in changed_ids:
        old, nw = old_by_id.get(cid, {}), new_by_id.get(cid, {})
        changes.append(CustomerChange(
            customer_id=cid,
            currency=nw.get("currency") or old.get("currency") or "",
            invoice_number=old.get("invoice_number"),
            old_total=_money(old.get("total")),
            new_total=_money(nw.get("total")),
            lines=tuple(lines_by_customer.get(cid, [])),
            old_subtotal=_money(old.get("subtotal")),
            new_subtotal=_money(nw.get("subtotal")),
            old_tax=_money(old.get("tax")),
            new_tax=_money(nw.get("tax")),
        ))
    return changes


def diff_month(input_dir: Path, out_dir: Path, month: Month, pricebook: Path | None = None,
               on_conflict: OnConflict | None = None) -> MonthDiff:
    """Recompute the month and compare it with the latest issued revision. Writes nothing."""
    issued = issued_month(out_dir, month)
    latest = issued.latest()
    policy = on_conflict or latest.manifest.get("options", {}).get("on_conflict", "error")
    computed = compute_month(input_dir, month, pricebook, policy)
    old_items, old_invoices = issued.current_state()
    return MonthDiff(month, latest.number, tuple(compare(old_items, old_invoices,
                                                          computed.assembled)),
                     changed_inputs(latest.manifest, computed))


def issued_month(out_dir: Path, month: Month) -> IssuedMonth:
    issued = IssuedMonth(out_dir, month)
    if not issued.exists():
        raise NotPublishedError(f"{issued.root}: the month has not been published; "
                                "use 'invoicing run' first")
    return issued


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
      issued_on: credited invoice number -> its issue date (BT-26 of the credit note).
    """

    numbers: list[str]
    credited: pl.DataFrame
    invoices: pl.DataFrame
    lines: pl.DataFrame
    issued_on: dict[str, date]


def _issue_dates(issued: IssuedMonth) -> dict[int, date]:
    """Revision number -> the issue date of the invoices it issued."""
    return {rev.number: issued.month.issue_date if rev.number == 0 else
            date.fromisoformat(rev.manifest["revision"]["issue_date"])
            for rev in issued.revisions()}


def _credit_notes(old_items: pl.DataFrame, old_invoices: pl.DataFrame, changed_ids: list[str],
                  month: Month, credit_seq: int, issue_dates: dict[int, date]) -> _CreditNotes:
    credited = old_invoices.filter(pl.col("customer_id").is_in(changed_ids)
                                   & pl.col("invoice_number").is_not_null()).sort("customer_id")
    numbers = [f"CN-{month.compact}-{credit_seq + i + 1:06d}" for i in range(credited.height)]
    credited = credited.with_columns(credit_note_number=pl.Series(numbers, dtype=pl.String))
    invoices = credited.select(
        invoice_number=pl.col("credit_note_number"), customer_id="customer_id",
        currency="currency", subtotal=-pl.col("subtotal"), tax_rate="tax_rate",
        tax=-pl.col("tax"), total=-pl.col("total"), pricebook_version="pricebook_version",
        line_count="line_count", pdf_sha256=pl.lit(None, dtype=pl.String),
    ).cast(INVOICE_SCHEMA)  # type: ignore[arg-type]
    lines = (
        old_items.join(credited.select("invoice_number", "credit_note_number"),
                       on="invoice_number")
        .with_columns(invoice_number=pl.col("credit_note_number"), amount=-pl.col("amount"))
        .drop("credit_note_number")
        .select(list(old_items.columns))
    )
    issued_on = {n: issue_dates[int(r)] for n, r in
                 credited.select("invoice_number", "issued_in_revision").rows()}
    return _CreditNotes(numbers, credited, invoices, lines, issued_on)


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
                           inputs.customers, inputs.apps, computed.versions, month,
                           kind="credit_note", links=cn_links, **common)
    # A Peppol customer's XML goes beside its PDF (credit_notes/ and invoices/<number>.xml).
    docs = with_beside_files(docs, staging.write_bytes)
    for number, pdf in render(docs, len(notes.numbers)):
        pdf_sha[number] = staging.write_bytes(f"credit_notes/{number}.pdf", pdf)
    inv_links = {fresh.number_of[c]: {"replaces_invoice": old}
                 for c in fresh.number_of if (old := fresh.replaced.get(c))}
    docs = with_beside_files(build_documents(
        fresh.issued, inputs.customers, inputs.apps, computed.versions, month,
        links=inv_links, **common), staging.write_bytes)
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
    seller: tuple[str, ...], pricebook: Path | None = None, on_conflict: OnConflict | None = None,
    issue_date: date | None = None, now: datetime | None = None, allow_incomplete: bool = False,
) -> ReissueResult:
    """Write revision n+1: credit notes and replacement invoices for changed customers."""
    if not reason.strip():
        raise UsageError("--reason must not be empty: say why the month is reissued")
    with month_lock(out_dir, month):
        issued = issued_month(out_dir, month)
        latest = issued.latest()
        policy = on_conflict or latest.manifest.get("options", {}).get("on_conflict", "error")
        timer = StageTimer()
        computed = compute_month(input_dir, month, pricebook, policy, timer)
        enforce(list(computed.gate_findings), month, allow_incomplete)
        old_items, old_invoices = issued.current_state()
        changes = compare(old_items, old_invoices, computed.assembled)
        diff = MonthDiff(month, latest.number, tuple(changes),
                         changed_inputs(latest.manifest, computed))
        if not changes and latest.manifest.get("inputs_digest") == computed.inputs_digest:
            return ReissueResult(0, None, (), (), diff)

        # Credit notes and replacements of EU customers are e-invoices too.
        for invoices in (computed.assembled.invoices, old_invoices):
            check_einvoices(computed.inputs.customers, invoices,
                            computed.inputs.table_paths["customers"])
        revision = latest.number + 1
        created = now or datetime.now(UTC)
        issue_date = issue_date or created.date()
        invoice_seq, credit_seq = issued.max_sequences()
        notes = _credit_notes(old_items, old_invoices, [c.customer_id for c in changes], month,
                              credit_seq, _issue_dates(issued))
        fresh = _replacements(computed, old_items, old_invoices, changes, invoice_seq, revision)

        staging = open_staging(issued.root / REVISIONS, f"{revision:03d}", root=out_dir)
        try:
            common: dict[str, Any] = dict(
                run_id=f"{month.compact}-r{revision}-{computed.inputs_digest[:12]}",
                inputs_digest=computed.inputs_digest, software_version=__version__,
                seller=seller, issue_date=issue_date, revision=revision,
                plan_periods=computed.plan_periods,
            )
            pdf_sha = _render_revision(staging, computed, notes, fresh, render, common)
            _write_revision_tables(staging, computed, notes, fresh, pdf_sha)
            manifest = manifest_for(computed, dict(staging.hashes), timer, allow_incomplete)
            manifest["revision"] = _revision_entry(revision, reason, created, issue_date,
                                                   latest, notes, fresh)
            manifest["outputs"] = dict(sorted(staging.hashes.items()))
            staging.write_manifest(manifest)
            path = staging.commit()
        except BaseException:
            staging.discard()
            raise
        return ReissueResult(
            revision, path,
            tuple(zip(notes.numbers, notes.credited["invoice_number"].to_list(), strict=True)),
            tuple((fresh.number_of[c], fresh.replaced.get(c)) for c in sorted(fresh.number_of)),
            diff,
        )
