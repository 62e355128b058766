"""The typed documents the renderer prints, built from the assembled frames.

This is the hand-over from the frames of `assemble` to rendering: one `InvoiceDocument`
per numbered invoice (or credit note), with each app's lines, evidence and plan story.
It loops over invoices, never over usage rows, and yields one document at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from invoicing.assemble.totals import Assembled
from invoicing.core.documents import AppSection, InvoiceDocument, Line, Party, PlanPeriod
from invoicing.core.timeframe import Month
from invoicing.load.pricebook import PriceBookVersion

#: The `Party` fields, all read from `customers` (the optional ones may be absent: None).
PARTY_FIELDS = tuple(Party.__dataclass_fields__)


def build_documents(
    assembled: Assembled,
    customers: pl.DataFrame,
    apps: pl.DataFrame,
    versions: list[PriceBookVersion],
    month: Month,
    *,
    run_id: str,
    inputs_digest: str,
    software_version: str,
    seller: tuple[str, ...],
    kind: str = "invoice",
    issue_date: date | None = None,
    revision: int = 0,
    links: Mapping[str, Mapping[str, Any]] | None = None,
    plan_periods: pl.DataFrame | None = None,
) -> Iterator[InvoiceDocument]:
    """One typed document per numbered invoice, in invoice-number order.

    This is the hand-over to rendering; it loops over invoices (not usage rows), and
    yields one document at a time so memory stays flat however many customers there are.
    A reissue passes ``kind="credit_note"`` (numbers in ``invoice_number`` are then
    credit-note numbers), its own `issue_date`, and `links`: number -> fields
    ``credits_invoice`` / ``replaces_invoice`` of the document. `plan_periods`
    (`plan_periods_frame`) gives each app section its plan story.
    """
    issued = issue_date or month.issue_date
    due = month.due_date if issue_date is None else issue_date + (month.due_date
                                                                  - month.issue_date)
    by_version = {v.version_id: v for v in versions}
    numbered = assembled.invoices.filter(pl.col("invoice_number").is_not_null()).join(
        customers, on=["customer_id", "currency"], how="left"
    ).sort("invoice_number")
    lines_by_invoice = assembled.line_items.filter(
        pl.col("invoice_number").is_not_null()
    ).join(apps.select("sdk_app_id", "app_name"), on="sdk_app_id", how="left").partition_by(
        "invoice_number", as_dict=True, maintain_order=True
    )
    periods = _periods_by_app(plan_periods, lines_by_invoice)
    for inv in numbered.to_dicts():
        sections = _app_sections(lines_by_invoice[(inv["invoice_number"],)], periods)
        version = by_version[inv["pricebook_version"]]
        yield InvoiceDocument(
            invoice_number=inv["invoice_number"],
            customer=Party(**{k: inv.get(k) for k in PARTY_FIELDS}),  # type: ignore[arg-type]
            locale=inv["locale"],
            currency=inv["currency"],
            issue_date=issued,
            due_date=due,
            period_start=month.start,
            period_end=month.end,
            apps=sections,
            subtotal=inv["subtotal"],
            tax_rate=inv["tax_rate"],
            tax=inv["tax"],
            total=inv["total"],
            pricebook_version=version.version_id,
            pricebook_effective_from=version.effective_from,
            run_id=run_id,
            inputs_digest=inputs_digest,
            software_version=software_version,
            seller=seller,
            kind=kind,
            revision=revision,
            plan_fee_policy=version.plan_fee_policy,
            **(links or {}).get(inv["invoice_number"], {}),
        )


def _periods_by_app(plan_periods: pl.DataFrame | None,
                    lines_by_invoice: Mapping[tuple[object, ...], pl.DataFrame]
                    ) -> dict[int, tuple[PlanPeriod, ...]]:
    """The plan story of every app that has lines on a document."""
    if plan_periods is None or not lines_by_invoice:
        return {}
    app_ids = pl.concat([f.select("sdk_app_id") for f in lines_by_invoice.values()])
    wanted = plan_periods.join(app_ids.unique(), on="sdk_app_id", how="semi")
    story: dict[int, list[PlanPeriod]] = {}
    for row in wanted.sort("sdk_app_id", "start").iter_rows(named=True):
        story.setdefault(row["sdk_app_id"], []).append(
            PlanPeriod(plan=row["plan"], start=row["start"], end=row["end"]))
    return {app: tuple(p) for app, p in story.items()}


def _app_sections(rows: pl.DataFrame, periods: Mapping[int, tuple[PlanPeriod, ...]]
                  ) -> tuple[AppSection, ...]:
    """One section per app of an invoice's lines, in ``sdk_app_id`` order."""
    line_fields = list(Line.__dataclass_fields__)
    sections = []
    for (app_id, app_name), app_rows in rows.group_by(["sdk_app_id", "app_name"],
                                                      maintain_order=True):
        app_lines = tuple(Line(**{k: r[k] for k in line_fields}) for r in app_rows.to_dicts())
        sections.append(AppSection(
            sdk_app_id=int(app_id),
            app_name=str(app_name),
            lines=app_lines,
            subtotal=sum((ln.amount for ln in app_lines), start=Decimal(0)),
            plan_periods=periods.get(int(app_id), ()),
        ))
    return tuple(sorted(sections, key=lambda s: s.sdk_app_id))
