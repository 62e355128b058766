"""The machine-readable copy of an invoice's lines that travels inside its PDF.

Each PDF (PDF/A-3b) embeds ``line_items.csv``: that document's rows with exactly the
columns of ``line_items.parquet``, so an auditor can extract the numbers instead of
retyping them, and `verify` can compare them with a recomputation.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import polars as pl

from invoicing.assemble.totals import LINE_ITEM_SCHEMA
from invoicing.core.documents import InvoiceDocument

ATTACHMENT_NAME = "line_items.csv"


def line_item_frame(doc: InvoiceDocument) -> pl.DataFrame:
    """The document's lines as a frame in `LINE_ITEM_SCHEMA` (one row per line)."""
    rows = [
        {
            **{name: getattr(line, name) for name in line.__dataclass_fields__},
            "invoice_number": doc.invoice_number,
            "customer_id": doc.customer.customer_id,
            "sdk_app_id": app.sdk_app_id,
            "currency": doc.currency,
            "pricebook_version": doc.pricebook_version,
        }
        for app in doc.apps
        for line in app.lines
    ]
    return pl.DataFrame(rows, schema=LINE_ITEM_SCHEMA)


def attachment_csv(doc: InvoiceDocument) -> bytes:
    buffer = io.BytesIO()
    line_item_frame(doc).write_csv(buffer)
    return buffer.getvalue()


def embedded_files(pdf: Path | IO[bytes]) -> dict[str, bytes]:
    """Every file a PDF embeds, by name (the first of a name), from one parse of the PDF:
    reading the catalogue costs most of the time, so a caller wanting both the line
    items and the e-invoice XML asks once."""
    from pypdf import PdfReader

    return {name: found[0] for name, found in PdfReader(pdf).attachments.items() if found}


def line_items_in(files: dict[str, bytes]) -> pl.DataFrame:
    """The line items among a PDF's `embedded_files`; ValueError when there are none."""
    if ATTACHMENT_NAME not in files:
        raise ValueError(f"no embedded {ATTACHMENT_NAME}")
    return pl.read_csv(io.BytesIO(files[ATTACHMENT_NAME]), schema=LINE_ITEM_SCHEMA)


def read_attachment(pdf: Path | IO[bytes]) -> pl.DataFrame:
    """The embedded line items of a PDF; raises ValueError when there are none."""
    return line_items_in(embedded_files(pdf))
