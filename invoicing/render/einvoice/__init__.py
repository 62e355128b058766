"""E-invoices (EN 16931) for customers in EU member states: the formats behind one interface.

A format (`EInvoiceFormat`) says which documents it covers, checks what the inputs must
hold for it, builds the XML of one `InvoiceDocument`, says where the XML goes (embedded in
the PDF/A-3 under `EInvoiceFormat.embedded_name`, or beside it as
`EInvoiceFormat.file_name`) and reads it back for `verify`. Two formats exist:

* ``facturx`` (`facturx.FACTURX`): Factur-X EN 16931, CII embedded in the PDF; the
  default for customers in the EU;
* ``peppol`` (`peppol.PEPPOL`): Peppol BIS Billing 3.0, UBL written beside the PDF.

The optional ``einvoice_format`` column of `customers` chooses one per customer (``none``,
``facturx``, ``peppol``; empty = the default of its country, `format_name`). A third
syntax is one more module with a class like these, added to `FORMATS`.

`check_month` refuses (exit 3, before any invoice number is spent) a customer whose
e-invoice the inputs cannot describe, so no invalid XML is ever written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Protocol

import polars as pl

from invoicing.core.documents import InvoiceDocument, Party
from invoicing.core.errors import InputError, Source
from invoicing.render.einvoice.common import (
    EU_MEMBER_STATES,
    SELLER_FILE,
    EInvoiceSeller,
    Payment,
    VatCategory,
    XmlFigures,
    is_eu,
    load_seller,
    page_vat,
    payment_for,
    seller_from,
    vat_category,
)
from invoicing.render.einvoice.facturx import (
    FACTURX,
    NS,
    XML_NAME,
    XMP_EXTENSION,
    cii_xml,
    read_embedded_xml,
    read_figures,
)
from invoicing.render.einvoice.peppol import PEPPOL

__all__ = [
    "EU_MEMBER_STATES", "FACTURX", "FORMATS", "NS", "PEPPOL", "SELLER_FILE",
    "XML_NAME", "XMP_EXTENSION", "EInvoiceFormat", "EInvoiceSeller", "Payment", "VatCategory",
    "XmlFigures", "beside_files", "buyers", "check_month", "cii_xml", "format_name", "format_of",
    "is_eu", "issued_formats", "load_seller", "page_vat", "payment_for", "read_embedded_xml",
    "read_figures", "seller_from", "vat_category", "with_beside_files",
]


class EInvoiceFormat(Protocol):
    """One e-invoice syntax.

    Attributes:
      name: its value in the ``einvoice_format`` column (``facturx``, ``peppol``).
      title: what the README and messages call it.
      kinds: the documents it covers (``invoice``, ``credit_note``).
      embedded_name: the XML's name inside the PDF/A-3, or None when it goes beside it.
      xmp_extension: XMP the PDF must declare for it (embedded formats), or None.
    """

    name: str
    title: str
    kinds: frozenset[str]
    embedded_name: str | None
    xmp_extension: bytes | None

    def check(self, buyer: Party, seller: EInvoiceSeller, label: str, row: int) -> None:
        """Raise `InputError` (naming the column of ``label`` at ``row``, or the seller
        file) when this format cannot describe the buyer's documents."""

    def file_name(self, kind: str, number: str) -> str:
        """The name inside the PDF, or the path beside it relative to the folder of the
        document's revision (``invoices/<number>.xml``)."""

    def build(self, doc: InvoiceDocument, seller: EInvoiceSeller) -> bytes:
        """The XML of one document (no clock: the same document gives the same bytes)."""

    def read(self, pdf: Path, files: Path, kind: str, number: str) -> bytes | None:
        """The XML of a published document (``pdf`` in the folder ``files``), or None."""

    def figures(self, xml: bytes) -> XmlFigures:
        """The figures `verify` compares; ValueError if ``xml`` is not of this format."""


#: Every format by its ``einvoice_format`` name.
FORMATS: dict[str, EInvoiceFormat] = {f.name: f for f in (FACTURX, PEPPOL)}


def format_name(buyer: Party) -> str:
    """The customer's choice, or the default: Factur-X in the EU, none elsewhere."""
    if buyer.einvoice_format:
        return buyer.einvoice_format
    return FACTURX.name if is_eu(buyer.country) else "none"


def format_of(buyer: Party, kind: str = "invoice") -> EInvoiceFormat | None:
    """The format of the buyer's documents of this kind, or None (a plain PDF)."""
    found = FORMATS.get(format_name(buyer))
    return found if found is not None and kind in found.kinds else None


def beside_files(doc: InvoiceDocument, seller: EInvoiceSeller | None = None
                 ) -> list[tuple[str, bytes]]:
    """The XML files a document's format writes beside its PDF: (relative path, bytes).

    ``seller`` defaults to `SELLER_FILE`, read only when a file is written.
    """
    fmt = format_of(doc.customer, doc.kind)
    if fmt is None or fmt.embedded_name is not None:
        return []
    return [(fmt.file_name(doc.kind, doc.invoice_number),
             fmt.build(doc, seller or _seller(SELLER_FILE)))]


def with_beside_files(docs: Iterable[InvoiceDocument], write: Callable[[str, bytes], object],
                      seller: EInvoiceSeller | None = None) -> Iterator[InvoiceDocument]:
    """Pass the documents on (to the renderer), writing each one's beside-the-PDF XML first
    with ``write(relative path, bytes)`` (a staging area's ``write_bytes``); ``seller`` is
    the run's seller (default `SELLER_FILE`)."""
    for doc in docs:
        for name, data in beside_files(doc, seller):
            write(name, data)
        yield doc


@cache
def _seller(path: Path) -> EInvoiceSeller:
    return load_seller(path)


def _party(row: dict[str, object]) -> Party:
    fields = Party.__dataclass_fields__
    return Party(**{k: row.get(k) for k in fields})  # type: ignore[arg-type]


def issued_formats(customers: pl.DataFrame) -> pl.DataFrame:
    """(customer_id, einvoice_format): the format name each customer's documents carry
    (`format_name`), null for a plain PDF; kept with every issued document."""
    names = [format_name(_party(row)) for row in customers.iter_rows(named=True)]
    return pl.DataFrame({"customer_id": customers["customer_id"],
                         "einvoice_format": [n if n in FORMATS else None for n in names]},
                        schema={"customer_id": pl.String, "einvoice_format": pl.String})


def buyers(customers: pl.DataFrame, key: str = "customer_id") -> dict[str, Party]:
    """Every row of a customers-shaped table as a `Party`, by `key` (for `verify`: the
    customers by id, or the buyers documents were issued to by invoice number)."""
    return {str(row[key]): _party(row) for row in customers.iter_rows(named=True)}


def check_month(customers: pl.DataFrame, invoices: pl.DataFrame, label: str = "customers",
                seller: EInvoiceSeller | None = None) -> None:
    """Refuse (before anything is written) a customer its e-invoice cannot describe.

    ``invoices`` in `INVOICE_SCHEMA`; ``label`` names the customers file in errors. Every
    ``einvoice_format`` value is checked; the rest only for numbered invoices of customers
    that get an e-invoice, so a month without them never reads the seller file.
    """
    rows = customers.with_row_index("_row", offset=1)
    choices = ("none", *FORMATS)
    if "einvoice_format" in customers.columns:
        for row in rows.filter(pl.col("einvoice_format").is_not_null()).iter_rows(named=True):
            where = Source(label, "einvoice_format", row["_row"])
            if row["einvoice_format"] not in choices:
                raise InputError(where, f"unknown e-invoice format {row['einvoice_format']!r} "
                                        f"(customer {row['customer_id']}); one of: "
                                        f"{', '.join(choices)}")
            if row["einvoice_format"] != "none" and not is_eu(row["country"]):
                raise InputError(where, f"customer {row['customer_id']} ({row['country']}) is "
                                        "outside the EU: its VAT is not described by EN 16931 "
                                        "e-invoices; leave the column empty or write none")
    numbered = invoices.filter(pl.col("invoice_number").is_not_null()).select(
        "customer_id", "tax_rate").join(rows, on="customer_id").sort("customer_id")
    for row in numbered.iter_rows(named=True):
        buyer = _party(row)
        fmt = format_of(buyer)
        if fmt is None:
            continue
        seller = seller or load_seller(SELLER_FILE)
        vat_category(buyer.customer_id, buyer.country, buyer.tax_id, row["tax_rate"], seller,
                     Source(label, "tax_id", row["_row"]))
        if seller.payment is None:
            raise InputError(Source(seller.source),
                             f"key 'payment' missing: customer {buyer.customer_id} "
                             f"({buyer.country}) gets an EN 16931 e-invoice, which needs the "
                             "payment instructions (BG-16)")
        fmt.check(buyer, seller, label, row["_row"])
