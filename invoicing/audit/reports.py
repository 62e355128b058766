"""Text reports for finance: what `diff` and `verify` print.

Written for a reader who knows the invoices, not the code: one row per changed charge
with its evidence before and after (plan, peak and its day, blocks or bands, tier, days,
in the words of the invoice: `invoicing.render.evidence_text`) and the
amounts in the currency's own format (Babel, through `invoicing.render.i18n`), then one row per
invoice whose totals changed. Columns are aligned so the report reads as a table in a
terminal or a ticket. `diff --format json` is the machine-readable form.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from invoicing.assemble.computed import Computed
from invoicing.audit.diff import CustomerChange, LineChange, MonthDiff
from invoicing.core.money import in_minor_units
from invoicing.pipeline import RunResult
from invoicing.publish.manifest import totals_per_currency
from invoicing.render import evidence_text as evidence_text_module
from invoicing.render import i18n

#: Locale of the reports (labels are English; amounts and counts use its formats).
REPORT_LOCALE = "en_US"
NONE = "-"

def money(amount: Decimal | None, currency: str) -> str:
    """An amount in the currency's format (``$1,199.00``, ``₩550,000``), or ``-``."""
    return NONE if amount is None else i18n.format_money(amount, currency, REPORT_LOCALE)


def evidence_text(item: str, ev: dict[str, Any] | None, currency: str) -> str:
    """The figures behind one charge in the words of the invoice
    (`evidence_text.summary`), or ``(no charge)``."""
    if ev is None:
        return "(no charge)"
    return evidence_text_module.summary({**ev, "item": item}, REPORT_LOCALE, currency)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ",
          right: Sequence[int] = ()) -> list[str]:
    """Rows under a header, each column as wide as its widest cell; `right`: columns of
    figures, aligned to the right."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if i in right else c.ljust(w)
                  for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return (indent + "  ".join(padded)).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _charge_row(change: CustomerChange, ln: LineChange) -> list[str]:
    return [change.invoice_number or "(none)", change.customer_id, str(ln.sdk_app_id),
            evidence_text_module.item_label(ln.item, REPORT_LOCALE),
            evidence_text(ln.item, ln.old, change.currency),
            evidence_text(ln.item, ln.new, change.currency), money(ln.old_amount, change.currency),
            money(ln.new_amount, change.currency)]


def _totals_row(c: CustomerChange) -> list[str]:
    difference = c.new_total - c.old_total
    sign = "+" if difference > 0 else ""
    return [c.invoice_number or "(none)", c.customer_id,
            f"{money(c.old_subtotal, c.currency)} -> {money(c.new_subtotal, c.currency)}",
            f"{money(c.old_tax, c.currency)} -> {money(c.new_tax, c.currency)}",
            f"{money(c.old_total, c.currency)} -> {money(c.new_total, c.currency)}",
            sign + money(difference, c.currency)]


def diff_text(result: MonthDiff) -> str:
    """`invoicing diff`: the changed charges, then the changed totals per invoice."""
    lines = [f"{result.month.label}: {len(result.changes)} customer(s) changed "
             f"(compared with revision {result.revision})"]
    if result.changed_inputs:
        lines.append(f"  changed inputs: {', '.join(result.changed_inputs)}")
    charges = [_charge_row(c, ln) for c in result.changes for ln in c.lines]
    if charges:
        lines += ["", "Changed charges:"]
        lines += table(["invoice", "customer", "app", "charge", "before", "after",
                        "amount before", "amount after"], charges, right=(6, 7))
    documents = [[c.invoice_number or "(none)", c.customer_id, ", ".join(c.documents)]
                 for c in result.changes if c.documents]
    if documents:
        lines += ["", "Changed documents (issued data other than the figures):"]
        lines += table(["invoice", "customer", "changed"], documents)
    if result.changes:
        lines += ["", "Changed totals:"]
        lines += table(["invoice", "customer", "subtotal", "tax", "total", "difference"],
                       [_totals_row(c) for c in result.changes], right=(5,))
    return "\n".join(lines)


def totals_text(totals: dict[str, tuple[Decimal, int]]) -> str:
    """``USD $15,420.39 (5 invoices)`` per currency, in currency order."""
    return " · ".join(
        f"{cur} {money(total, cur)} ({n} invoice{'' if n == 1 else 's'})"
        for cur, (total, n) in sorted(totals.items()))


def preview_text(computed: Computed) -> str:
    """What `invoicing preview` prints: each customer's provisional total, the totals per
    currency and the rejected rows and anomalies."""
    inv = computed.assembled.invoices
    lines = [f"{computed.month.label} preview (nothing published; numbers are provisional)"]
    for cid, number, currency, total in inv.select(
            "customer_id", "invoice_number", "currency", "total").rows():
        lines.append(f"  {cid}  {number or '(zero total)'}  {currency} "
                     f"{in_minor_units(total, currency)}")
    for currency, t in totals_per_currency(inv).items():
        lines.append(f"  total {currency}: {t['total']} ({t['invoices']} invoices)")
    lines.append(f"  usage rows rejected: {computed.usage.counts.rejected}; "
                 f"anomalies: {computed.anomalies.height}")
    if computed.unprintable is not None:
        lines += unprintable_lines(computed.unprintable.to_dicts())
    return "\n".join(lines)


def unprintable_lines(documents: list[dict[str, str]]) -> list[str]:
    """One line per document whose buyer name or address no bundled font can print."""
    return [f"  {d['invoice_number']} ({d['customer_id']}): the name or address holds "
            f"characters no bundled font has, printed as boxes: {d['characters']}"
            for d in documents]


def run_summary(result: RunResult) -> str:
    """What `invoicing run` prints: the published (or unchanged) month, counts, totals."""
    m = result.manifest
    counts = m["counts"]
    if result.status == "unchanged":
        head = (f"{m['month']}: already issued from identical inputs "
                f"(run {m['run_id']}); nothing changed in {result.month_dir}")
    else:
        head = f"{m['month']}: published {result.month_dir} (run {m['run_id']})"
    lines = [
        head,
        f"  customers invoiced: {counts['invoices']} of {counts['customers']} "
        f"({counts['zero_total_customers']} with a zero total, no invoice)",
    ]
    for currency, t in m["totals"].items():
        lines.append(f"  total {currency}: {t['total']} (subtotal {t['subtotal']}, "
                     f"tax {t['tax']}, {t['invoices']} invoices)")
    lines.append(
        f"  usage rows: {counts['usage_rows_in']} read, {counts['usage_rows_billed']} billed, "
        f"{counts['usage_duplicates_collapsed']} duplicates collapsed, "
        f"{counts['usage_conflicts_merged']} conflicts merged, "
        f"{counts['usage_rows_rejected']} rejected (rejected_rows.parquet)"
    )
    lines.append(f"  anomalies: {counts['anomalies']} (anomalies.parquet)")
    lines += unprintable_lines(m.get("unprintable_characters", []))
    if result.reused:
        lines.append(f"  documents reused from an earlier unfinished run: {result.reused} "
                     f"(rendered: {counts['invoices'] - result.reused})")
    gates = m.get("month_gates", {})
    if gates.get("accepted_incomplete"):
        lines.append("  month gates overridden with --allow-incomplete:")
        lines += [f"    {f['gate']}: {f['message']}" for f in gates["findings"]]
    return "\n".join(lines)

