"""Month gates: refuse to issue a month whose usage does not look like that month.

An issued invoice can only be undone with a credit note, and a late, partial or
misplaced export looks, to the pricing rules, exactly like a quiet month: plan fees
only, no overage. So before any invoice number is spent, `run`, `reissue` and
`preview` check that the usage covers the month. Each gate gives one finding (one
line) when it fails; the command stops with exit 8 and writes nothing, unless the
operator passes ``--allow-incomplete``, which the manifest records with the findings
it overrode.

The gates and their thresholds (documented in the README):

* ``rows_outside_month``: more than `MAX_OUTSIDE_SHARE` of the usage rows read are
  dated outside the month (the export is of another month, or ``--month`` is wrong);
* ``days_without_usage``: a day of the month has no billable usage row at all (a
  missing daily export; a provider's apps are never all idle on one day);
* ``paid_apps_without_usage``: more than `MAX_IDLE_PAID_SHARE` of the apps on Pro or
  Flagship on some day of the month have no billable usage in it (a missing region
  or shard of the export).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import polars as pl

from invoicing.core.catalogue import PAID_PLANS
from invoicing.core.errors import MonthIncompleteError
from invoicing.core.timeframe import Month
from invoicing.validate.usage import ValidUsage

#: Share of usage rows dated outside the month above which the month is refused.
MAX_OUTSIDE_SHARE = Decimal("0.05")
#: Share of paid apps without any usage above which the month is refused.
MAX_IDLE_PAID_SHARE = Decimal("0.10")
#: How many days or apps a finding names before it counts the rest.
SHOWN = 10


@dataclass(frozen=True)
class Finding:
    """One failed gate.

    Attributes:
      gate: the gate's name (``rows_outside_month``, ``days_without_usage``,
        ``paid_apps_without_usage``).
      message: one line for the operator, with the figures behind it.
    """

    gate: str
    message: str


def _listed(values: list[str]) -> str:
    more = len(values) - SHOWN
    return ", ".join(values[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def _share(part: int, whole: int) -> str:
    return f"{Decimal(100 * part) / Decimal(whole):.1f}%"


def rows_outside_month(usage: ValidUsage, month: Month) -> Finding | None:
    outside = usage.rejected.filter(
        pl.col("reason") == f"date outside {month.label}")
    rows_in = usage.counts.rows_in
    if not rows_in or Decimal(outside.height) <= MAX_OUTSIDE_SHARE * rows_in:
        return None
    first, last = str(outside["date"].min()), str(outside["date"].max())
    return Finding("rows_outside_month", (
        f"{outside.height} of {rows_in} usage rows ({_share(outside.height, rows_in)}, "
        f"more than {MAX_OUTSIDE_SHARE:.0%}) are dated outside {month.label}, from {first} to "
        f"{last}: is this the export of another month?"))


def days_without_usage(usage: ValidUsage, month: Month) -> Finding | None:
    present = set(usage.usage["date"].unique().to_list())
    missing = [month.start + timedelta(days=i) for i in range(month.days)]
    missing = [d for d in missing if d not in present]
    if not missing:
        return None
    return Finding("days_without_usage", (
        f"no usage at all on {len(missing)} of {month.days} days of {month.label}: "
        f"{_listed([d.isoformat() for d in missing])}"))


def paid_apps_without_usage(usage: ValidUsage, plan_segments: pl.DataFrame) -> Finding | None:
    """`plan_segments`: the month's plan segments (sdk_app_id, value = plan)."""
    paid = plan_segments.filter(pl.col("value").is_in(list(PAID_PLANS)))["sdk_app_id"].unique()
    idle = paid.filter(~paid.is_in(usage.usage["sdk_app_id"].unique().implode())).sort()
    if not paid.len() or Decimal(idle.len()) <= MAX_IDLE_PAID_SHARE * paid.len():
        return None
    return Finding("paid_apps_without_usage", (
        f"{idle.len()} of {paid.len()} apps on Pro or Flagship ({_share(idle.len(), paid.len())}, "
        f"more than {MAX_IDLE_PAID_SHARE:.0%}) have no usage in the month: "
        f"{_listed([str(a) for a in idle.to_list()])}"))


def check_month(usage: ValidUsage, plan_segments: pl.DataFrame, month: Month) -> list[Finding]:
    """Every failed gate of the month, in a fixed order."""
    found = [
        rows_outside_month(usage, month),
        days_without_usage(usage, month),
        paid_apps_without_usage(usage, plan_segments),
    ]
    return [f for f in found if f is not None]


def enforce(findings: list[Finding], month: Month, allow_incomplete: bool) -> None:
    """Stop (exit 8) on any finding unless the operator accepted an incomplete month."""
    if findings and not allow_incomplete:
        lines = [f"{month.label}: the usage does not look like the whole month; nothing was "
                 "written and no invoice number was used:"]
        lines += [f"  {f.gate}: {f.message}" for f in findings]
        lines.append("  Fix the export, or rerun with --allow-incomplete if the month really "
                     "is incomplete (the manifest records it).")
        raise MonthIncompleteError("\n".join(lines))


def manifest_entry(findings: list[Finding], allow_incomplete: bool) -> dict[str, object]:
    """What the manifest records: whether the month passed every gate, and otherwise that
    ``--allow-incomplete`` accepted it, with the findings it overrode. (The flag alone,
    on a month that passes, changes nothing: the same inputs give the same manifest.)"""
    return {
        "passed": not findings,
        "accepted_incomplete": bool(findings) and allow_incomplete,
        "findings": [{"gate": f.gate, "message": f.message} for f in findings],
    }
