"""What `verify` found: counts of what it checked, and one line per mismatch."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from invoicing.audit.reports import totals_text
from invoicing.publish.heads import Head


@dataclass
class VerifyReport:
    """Counts of what was checked, and one line per mismatch.

    Attributes:
      files: published files checked against their manifest's SHA-256.
      invoices: invoice PDFs issued over all revisions (replaced ones included).
      credit_notes: credit-note PDFs issued over all revisions.
      pdfs: current invoices whose embedded line items were compared.
      line_items: current line items compared with the recomputation.
      revisions: revisions in the chain.
      totals: current totals per currency: (sum of totals, number of invoices).
      protection: published files by what protects them (``read-only``, ``COMPLIANCE
        until …``, ``none``).
      head: the end of the chain, when the month could be read.
      mismatches: one line per mismatch, naming the file and the fact.
    """

    files: int = 0
    invoices: int = 0
    credit_notes: int = 0
    pdfs: int = 0
    line_items: int = 0
    revisions: int = 0
    totals: dict[str, tuple[Decimal, int]] = field(default_factory=dict)
    protection: Counter[str] = field(default_factory=Counter)
    head: Head | None = None
    mismatches: list[str] = field(default_factory=list)
    #: What was read from each PDF (embedded line items, XML), parsed once per run.
    embedded: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    #: Parquet files read, by location: each is read once per run (object storage).
    tables: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def add(self, line: str) -> None:
        self.mismatches.append(line)

    def lines(self, label: str) -> list[str]:
        """What `verify` prints: OK with counts, protection and the head; or one line per
        mismatch, then the head."""
        if self.ok:
            lines = [
                f"OK {label}: {self.revisions} revision(s), {self.files} files, "
                f"{self.line_items} line items match",
                f"  documents: {self.invoices} invoice(s) issued, {self.pdfs} current "
                f"(embedded line items match), {self.credit_notes} credit note(s)",
                f"  current totals: {totals_text(self.totals)}",
                *(protection_text(kind, count) for kind, count in sorted(
                    self.protection.items())),
            ]
        else:
            lines = list(self.mismatches)
        return lines + ([self.head.line()] if self.head is not None else [])


def protection_text(kind: str, count: int) -> str:
    """One line of `verify`'s report on what protects the published files."""
    if kind == "read-only":
        return f"  read-only: {count} published file(s)"
    if kind == "none":
        return (f"  retention: none on {count} published object(s) (published without "
                "--retain-days)")
    return f"  retention: {count} published object(s) under Object Lock, {kind}"
