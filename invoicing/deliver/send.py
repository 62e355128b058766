"""`send`: deliver every document of a verified month that the ledger does not show as
accepted, once each, in delivery order.

For each document: the buyer's address is checked (a malformed one is a permanent
failure, recorded, and the month goes on); the message is built; then each attempt
writes ``sending`` to the ledger, sends, and writes the outcome. A temporary refusal
(4xx) or a lost connection is retried after a delay that doubles each time, at most
`Policy.attempts` attempts in all; a permanent refusal (5xx) is recorded and the month
goes on. When a document's attempts all ended without reaching the server, the server
is taken to be gone: the month stops there (the rest is "not attempted") and a rerun
picks it up.
"""

from __future__ import annotations

import email.policy
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

from invoicing.audit.diff import issued_month
from invoicing.audit.verify import verify_month
from invoicing.core.errors import VerifyMismatchError
from invoicing.core.timeframe import Month
from invoicing.deliver import ledger as ledger_mod
from invoicing.deliver.documents import (
    Buyer,
    IssuedDocument,
    buyer_of,
    load_buyers,
    month_documents,
)
from invoicing.deliver.ledger import Record, delivery_lock, open_ledger, states
from invoicing.deliver.messages import Sender, build_message, is_address, message_id
from invoicing.deliver.smtp import ACCEPTED, PERMANENT, Connection, SmtpServer
from invoicing.render.progress import Progress
from invoicing.validate.usage import OnConflict

#: Why a document was not delivered, as the summary and `status` name it.
REASONS: Final = {
    "refused": "refused by the server (5xx)",
    "temporary": "refused temporarily (4xx) at every attempt",
    "connection": "server unreachable or connection lost at every attempt",
    "address": "the customer's e-mail is not an address",
    "no-buyer": "the customer is not in the inputs",
}


@dataclass(frozen=True)
class Policy:
    """How hard to try.

    Attributes:
      attempts: attempts per document and run, the first included (at least 1).
      delay: seconds before the first retry; each further retry waits twice as long.
      max_delay: the longest wait between two attempts.
      rate: at most this many messages per second (None: as fast as the server takes
        them).
    """

    attempts: int = 5
    delay: float = 5.0
    max_delay: float = 300.0
    rate: float | None = None

    def backoff(self, retry: int) -> float:
        """The wait before retry number `retry` (1 for the second attempt)."""
        return float(min(self.max_delay, self.delay * 2 ** (retry - 1)))


@dataclass(frozen=True)
class Failure:
    """A document that was not delivered by this run."""

    number: str
    recipient: str
    reason: str
    reply: str


@dataclass
class SendReport:
    """What one `send` did.

    Attributes:
      documents: documents of the month (all revisions verified).
      revisions: revisions they come from.
      sent: documents accepted by the server in this run (or written, in a dry run).
      resent: of those, documents that a previous run may already have sent (in flight at
        a crash), sent again with the same Message-ID.
      already: documents the ledger already showed as accepted.
      failed: documents not accepted, with the reason and the last reply.
      not_attempted: documents left untried because the server became unreachable.
      busy: documents another sender was working on (object storage).
      target: the server URL, or the dry-run folder.
      dry_run: True when messages were written as files, not sent.
    """

    documents: int = 0
    revisions: int = 0
    sent: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    target: str = ""
    dry_run: bool = False

    @property
    def complete(self) -> bool:
        return not (self.failed or self.not_attempted or self.busy)


def _now() -> datetime:
    return datetime.now(UTC)


class _Pacer:
    """At most `rate` messages per second (monotonic clock, never a wall-clock check)."""

    def __init__(self, rate: float | None, sleep: Callable[[float], None]):
        self.interval = 1.0 / rate if rate else 0.0
        self.sleep = sleep
        self.next_at = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next_at > now:
            self.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


def send_month(
    input_dir: Path, out_dir: Path, month: Month, *, sender: Sender,
    server: SmtpServer | None = None, dry_run: Path | None = None, policy: Policy = Policy(),
    pricebook: Path | None = None, stream: TextIO | None = None, tty: bool | None = None,
    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], datetime] = _now,
    seller: Path | None = None, on_conflict: OnConflict | None = None,
) -> SendReport:
    """Deliver what the ledger does not show as accepted (see the module's docstring).

    Refuses (exit 7) a month that `verify` does not pass, read with `on_conflict` as
    ``invoicing verify --on-conflict`` reads it (None: the policy the month was
    published with). With `dry_run`, each message is
    written to ``<dry_run>/<number>.eml`` instead: the ledger is read (what it shows as
    accepted is skipped) and not written.
    """
    if dry_run is not None:
        target, server = str(dry_run), None
    elif server is not None:
        target = server.url
    else:
        raise ValueError("send_month needs a server or a dry-run folder")
    with delivery_lock(out_dir, month):
        checked = verify_month(input_dir, out_dir, month, pricebook, seller=seller,
                               on_conflict=on_conflict)
        if not checked.ok:
            raise VerifyMismatchError(
                f"{out_dir / month.label}: 'invoicing verify' finds {len(checked.mismatches)} "
                "mismatch(es); nothing was sent (run it for the list)")
        documents = month_documents(issued_month(out_dir, month), checked.revisions)
        buyers = load_buyers(input_dir, pricebook, seller)
        ledger = open_ledger(out_dir, month)
        done = states(ledger.records())
        report = SendReport(documents=len(documents), revisions=checked.revisions,
                            target=target, dry_run=dry_run is not None)
        todo = []
        for doc in documents:
            state = done.get(doc.number)
            if state is not None and state.accepted is not None:
                report.already.append(doc.number)
            else:
                todo.append(doc)
        run = f"{clock():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        progress = Progress("sending" if dry_run is None else "writing", len(todo), stream, tty)
        connection = Connection(server) if server is not None else None
        pacer = _Pacer(policy.rate, sleep)
        try:
            for i, doc in enumerate(todo):
                buyer = buyer_of(doc, buyers)
                state = done.get(doc.number)
                if dry_run is not None:
                    _write_eml(doc, buyer, sender, dry_run, clock(), report)
                else:
                    assert connection is not None
                    if not _deliver(doc, buyer, sender, connection, ledger, state, policy,
                                    pacer, sleep, clock, run, report):
                        report.not_attempted.extend(d.number for d in todo[i + 1:])
                        break
                progress.advance()
        finally:
            progress.close()
            ledger.close()
            if connection is not None:
                connection.close()
        return report


def _write_eml(doc: IssuedDocument, buyer: Buyer | None, sender: Sender, folder: Path,
               when: datetime, report: SendReport) -> None:
    problem = _unsendable(buyer)
    if problem is not None:
        reason, reply = problem
        report.failed.append(Failure(doc.number, buyer.email if buyer else "", reason, reply))
        return
    assert buyer is not None
    folder.mkdir(parents=True, exist_ok=True)
    message = build_message(doc, buyer, sender, when)
    (folder / f"{doc.number}.eml").write_bytes(message.as_bytes(policy=email.policy.SMTP))
    report.sent.append(doc.number)


def _unsendable(buyer: Buyer | None) -> tuple[str, str] | None:
    """(reason, text) when the document cannot be addressed at all, else None."""
    if buyer is None:
        return "no-buyer", "the customer is not in the customers table of --input"
    if not is_address(buyer.email):
        return "address", f"{buyer.email!r} is not an e-mail address"
    return None


def _deliver(doc: IssuedDocument, buyer: Buyer | None, sender: Sender, connection: Connection,
             ledger: ledger_mod.LocalLedger | ledger_mod.ObjectLedger,
             state: ledger_mod.DocumentState | None, policy: Policy, pacer: _Pacer,
             sleep: Callable[[float], None], clock: Callable[[], datetime], run: str,
             report: SendReport) -> bool:
    """Send one document, with its retries. False when the server is gone (stop the month)."""
    attempt = state.attempts if state is not None else 0
    mid = message_id(doc, sender)

    def record(status: str, recipient: str, reply: str | None = None,
               reason: str | None = None) -> None:
        ledger.append(Record(doc.number, attempt, status, recipient, mid,
                             clock().isoformat(timespec="milliseconds"), reply, reason, run))

    problem = _unsendable(buyer)
    if problem is not None:
        attempt += 1
        reason, text = problem
        record(ledger_mod.PERM_FAILED, buyer.email if buyer else "", text, reason)
        report.failed.append(Failure(doc.number, buyer.email if buyer else "", reason, text))
        return True
    assert buyer is not None
    data = build_message(doc, buyer, sender, clock()).as_bytes(policy=email.policy.SMTP)
    for tried in range(1, policy.attempts + 1):
        if tried > 1:
            sleep(policy.backoff(tried - 1))
        pacer.wait()
        attempt += 1
        reply = connection.open()  # not connected: nothing leaves, no `sending` record
        if reply is None:
            try:
                record(ledger_mod.SENDING, buyer.email)
            except ledger_mod.AlreadyRecordedError:
                report.busy.append(doc.number)
                return True
            reply = connection.send(sender.email, buyer.email, data)
        if reply.kind == ACCEPTED:
            record(ledger_mod.ACCEPTED, buyer.email, reply.text)
            report.sent.append(doc.number)
            if state is not None and state.in_flight:
                report.resent.append(doc.number)
            return True
        if reply.kind == PERMANENT:
            record(ledger_mod.PERM_FAILED, buyer.email, reply.text, "refused")
            report.failed.append(Failure(doc.number, buyer.email, "refused", reply.text))
            return True
        reason = "connection" if reply.dropped else "temporary"
        record(ledger_mod.TEMP_FAILED, buyer.email, reply.text, reason)
        if tried == policy.attempts:
            report.failed.append(Failure(doc.number, buyer.email, reason, reply.text))
            return not reply.dropped
    return True
