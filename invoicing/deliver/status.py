"""What finance reads: the summary of a `send`, and each document's delivery status from
the ledger (`invoicing status`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from invoicing.audit.diff import issued_month
from invoicing.core.timeframe import Month
from invoicing.deliver.documents import IssuedDocument, month_documents
from invoicing.deliver.ledger import (
    PERM_FAILED,
    SENDING,
    TEMP_FAILED,
    DocumentState,
    open_ledger,
    states,
)
from invoicing.deliver.send import REASONS, SendReport

#: A document's status as `status` prints it.
ISSUED = "issued"
SENT = "sent"
FAILED = "failed"
IN_FLIGHT = "in flight"


@dataclass(frozen=True)
class DocumentStatus:
    """One row of `invoicing status`.

    Attributes:
      document: the issued document.
      status: ``issued`` (never attempted), ``sent``, ``failed`` or ``in flight`` (a
        send was interrupted after it started: the next `send` sends it again).
      state: its ledger state, None when never attempted.
    """

    document: IssuedDocument
    status: str
    state: DocumentState | None


def month_status(out_dir: Path, month: Month) -> list[DocumentStatus]:
    """Every document of the published month, in delivery order, with its status."""
    documents = month_documents(issued_month(out_dir, month))
    found = states(open_ledger(out_dir, month).records())
    rows = []
    for doc in documents:
        state = found.get(doc.number)
        if state is None:
            status = ISSUED
        elif state.accepted is not None:
            status = SENT
        elif state.last.status == SENDING:
            status = IN_FLIGHT
        else:
            status = FAILED if state.last.status in (PERM_FAILED, TEMP_FAILED) else ISSUED
        rows.append(DocumentStatus(doc, status, state))
    return rows


def status_text(month: Month, rows: list[DocumentStatus]) -> str:
    counts = {s: sum(r.status == s for r in rows) for s in (SENT, FAILED, IN_FLIGHT, ISSUED)}
    lines = [f"{month.label}: {len(rows)} document(s): {counts[SENT]} sent, {counts[FAILED]} "
             f"failed, {counts[IN_FLIGHT]} in flight, {counts[ISSUED]} not sent yet"]
    table = [("document", "kind", "revision", "customer", "status", "attempts", "recipient",
              "last record", "reply")]
    for r in rows:
        shown = r.state.accepted or r.state.last if r.state else None
        table.append((
            r.document.number, r.document.kind.replace("_", " "), str(r.document.revision),
            r.document.customer_id, r.status, str(r.state.attempts) if r.state else "0",
            shown.recipient if shown else "", shown.time if shown else "",
            (shown.reply or "") if shown else "",
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)] + [row[-1]]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def send_summary(month: Month, report: SendReport) -> str:
    """The lines `send` prints at the end: counts, then every failure grouped by reason."""
    verb = "written to" if report.dry_run else "sent to"
    lines = [f"{month.label}: {report.documents} document(s) of {report.revisions} "
             f"revision(s); {len(report.sent)} {verb} {report.target}"
             + (" (dry run: nothing sent, nothing recorded)" if report.dry_run else ""),
             f"  {'written' if report.dry_run else 'sent'}: {len(report.sent)}, "
             f"already sent: {len(report.already)}, "
             f"failed: {len(report.failed)}, not attempted: {len(report.not_attempted)}"]
    if report.resent:
        lines.append(f"  sent again after an interruption (same Message-ID): "
                     f"{', '.join(report.resent)}")
    for reason, label in REASONS.items():
        failures = [f for f in report.failed if f.reason == reason]
        if failures:
            lines.append(f"  failed, {label}: {len(failures)}")
            lines += [f"    {f.number} to {f.recipient!r}: {f.reply}" for f in failures]
    if report.not_attempted:
        lines.append(f"  not attempted (the server became unreachable): "
                     f"{len(report.not_attempted)}")
    if report.busy:
        lines.append(f"  left to another sender working on them: {', '.join(report.busy)}")
    return "\n".join(lines)

