"""What has been issued for a month: the published folder and its chain of revisions.

Layout under ``<out>/<YYYY-MM>/``::

    manifest.json, invoices.parquet, line_items.parquet, ...   revision 0 (`run`)
    invoices/IM-….pdf
    revisions/001/manifest.json, invoices.parquet, ...          revision 1 (`reissue`)
    revisions/001/invoices/IM-….pdf, credit_notes/CN-….pdf
    revisions/002/...

On object storage the layout is the same, except that each revision's files sit under
``objects/<scope>/`` beside its manifest (`invoicing.storage.files_of`): the manifest
is the commit, and readers trust only what a committed manifest lists.

No issued file is ever rewritten: a reissue adds a folder under ``revisions/``
(atomically, by rename) whose manifest names the SHA-256 of the previous revision's
manifest, so the revisions form a hash chain. Each revision's ``invoices.parquet`` and
``line_items.parquet`` hold the month's full current state after that revision.

The chain ends in the **head**: the latest revision's number and its manifest's SHA-256
(`Head`). `run` and `reissue` print it, so that it can be kept outside the store (a cron
log, a ticket, a database row); whoever kept it detects a deleted latest revision,
which the chain alone cannot show (`verify --expect-head`), and `reissue --expect-head`
refuses to spend numbers on a month that is not in the state it was told.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from invoicing.core.errors import VerifyMismatchError
from invoicing.core.timeframe import Month
from invoicing.publish.heads import (
    Head,
    HeadMismatchError,
    read_head_records,
    record_head,
    record_problems,
)
from invoicing.storage import MANIFEST, files_of, is_committed, readable, sha256_bytes

REVISIONS = "revisions"
_SEQ = re.compile(r"-(\d{6})$")


class DamagedMonthError(VerifyMismatchError):
    """The published month is not a readable chain of revisions (exit 7)."""


@dataclass(frozen=True)
class Revision:
    """One published revision of a month.

    Attributes:
      number: 0 for `run`, n for the n-th `reissue`.
      path: the folder holding its manifest.json.
      manifest: its parsed manifest.json.
      files: the folder holding the files the manifest lists (`path` on a local disk).
    """

    number: int
    path: Path
    manifest: dict[str, Any]
    files: Path
    manifest_sha256: str

    def invoices(self) -> pl.DataFrame:
        """Its ``invoices.parquet`` (revision 0's with ``issued_in_revision`` 0 and no
        ``replaces``, as a reissue writes them)."""
        return normalised(pl.read_parquet(readable(self.files / "invoices.parquet")))


class IssuedMonth:
    """Read access to a published month and its revisions."""

    def __init__(self, out_dir: Path, month: Month):
        self.out_dir = out_dir
        self.month = month
        self.root = out_dir / month.label

    def exists(self) -> bool:
        return is_committed(self.root)

    def scan(self) -> tuple[list[Revision], list[str]]:
        """The revisions that can be read, in order, and one line per one that cannot (a
        manifest missing or unreadable, a number out of sequence): `verify` reports them,
        every other command refuses the month (`revisions`)."""
        problems: list[str] = []
        try:
            found = [_revision(0, self.root)]
        except (OSError, ValueError) as exc:
            return [], [f"{self.root / MANIFEST}: missing or unreadable ({_why(exc, self.root)})"]
        folder = self.root / REVISIONS
        if folder.is_dir():
            for sub in sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()),
                              key=lambda p: p.name):
                if not is_committed(sub):
                    # Object storage: never committed (its objects, if any, are strays).
                    continue
                try:
                    rev = _revision(int(sub.name), sub)
                except (OSError, ValueError) as exc:
                    problems.append(f"{sub / MANIFEST}: missing or unreadable "
                                    f"({_why(exc, sub)}); "
                                    "the revision cannot be checked")
                    continue
                if rev.number != found[-1].number + 1:
                    problems.append(f"{sub}: revision {rev.number} follows revision "
                                    f"{found[-1].number} (a revision is missing)")
                found.append(rev)
        return found, problems

    def revisions(self) -> list[Revision]:
        found, problems = self.scan()
        if problems:
            raise DamagedMonthError(f"{problems[0]}; the published month is damaged, run "
                                    "'invoicing verify'; nothing was written")
        return found

    def latest(self) -> Revision:
        return self.revisions()[-1]

    def head(self) -> Head:
        latest = self.latest()
        return Head(self.month.label, latest.number, latest.manifest_sha256)

    def record_head(self, retain_until: datetime | None = None) -> Head:
        """Record the head just published (`publish/heads.py`) and return it."""
        head = self.head()
        record_head(self.out_dir, head, self.max_sequences(), retain_until)
        return head

    def check_recorded_heads(self) -> None:
        """Refuse (`HeadMismatchError`) a month that lost a revision a record names."""
        records, unreadable = read_head_records(self.out_dir, self.month.label)
        chain = ({r.number: r.manifest_sha256 for r in self.revisions()}
                 if self.exists() else {})
        problems = unreadable + record_problems(records, chain)
        if problems:
            raise HeadMismatchError(f"{problems[0]}; nothing was written and no number "
                                    "was used")

    def next_revision_dir_name(self) -> str:
        return f"{self.latest().number + 1:03d}"

    def current_state(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(line_items, invoices) after the latest revision."""
        latest = self.latest()
        return pl.read_parquet(readable(latest.files / "line_items.parquet")), latest.invoices()

    def max_sequences(self) -> tuple[int, int]:
        """Highest invoice and credit-note sequence numbers used over the whole chain and
        recorded in any head (`publish/heads.py`)."""
        records, _ = read_head_records(self.out_dir, self.month.label)
        invoice_seq = max([0, *(r.invoice_seq for r in records)])
        credit_seq = max([0, *(r.credit_note_seq for r in records)])
        for rev in self.revisions():
            numbers = pl.read_parquet(readable(rev.files / "invoices.parquet"),
                                      columns=["invoice_number"])
            invoice_seq = max([invoice_seq, *_sequences(numbers["invoice_number"])])
            notes = rev.files / "credit_notes.parquet"
            if notes.exists():
                cns = pl.read_parquet(readable(notes), columns=["credit_note_number"])
                credit_seq = max([credit_seq, *_sequences(cns["credit_note_number"])])
        return invoice_seq, credit_seq


def normalised(invoices: pl.DataFrame) -> pl.DataFrame:
    """An ``invoices.parquet`` with ``issued_in_revision`` and ``replaces`` (revision 0's
    has neither: its numbered invoices were issued in revision 0 and replace nothing)."""
    if "issued_in_revision" in invoices.columns:
        return invoices
    return invoices.with_columns(
        issued_in_revision=pl.when(pl.col("invoice_number").is_not_null())
        .then(pl.lit(0, dtype=pl.Int64)),
        replaces=pl.lit(None, dtype=pl.String),
    )


def _revision(number: int, folder: Path) -> Revision:
    raw = (folder / MANIFEST).read_bytes()
    manifest = json.loads(raw)
    if not isinstance(manifest, dict):
        raise ValueError("not a JSON object")
    if number and manifest.get("revision", {}).get("number") != number:
        raise ValueError(f"it says revision {manifest.get('revision', {}).get('number')}")
    return Revision(number, folder, manifest, files_of(folder, raw), sha256_bytes(raw))


def _why(exc: BaseException, folder: Path) -> str:
    """Why a revision's manifest cannot be read, naming an odd folder (an empty folder or
    a dangling link where a published month should be)."""
    why = (exc.strerror or type(exc).__name__) if isinstance(exc, OSError) else str(exc)
    if folder.is_symlink() and not folder.exists():
        return f"the folder is a dangling symbolic link: {why}"
    if folder.exists() and not folder.is_dir():
        return f"not a folder: {why}"
    return why


def sequence(number: str) -> int | None:
    """The running number of a document number (``IM-202610-000016`` -> 16)."""
    m = _SEQ.search(number)
    return int(m.group(1)) if m else None


def _sequences(numbers: pl.Series) -> list[int]:
    return [int(m.group(1)) for n in numbers.drop_nulls().to_list() if (m := _SEQ.search(n))]
