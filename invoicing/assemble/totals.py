"""Stage 5, assemble: line items into invoices (R7 totals and tax, R10 numbers).

The typed documents the renderer prints are built from these frames by
`document_builder.build_documents`.

Every customer in ``customers`` gets one row in ``invoices.parquet``. Customers with a
non-zero total are numbered ``IM-<YYYYMM>-<NNNNNN>`` from 1, without gaps, in
ascending ``customer_id`` order (byte order of the UTF-8 strings), so the same inputs
always give the same numbers; a zero-total customer has no number and no PDF.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from invoicing.core.money import MONEY, RATE, WORK, round_money_expr
from invoicing.core.timeframe import Month
from invoicing.load.pricebook import PriceBookVersion, tax_frame, versions_frame
from invoicing.pricing.lines import LINE_SCHEMA

#: The buyer data each issued document keeps (invoices.parquet column -> customers column),
#: so that a credit note reverses the document with the buyer it was issued to, whatever
#: the customers table says later (SPEC §8).
BUYER_COLUMNS: dict[str, str] = {
    "buyer_name": "name",
    "buyer_email": "email",
    "buyer_address": "address",
    "buyer_country": "country",
    "buyer_tax_id": "tax_id",
    "buyer_locale": "locale",
    "buyer_postcode": "postcode",
    "buyer_city": "city",
    "buyer_order_reference": "buyer_reference",
    "buyer_peppol_scheme": "peppol_scheme",
    "buyer_peppol_id": "peppol_id",
    "buyer_mandate_reference": "mandate_reference",
}


def as_issued_to() -> list[pl.Expr]:
    """The buyer data an issued document keeps, under the customers table's column names,
    and its e-invoice format (``none`` for a plain PDF): what `reissue` prints on a credit
    note and `verify` checks a document against."""
    return [*[pl.col(b).alias(c) for b, c in BUYER_COLUMNS.items()],
            pl.col("einvoice_format").fill_null("none")]
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
    **{column: pl.String() for column in BUYER_COLUMNS},
    #: The e-invoice format the document carries (``facturx``, ``peppol``), null for none.
    "einvoice_format": pl.String(),
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
        .select("customer_id", "currency", "country",
                *[(pl.col(c) if c in customers.columns else pl.lit(None, dtype=pl.String))
                  .alias(b) for b, c in BUYER_COLUMNS.items()])
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
            einvoice_format=pl.lit(None, dtype=pl.String),  # decided by the caller
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
