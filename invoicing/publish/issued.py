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
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from invoicing.core.timeframe import Month
from invoicing.load.inputs import sha256_file
from invoicing.storage import MANIFEST, files_of, is_committed, readable

REVISIONS = "revisions"
_SEQ = re.compile(r"-(\d{6})$")


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

    @property
    def manifest_sha256(self) -> str:
        return sha256_file(self.path / MANIFEST)


class IssuedMonth:
    """Read access to a published month and its revisions."""

    def __init__(self, out_dir: Path, month: Month):
        self.out_dir = out_dir
        self.month = month
        self.root = out_dir / month.label

    def exists(self) -> bool:
        return is_committed(self.root)

    def revisions(self) -> list[Revision]:
        found = [_revision(0, self.root)]
        folder = self.root / REVISIONS
        if folder.is_dir():
            for sub in sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()),
                              key=lambda p: p.name):
                if is_committed(sub):  # on object storage, skip a revision never committed
                    found.append(_revision(int(sub.name), sub))
        return found

    def latest(self) -> Revision:
        return self.revisions()[-1]

    def next_revision_dir_name(self) -> str:
        return f"{self.latest().number + 1:03d}"

    def current_state(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(line_items, invoices) after the latest revision."""
        latest = self.latest()
        invoices = pl.read_parquet(readable(latest.files / "invoices.parquet"))
        if "issued_in_revision" not in invoices.columns:
            invoices = invoices.with_columns(
                issued_in_revision=pl.when(pl.col("invoice_number").is_not_null())
                .then(pl.lit(0, dtype=pl.Int64)),
                replaces=pl.lit(None, dtype=pl.String),
            )
        return pl.read_parquet(readable(latest.files / "line_items.parquet")), invoices

    def max_sequences(self) -> tuple[int, int]:
        """Highest invoice and credit-note sequence numbers used over the whole chain."""
        invoice_seq, credit_seq = 0, 0
        for rev in self.revisions():
            numbers = pl.read_parquet(readable(rev.files / "invoices.parquet"),
                                      columns=["invoice_number"])
            invoice_seq = max([invoice_seq, *_sequences(numbers["invoice_number"])])
            notes = rev.files / "credit_notes.parquet"
            if notes.exists():
                cns = pl.read_parquet(readable(notes), columns=["credit_note_number"])
                credit_seq = max([credit_seq, *_sequences(cns["credit_note_number"])])
        return invoice_seq, credit_seq


def _revision(number: int, folder: Path) -> Revision:
    raw = (folder / MANIFEST).read_bytes()
    return Revision(number, folder, json.loads(raw), files_of(folder, raw))


def _sequences(numbers: pl.Series) -> list[int]:
    return [int(m.group(1)) for n in numbers.drop_nulls().to_list() if (m := _SEQ.search(n))]
