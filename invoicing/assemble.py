"""Stage 4, assemble: line items into invoices (R7 totals and tax, R10 numbers), and the
typed documents the renderer prints.

Every customer in ``customers`` gets one row in ``invoices.parquet``. Customers with a
non-zero total are numbered ``IM-<YYYYMM>-<NNNNNN>`` from 1, without gaps, in
ascending ``customer_id`` order (byte order of the UTF-8 strings), so the same inputs
always give the same numbers; a zero-total customer has no number and no PDF.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import polars as pl

from invoicing.documents import AppSection, InvoiceDocument, Line, Party, PlanPeriod
from invoicing.money import MONEY, RATE, WORK, round_money_expr
from invoicing.pricebook import PriceBookVersion, tax_frame, versions_frame
from invoicing.pricing.lines import LINE_SCHEMA
from invoicing.timeframe import Month

INVOICE_SCHEMA: dict[str, pl.DataType] = {
    "invoice_number": pl.String(),
    "customer_id": pl.String(),
    "currency": pl.String(),
    "subtotal": MONEY,
    "tax_rate": RATE,
    "tax": MONEY,
    "total": MONEY,
    "pricebook_version": pl.String(),
    "line_count": pl.Int64(),
    "pdf_sha256": pl.String(),
}
LINE_ITEM_SCHEMA: dict[str, pl.DataType] = {"invoice_number": pl.String(), **LINE_SCHEMA}


@dataclass(frozen=True)
class Assembled:
    """The month's results as frames.

    Attributes:
      line_items: `LINE_ITEM_SCHEMA`, sorted by customer, app and line order.
      invoices: `INVOICE_SCHEMA` with ``pdf_sha256`` still null (render fills it).
    """

    line_items: pl.DataFrame
    invoices: pl.DataFrame


def invoice_number_expr(month: Month, sequence: pl.Expr) -> pl.Expr:
    return pl.format("IM-{}-{}", pl.lit(month.compact), sequence.cast(pl.String).str.zfill(6))


def assemble(lines: pl.DataFrame, customers: pl.DataFrame, versions: list[PriceBookVersion],
             month: Month) -> Assembled:
    """Sum lines per customer, add tax, number the invoices (all vectorised)."""
    sums = lines.lazy().group_by("customer_id").agg(
        subtotal=pl.col("amount").sum().cast(MONEY), line_count=pl.len().cast(pl.Int64)
    )
    invoices = (
        customers.lazy()
        .select("customer_id", "currency", "country")
        .join(versions_frame(versions).lazy().select("currency", "pricebook_version",
                                                     "minor_units"), on="currency", how="left")
        .join(tax_frame(versions).lazy(), on=["pricebook_version", "country"], how="left")
        .join(sums, on="customer_id", how="left")
        .with_columns(
            subtotal=pl.col("subtotal").fill_null(pl.lit(0, dtype=MONEY)),
            line_count=pl.col("line_count").fill_null(0),
            tax_rate=pl.col("tax_rate").fill_null(pl.lit(0, dtype=RATE)),
        )
        .with_columns(
            tax=round_money_expr(
                pl.col("subtotal").cast(WORK) * pl.col("tax_rate").cast(WORK),
                pl.col("minor_units"),
            )
        )
        .with_columns(total=(pl.col("subtotal") + pl.col("tax")).cast(MONEY))
        .sort("customer_id")
        .with_columns(
            invoice_number=pl.when(pl.col("total") != 0).then(
                invoice_number_expr(month, (pl.col("total") != 0).cum_sum())
            ),
            pdf_sha256=pl.lit(None, dtype=pl.String),
        )
        .select([pl.col(n).cast(t) for n, t in INVOICE_SCHEMA.items()])
        .collect()
    )
    # Lines and invoices are both in customer order: each invoice number repeated over
    # its customer's lines is the lines' column, without a join on the string ids.
    numbers = invoices.select(
        pl.col("customer_id", "invoice_number").repeat_by("line_count")
        .explode(empty_as_null=False))
    if numbers.height == lines.height and numbers["customer_id"].equals(lines["customer_id"]):
        line_items = lines.with_columns(numbers["invoice_number"])
    else:  # pragma: no cover - lines not in customer order (price_month sorts them)
        line_items = lines.join(invoices.select("customer_id", "invoice_number"),
                                on="customer_id", how="left")
    line_items = line_items.select(list(LINE_ITEM_SCHEMA))
    return Assembled(line_items=line_items, invoices=invoices)


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
    links: Mapping[str, Mapping[str, str]] | None = None,
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
    line_fields = [f for f in Line.__dataclass_fields__]
    periods = _periods_by_app(plan_periods, lines_by_invoice)
    for inv in numbered.to_dicts():
        rows = lines_by_invoice[(inv["invoice_number"],)]
        sections = []
        for (app_id, app_name), app_rows in rows.group_by(
            ["sdk_app_id", "app_name"], maintain_order=True
        ):
            app_lines = tuple(
                Line(**{k: r[k] for k in line_fields}) for r in app_rows.to_dicts()
            )
            sections.append(AppSection(
                sdk_app_id=int(app_id),
                app_name=str(app_name),
                lines=app_lines,
                subtotal=sum((ln.amount for ln in app_lines), start=Decimal(0)),
                plan_periods=periods.get(int(app_id), ()),
            ))
        version = by_version[inv["pricebook_version"]]
        yield InvoiceDocument(
            invoice_number=inv["invoice_number"],
            customer=Party(
                customer_id=inv["customer_id"], name=inv["name"], email=inv["email"],
                address=inv["address"], country=inv["country"], tax_id=inv["tax_id"],
            ),
            locale=inv["locale"],
            currency=inv["currency"],
            issue_date=issued,
            due_date=due,
            period_start=month.start,
            period_end=month.end,
            apps=tuple(sorted(sections, key=lambda s: s.sdk_app_id)),
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
