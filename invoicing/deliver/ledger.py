"""The delivery ledger: an append-only record of every attempt to send a document.

Each attempt writes two records: ``sending`` before the message leaves, and its outcome
after the server answered (``accepted``, ``temp-failed``, ``perm-failed``, with the
server's reply). A record is durable before the next step starts, so after a crash the
ledger shows every document whose message may have left (a ``sending`` without an
outcome) and a rerun sends it again, with the same Message-ID; nothing the ledger shows
as ``accepted`` is ever sent again.

Where it lives: ``<out>/<YYYY-MM>.delivery/``, beside the published month and not inside
it, because the month's folder holds exactly what its manifest lists (`verify` reports
any other file) and no issued file is ever rewritten.

* On a local disk: ``ledger.jsonl``, one JSON object per line, each append written with
  ``O_APPEND`` and fsync'ed. A line cut short by a crash is skipped when read (it was a
  record whose step had not happened yet; see `LocalLedger.records`). One ``send`` at a
  time per month: ``<out>/.<YYYY-MM>.delivery.lock`` (flock, like the month's lock).
* On object storage: one object per record,
  ``records/<document>/<attempt>-<status>.json``, created with ``If-None-Match: *`` like
  the month's manifest: nothing is ever overwritten, and of two concurrent senders only
  one can record attempt n of a document (the other leaves that document alone).
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from invoicing import storage
from invoicing.core.timeframe import Month
from invoicing.storage import is_remote
from invoicing.storage.local import DIR_MODE, FILE_MODE, fsync_dir

log = logging.getLogger("invoicing")

SENDING: Final = "sending"
ACCEPTED: Final = "accepted"
TEMP_FAILED: Final = "temp-failed"
PERM_FAILED: Final = "perm-failed"
OUTCOMES: Final = (ACCEPTED, TEMP_FAILED, PERM_FAILED)
LEDGER_FILE: Final = "ledger.jsonl"
RECORDS: Final = "records"


@dataclass(frozen=True)
class Record:
    """One line of the ledger.

    Attributes:
      document: the document's number (``IM-…``, ``CN-…``).
      attempt: 1 for its first attempt ever, counting on over reruns.
      status: ``sending`` (written before the message leaves), or the outcome.
      recipient: the address the message was (or was to be) sent to, as given.
      message_id: the message's fixed Message-ID.
      time: when the record was written, ISO 8601 UTC.
      reply: the server's reply (``250 2.0.0 Ok``) or why it never got one; None for
        ``sending``.
      reason: for a failure, its kind (`send.REASONS`); None otherwise.
      run: the id of the ``send`` that wrote it.
    """

    document: str
    attempt: int
    status: str
    recipient: str
    message_id: str
    time: str
    reply: str | None = None
    reason: str | None = None
    run: str = ""

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))
                + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> Record:
        data: dict[str, Any] = json.loads(raw)
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass(frozen=True)
class DocumentState:
    """What the ledger says about one document.

    Attributes:
      accepted: the record that shows it accepted, or None.
      last: its latest record.
      attempts: its highest attempt number.
    """

    accepted: Record | None
    last: Record
    attempts: int

    @property
    def in_flight(self) -> bool:
        """A message that may have left without its outcome being recorded (a crash)."""
        return self.accepted is None and self.last.status == SENDING


def states(records: list[Record]) -> dict[str, DocumentState]:
    """Each document's state. A document's records are taken in attempt order, the
    ``sending`` record of an attempt before its outcome, however the ledger stores them."""
    found: dict[str, DocumentState] = {}
    for rec in sorted(records, key=lambda r: (r.attempt, r.status != SENDING)):
        before = found.get(rec.document)
        accepted = before.accepted if before else None
        if rec.status == ACCEPTED and accepted is None:
            accepted = rec
        found[rec.document] = DocumentState(accepted, rec, rec.attempt)
    return found


class AlreadyRecordedError(Exception):
    """Another sender recorded this attempt first (object storage only)."""


def location(out_dir: Path, month: Month) -> Path:
    """The ledger's folder: ``<out>/<YYYY-MM>.delivery``."""
    return out_dir / f"{month.label}.delivery"


class LocalLedger:
    """``ledger.jsonl`` in a local folder; the caller holds `delivery_lock`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / LEDGER_FILE
        self._fd: int | None = None

    def records(self) -> list[Record]:
        """Every record, in the order written. A line that does not parse is skipped with
        a warning: only a crash mid-append leaves one, and the step it recorded (a send
        about to start, or an outcome) is then redone or re-asked, never lost."""
        if not self.path.is_file():
            return []
        found = []
        for number, line in enumerate(self.path.read_bytes().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                found.append(Record.from_json(line))
            except (ValueError, TypeError):
                log.warning("%s, line %d: incomplete record skipped (cut short by a crash)",
                            self.path, number)
        return found

    def append(self, record: Record) -> None:
        if self._fd is None:
            self._open()
        assert self._fd is not None
        os.write(self._fd, record.to_json())
        os.fsync(self._fd)

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        if created:
            fsync_dir(self.folder)
            fsync_dir(self.folder.parent)
        elif (size := os.fstat(self._fd).st_size) and _last_byte(self.path, size) != b"\n":
            os.write(self._fd, b"\n")  # end a line cut short by a crash; it stays skipped

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _last_byte(path: Path, size: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(size - 1)
        return fh.read(1)



class ObjectLedger:
    """One object per record under ``<out>/<YYYY-MM>.delivery/records/``, each created
    conditionally so that none is ever overwritten."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.prefix = folder / RECORDS

    def records(self) -> list[Record]:
        fs = self.prefix.fs  # type: ignore[attr-defined]
        try:
            keys = sorted(fs.find(self.prefix.path))  # type: ignore[attr-defined]
        except FileNotFoundError:
            return []
        if not keys:
            return []
        found = [Record.from_json(data) for _, data in sorted(fs.cat(keys).items())]
        return sorted(found, key=lambda r: (r.time, r.document, r.attempt, r.status != SENDING))

    def append(self, record: Record) -> None:
        target = self.prefix / record.document / f"{record.attempt:06d}-{record.status}.json"
        try:
            target.fs.pipe_file(target.path, record.to_json(),  # type: ignore[attr-defined]
                                mode="create")
        except FileExistsError:
            raise AlreadyRecordedError(f"{target}: already recorded by another sender"
                                       ) from None

    def close(self) -> None:
        pass


def open_ledger(out_dir: Path, month: Month) -> LocalLedger | ObjectLedger:
    folder = location(out_dir, month)
    return ObjectLedger(folder) if is_remote(folder) else LocalLedger(folder)


def delivery_lock(out_dir: Path, month: Month) -> AbstractContextManager[None]:
    """One ``send`` per month at a time: ``<out>/.<YYYY-MM>.delivery.lock`` on a local disk
    (a second one fails at once, exit 6). On object storage the conditional create of
    each record keeps two senders apart instead."""
    return storage.lock(out_dir, location(out_dir, month).name)
