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


def read_attachment(pdf: Path | IO[bytes]) -> pl.DataFrame:
    """The embedded line items of a PDF; raises ValueError when there are none."""
    from pypdf import PdfReader

    attachments = PdfReader(pdf).attachments
    if ATTACHMENT_NAME not in attachments:
        raise ValueError(f"no embedded {ATTACHMENT_NAME}")
    data = attachments[ATTACHMENT_NAME][0]
    return pl.read_csv(io.BytesIO(data), schema=LINE_ITEM_SCHEMA)
