"""`diff`: compare a recomputation of a month with what was issued. Writes nothing.

A customer's document *changed* when any of its line items differs in any column (the
amount or the evidence behind it), its invoice totals differ, or the data the document
was issued with differs: the buyer's name, address, country, tax id, locale or e-mail,
its e-invoice format, or the seller file (which changes every document). `reissue`
(`audit/reissue.py`) credits and replaces exactly those; `verify` reports them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from invoicing.assemble.computed import Computed
from invoicing.assemble.totals import BUYER_COLUMNS, Assembled
from invoicing.core.errors import NotPublishedError
from invoicing.core.money import in_minor_units
from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month, conflict_policy
from invoicing.pricing.lines import LINE_SCHEMA
from invoicing.publish.issued import IssuedMonth
from invoicing.validate.usage import OnConflict

#: What makes one charge of a month: a customer's app and item, and for a prorated plan
#: fee (one line per plan) the plan. An overage line whose peak moved to a day on another
#: plan is the same charge with other evidence, not a removed and an added line.
LINE_KEY = ["customer_id", "sdk_app_id", "item", "slot"]
#: The evidence `diff` shows next to the amounts of a changed charge.
EVIDENCE = ["plan", "quantity", "unit_price", "tier", "peak_value", "peak_date", "free_quota",
            "block", "excess", "bands", "days_on_plan", "days_in_month", "active_days",
            "first_active", "last_active", "trial_end"]


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
      documents: what changes on the issued document besides its figures (``buyer
        country``, ``seller file``, ...): the document is reissued for it too.
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
    documents: tuple[str, ...] = ()


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
                    "document_changes": list(c.documents),
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


#: The issued data of a document besides its figures: a change to any of them changes the
#: document, so a reissue credits and replaces it.
DOCUMENT_COLUMNS = [*BUYER_COLUMNS, "einvoice_format"]


def _document_changes(old_invoices: pl.DataFrame, new: pl.DataFrame, seller_changed: bool
                      ) -> dict[str, list[str]]:
    """Customer -> what changes on its current document besides the figures: the buyer
    data it was issued with, its e-invoice format, or the seller file (every document).
    A month published before documents kept their buyer data compares the seller only."""
    issued = old_invoices.filter(pl.col("invoice_number").is_not_null())
    found: dict[str, list[str]] = {}
    if seller_changed:
        for cid in issued["customer_id"]:
            found.setdefault(cid, []).append("seller file")
    columns = [c for c in DOCUMENT_COLUMNS if c in issued.columns]
    if not columns:
        return found
    both = issued.select("customer_id", *columns).join(
        new.select("customer_id", *columns), on="customer_id", suffix="_new")
    for column in columns:
        differs = both.filter(pl.col(column).ne_missing(pl.col(f"{column}_new")))
        for cid in differs["customer_id"]:
            found.setdefault(cid, []).append(column.replace("_", " "))
    return found


def compare(old_items: pl.DataFrame, old_invoices: pl.DataFrame, new: Assembled,
            seller_changed: bool = False) -> list[CustomerChange]:
    """Customers whose lines, totals or issued document data differ, with the differing
    charges (vectorised)."""
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
    documents = _document_changes(old_invoices, new.invoices, seller_changed)
    changed_ids = sorted(set(differing["customer_id"]) | set(moved["customer_id"])
                         | set(documents))
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
            documents=tuple(documents.get(cid, ())),
        ))
    return changes


def seller_changed(issued_manifest: dict[str, Any], computed: Computed) -> bool:
    """The seller file differs from the one the month was issued with (a month issued
    before the seller file was an input does not say, and is taken as unchanged)."""
    old = issued_manifest.get("seller", {}).get("sha256")
    return old is not None and old != computed.inputs.seller.sha256


def diff_month(input_dir: Path, out_dir: Path, month: Month, pricebook: Path | None = None,
               on_conflict: OnConflict | None = None, *, seller: Path | None = None
               ) -> MonthDiff:
    """Recompute the month and compare it with the latest issued revision. Writes nothing."""
    issued = issued_month(out_dir, month)
    latest = issued.latest()
    computed = compute_month(input_dir, month, pricebook,
                             conflict_policy(on_conflict, latest.manifest), seller=seller)
    old_items, old_invoices = issued.current_state()
    changes = compare(old_items, old_invoices, computed.assembled,
                      seller_changed(latest.manifest, computed))
    return MonthDiff(month, latest.number, tuple(changes),
                     changed_inputs(latest.manifest, computed))


def issued_month(out_dir: Path, month: Month) -> IssuedMonth:
    issued = IssuedMonth(out_dir, month)
    if not issued.exists():
        raise NotPublishedError(f"{issued.root}: the month has not been published; "
                                "use 'invoicing run' first")
    return issued
