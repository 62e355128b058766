"""The documents a published month issued, in delivery order, and who each goes to.

Order: the invoices of the first run (revision 0) by number; then, for each revision
under ``revisions/``, its credit notes by number and then its replacement (or first)
invoices by number. A customer therefore gets the credit note cancelling an invoice
before the invoice that replaces it, and a later revision after an earlier one.

Only what a committed manifest lists is delivered, and every attached file is checked
against the SHA-256 its manifest records before it leaves (`read_checked`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from invoicing.core.errors import VerifyMismatchError
from invoicing.core.money import in_minor_units
from invoicing.load.inputs import load_inputs
from invoicing.pricing.models import MODELS
from invoicing.publish.issued import IssuedMonth, Revision
from invoicing.storage import MANIFEST, readable, sha256_bytes

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
#: Folder of each kind of document inside a revision.
FOLDERS = {INVOICE: "invoices", CREDIT_NOTE: "credit_notes"}


@dataclass(frozen=True)
class Attachment:
    """A published file sent with a document.

    Attributes:
      name: its file name in the e-mail (``IM-202610-000001.pdf``).
      path: where it is published.
      sha256: the SHA-256 its revision's manifest records.
    """

    name: str
    path: Path
    sha256: str


@dataclass(frozen=True)
class IssuedDocument:
    """One invoice or credit note of a published month.

    Attributes:
      number: ``IM-…`` or ``CN-…``.
      kind: ``invoice`` or ``credit_note``.
      revision: 0 for the first run, n for the n-th reissue.
      customer_id: the buyer.
      currency: ISO 4217 code of the total.
      total: the document's total in minor units (negative for a credit note, as printed).
      issue_date: the date printed on the document.
      due_date: invoices only: when the amount is collected; None for a credit note.
      period_start, period_end: the billing month.
      credits_invoice: credit notes only: the invoice it cancels.
      replaces_invoice: replacement invoices only: the invoice it replaces.
      attachments: the PDF first, then any e-invoice file published beside it
        (``invoices/<number>.xml``), in name order.
    """

    number: str
    kind: str
    revision: int
    customer_id: str
    currency: str
    total: Decimal
    issue_date: date
    due_date: date | None
    period_start: date
    period_end: date
    credits_invoice: str | None
    replaces_invoice: str | None
    attachments: tuple[Attachment, ...]

    @property
    def pdf_sha256(self) -> str:
        return self.attachments[0].sha256


@dataclass(frozen=True)
class Buyer:
    """Who a document is sent to, and in which language.

    Attributes:
      customer_id: the customer.
      name: its name (customer-controlled: escaped in the HTML part, a quoted display
        name in the ``To:`` header).
      email: its ``email`` as given, which may not be an address at all.
      locale: the customer's locale, which chooses the e-mail's language and formats.
    """

    customer_id: str
    name: str
    email: str
    locale: str


def month_documents(issued: IssuedMonth, revisions: int | None = None
                    ) -> list[IssuedDocument]:
    """Every document of the first `revisions` revisions (all by default), in delivery
    order (see the module's docstring)."""
    docs: list[IssuedDocument] = []
    for rev in issued.revisions()[:revisions]:
        month = issued.month
        if rev.number == 0:
            issue, due = month.issue_date, month.due_date
        else:
            issue = date.fromisoformat(rev.manifest["revision"]["issue_date"])
            due = issue + (month.due_date - month.issue_date)
        common: dict[str, Any] = dict(revision=rev.number, issue_date=issue,
                                      period_start=month.start, period_end=month.end)
        notes = rev.files / "credit_notes.parquet"
        if rev.number and _listed(rev, "credit_notes.parquet"):
            for row in pl.read_parquet(readable(notes)).sort("credit_note_number").to_dicts():
                docs.append(IssuedDocument(
                    number=row["credit_note_number"], kind=CREDIT_NOTE,
                    customer_id=row["customer_id"], currency=row["currency"],
                    total=in_minor_units(row["total"], row["currency"]), due_date=None,
                    credits_invoice=row["credits_invoice"], replaces_invoice=None,
                    attachments=_attachments(rev, CREDIT_NOTE, row["credit_note_number"]),
                    **common))
        invoices = pl.read_parquet(readable(rev.files / "invoices.parquet"))
        mine = invoices.filter(pl.col("invoice_number").is_not_null())
        if "issued_in_revision" in invoices.columns:
            mine = mine.filter(pl.col("issued_in_revision") == rev.number)
        for row in mine.sort("invoice_number").to_dicts():
            docs.append(IssuedDocument(
                number=row["invoice_number"], kind=INVOICE, customer_id=row["customer_id"],
                currency=row["currency"], total=in_minor_units(row["total"], row["currency"]),
                due_date=due, credits_invoice=None, replaces_invoice=row.get("replaces"),
                attachments=_attachments(rev, INVOICE, row["invoice_number"]),
                **common))
    return docs


def _listed(rev: Revision, relative: str) -> bool:
    return relative in rev.manifest.get("outputs", {})


def _attachments(rev: Revision, kind: str, number: str) -> tuple[Attachment, ...]:
    """The document's PDF and the files its manifest lists beside it under the same name
    (an e-invoice such as ``invoices/<number>.xml``)."""
    folder = FOLDERS[kind]
    outputs: Mapping[str, str] = rev.manifest.get("outputs", {})
    pdf = f"{folder}/{number}.pdf"
    if pdf not in outputs:
        raise VerifyMismatchError(f"{rev.files / pdf}: not listed in {rev.path / MANIFEST}")
    beside = sorted(name for name in outputs
                    if name.startswith(f"{folder}/{number}.") and name != pdf)
    return tuple(Attachment(name.split("/")[-1], rev.files / name, outputs[name])
                 for name in (pdf, *beside))


def read_checked(attachment: Attachment) -> bytes:
    """The attachment's bytes, refused (exit 7) if they differ from its manifest's hash:
    what leaves is exactly what was published and verified."""
    data = attachment.path.read_bytes()
    if sha256_bytes(data) != attachment.sha256:
        raise VerifyMismatchError(f"{attachment.path}: SHA-256 differs from its manifest; "
                                  "nothing more is sent (run 'invoicing verify')")
    return data


def load_buyers(input_dir: Path, pricebook: Path | None = None) -> dict[str, Buyer]:
    """The customers of the month's inputs, by id."""
    customers = load_inputs(input_dir, pricebook, models=MODELS).customers
    return {r["customer_id"]: Buyer(r["customer_id"], r["name"], r["email"], r["locale"])
            for r in customers.select("customer_id", "name", "email", "locale").to_dicts()}


def buyer_of(document: IssuedDocument, buyers: Mapping[str, Buyer]) -> Buyer | None:
    """The buyer a document goes to: the only place that decides it.

    Today the customers table of ``--input`` (the same inputs `verify` checked against
    the manifest). Once each issued document keeps the buyer data it was issued with,
    this is where the document's own record is read instead.
    """
    return buyers.get(document.customer_id)
