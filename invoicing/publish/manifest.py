"""The manifest of a published month: every input with its hash, the price-book versions
used, the software and renderer, the month gates, row counts in and out, totals per
currency and the SHA-256 of every file written (README "Outputs").

Written last by `publish` (on object storage its conditional create is the commit), and
read back by the retry check, `diff`, `reissue` and `verify`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from invoicing import __version__
from invoicing.assemble.computed import Computed
from invoicing.core.timing import StageTimer
from invoicing.render.environment import renderer_environment, software_digest
from invoicing.validate.gates import manifest_entry as gates_entry


def totals_per_currency(invoices: pl.DataFrame) -> dict[str, dict[str, str | int]]:
    """Sum of subtotal, tax and total per currency over numbered invoices (as strings)."""
    sums = (
        invoices.filter(pl.col("invoice_number").is_not_null())
        .group_by("currency")
        .agg(pl.len().alias("invoices"), pl.col("subtotal", "tax", "total").sum())
        .sort("currency")
    )
    return {
        r["currency"]: {
            "invoices": r["invoices"],
            **{k: plain_decimal(r[k]) for k in ("subtotal", "tax", "total")},
        }
        for r in sums.to_dicts()
    }


def plain_decimal(value: Decimal) -> str:
    """A decimal as text without trailing zeros beyond what it needs (``'1234.50'``)."""
    text = format(value.normalize(), "f")
    if "." in text:
        whole, frac = text.split(".")
        return f"{whole}.{frac.ljust(2, '0')}"
    return text


def manifest_for(computed: Computed, written: dict[str, str], timer: StageTimer,
                 allow_incomplete: bool = False) -> dict[str, Any]:
    """The manifest of `computed`, listing `written` (relative path -> SHA-256)."""
    inv = computed.assembled.invoices
    counts = computed.usage.counts
    used = computed.assembled.invoices.group_by("pricebook_version").len()
    unprintable = ([] if computed.unprintable is None
                   else computed.unprintable.sort("invoice_number").to_dicts())
    customers_per_version = dict(zip(used["pricebook_version"], used["len"], strict=True))
    return {
        "month": computed.month.label,
        "run_id": computed.run_id,
        "software": {"name": "invoicing", "version": __version__,
                     "sha256": software_digest()},
        # What the PDF bytes depend on; a cluster run checked its workers match it.
        "renderer": renderer_environment(),
        "inputs_digest": computed.inputs_digest,
        # The seller file is one of the inputs; named here so a later diff finds it.
        "seller": {"path": computed.inputs.table_paths["seller_input"],
                   "sha256": computed.inputs.seller.sha256},
        "ignored_inputs": list(computed.inputs.ignored),
        "inputs": [
            {"path": f.path, "sha256": f.sha256, "rows": f.rows} for f in computed.inputs.files
        ],
        "pricebook_versions": [
            {
                "version": v.version_id,
                "currency": v.currency,
                "effective_from": v.effective_from.isoformat(),
                "plan_fee_policy": v.plan_fee_policy,
                "customers": int(customers_per_version.get(v.version_id, 0)),
            }
            for v in computed.versions
        ],
        "options": {"on_conflict": computed.on_conflict},
        "month_gates": gates_entry(list(computed.gate_findings), allow_incomplete),
        "counts": {
            "usage_rows_in": counts.rows_in,
            "usage_rows_billed": counts.billed,
            "usage_duplicates_collapsed": counts.duplicates,
            "usage_conflicts_merged": counts.conflicts_merged,
            "usage_rows_rejected": counts.rejected,
            "customers": inv.height,
            "invoices": int(inv["invoice_number"].is_not_null().sum()),
            "zero_total_customers": int(inv["invoice_number"].is_null().sum()),
            "line_items": computed.assembled.line_items.height,
            "anomalies": computed.anomalies.height,
            "documents_with_unprintable_characters": len(unprintable),
        },
        # Buyer names or addresses holding characters no bundled font has (printed as boxes).
        "unprintable_characters": unprintable,
        "totals": totals_per_currency(inv),
        "outputs": dict(sorted(written.items())),
    }


def retention_entry(retain_until: datetime) -> dict[str, str]:
    """The manifest's ``retention`` block: every object the manifest lists (and the
    manifest itself) is under S3 Object Lock in this mode until this time; `verify`
    fails on one that is not."""
    return {"mode": "COMPLIANCE", "retain_until": retain_until.isoformat(timespec="seconds")}


def retention_end(days: int | None) -> datetime | None:
    """``--retain-days``: the end of the retention, N days from now (UTC, whole seconds)."""
    if days is None:
        return None
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)
