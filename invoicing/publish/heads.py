"""The head of a month's chain of revisions, and the records of every head published.

The head is the latest revision's number and its manifest's SHA-256. `run` and `reissue`
print it, to be kept where whoever can write to ``--out`` cannot rewrite it (a cron log, a
ticket, a database row): `verify --expect-head` then catches a deleted latest revision,
which the hash chain alone cannot show.

Each command that publishes also records the head it reached beside the month, in
``<out>/<YYYY-MM>.heads/NNN.json`` (outside the month folder, so restoring or deleting
the month folder leaves them; on object storage under the same Object Lock as the
month): the revision, its manifest's SHA-256 and the highest invoice and credit-note
numbers used so far. `reissue` refuses to go on when a record names a revision the month
no longer holds, and never spends a number below the highest one recorded; `verify`
reports such a record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from invoicing.core.errors import VerifyMismatchError
from invoicing.storage import list_files, put_record, read_bytes

HEADS_SUFFIX = ".heads"


class HeadMismatchError(VerifyMismatchError):
    """The month does not end in the head the caller kept or a record names (exit 7)."""


@dataclass(frozen=True)
class Head:
    """The end of a month's chain of revisions: what to keep outside the store.

    Attributes:
      month: the month's label.
      revision: the latest revision's number (0 after `run`).
      manifest_sha256: SHA-256 of the latest revision's manifest.json.
    """

    month: str
    revision: int
    manifest_sha256: str

    def line(self) -> str:
        """The line `run`, `reissue` and `verify` print (the SHA-256 is the last word)."""
        return f"head: {self.month} revision {self.revision} sha256 {self.manifest_sha256}"


@dataclass(frozen=True)
class HeadRecord:
    """A head as recorded when it was published, with the highest numbers used by then."""

    path: Path
    revision: int
    manifest_sha256: str
    invoice_seq: int
    credit_note_seq: int


def heads_folder(out_dir: Path, label: str) -> Path:
    return out_dir / f"{label}{HEADS_SUFFIX}"


def record_head(out_dir: Path, head: Head, sequences: tuple[int, int],
                retain_until: datetime | None) -> None:
    """Record `head` (written once; under Object Lock until `retain_until` if given)."""
    body = {"month": head.month, "revision": head.revision,
            "manifest_sha256": head.manifest_sha256,
            "invoice_seq": sequences[0], "credit_note_seq": sequences[1]}
    data = (json.dumps(body, indent=2) + "\n").encode()
    put_record(heads_folder(out_dir, head.month) / f"{head.revision:03d}.json", data,
               retain_until)


def read_head_records(out_dir: Path, label: str) -> tuple[list[HeadRecord], list[str]]:
    """Every head recorded for the month, and one line per record that cannot be read."""
    folder = heads_folder(out_dir, label)
    if not folder.exists():
        return [], []
    records, problems = [], []
    for name in list_files(folder):
        path = folder / name
        try:
            body = json.loads(read_bytes(path))
            records.append(HeadRecord(path, int(body["revision"]), str(body["manifest_sha256"]),
                                      int(body["invoice_seq"]), int(body["credit_note_seq"])))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}: unreadable head record ({type(exc).__name__})")
    return records, problems


def record_problems(records: list[HeadRecord], chain: dict[int, str]) -> list[str]:
    """One line per record naming a revision the month no longer holds as recorded
    (`chain`: revision number -> its manifest's SHA-256)."""
    problems = []
    for r in records:
        if r.revision not in chain:
            problems.append(f"{r.path}: records revision {r.revision} ({r.manifest_sha256}), "
                            "which the month no longer holds: a revision was deleted")
        elif chain[r.revision] != r.manifest_sha256:
            problems.append(f"{r.path}: records revision {r.revision} as {r.manifest_sha256}; "
                            f"the month's revision {r.revision} is {chain[r.revision]}: a "
                            "revision was replaced")
    return problems
