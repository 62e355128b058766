"""`verify`, the stored files: every file a manifest lists is there with its SHA-256 and
protected, nothing else sits under the month, the revisions link into one chain ending
in the expected head, and document numbers run without gap or reuse across revisions.

Files are read through the storage API (`invoicing.storage`), the same way on a local
folder and on object storage.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from invoicing.audit.verify.facts import remember_embedded
from invoicing.audit.verify.report import VerifyReport
from invoicing.core.timeframe import Month
from invoicing.publish.heads import Head
from invoicing.publish.issued import REVISIONS, Revision, sequence
from invoicing.storage import (
    MANIFEST,
    is_remote,
    list_files,
    protection,
    read_bytes,
    relative_name,
)
from invoicing.storage.base import sha256_bytes

#: A local reissue's temporary folder (`storage/local.py`): never published, removed by
#: the next reissue, so not a stray.
_LOCAL_STAGING = re.compile(rf"^{REVISIONS}/\.\d+\.tmp-")
#: Document kinds by folder: (prefix of their numbers, what verify calls them).
KINDS = {"invoices": ("IM", "invoice"), "credit_notes": ("CN", "credit note")}


def check_files(rev: Revision, previous: Revision | None, report: VerifyReport) -> None:
    """Every listed file is there with its SHA-256 and its protection; the chain link."""
    retention = _retention(rev)
    for relative, expected in sorted(rev.manifest.get("outputs", {}).items()):
        path = rev.files / relative
        report.files += 1
        folder = relative.split("/", 1)[0]
        report.invoices += folder == "invoices" and relative.endswith(".pdf")
        report.credit_notes += folder == "credit_notes" and relative.endswith(".pdf")
        try:
            data = read_bytes(path)
        except OSError:
            report.add(f"{path}: missing (listed in {rev.path / MANIFEST})")
            continue
        if sha256_bytes(data) != expected:
            report.add(f"{path}: SHA-256 differs from {rev.path / MANIFEST}")
        if relative.endswith(".pdf"):
            remember_embedded(report, path, data)  # so that each PDF is read once
        _check_protection(path, retention, report)
    _check_protection(rev.path / MANIFEST, retention, report)
    if previous is not None:
        link = rev.manifest.get("revision", {}).get("previous_manifest_sha256")
        if link != previous.manifest_sha256:
            report.add(f"{rev.path / MANIFEST}: previous_manifest_sha256 does not match "
                       f"{previous.path / MANIFEST}")


def _retention(rev: Revision) -> datetime | None:
    until = (rev.manifest.get("retention") or {}).get("retain_until")
    try:
        return datetime.fromisoformat(until) if isinstance(until, str) else None
    except ValueError:
        return None


def _check_protection(path: Path, retention: datetime | None, report: VerifyReport) -> None:
    """Local files must be read-only; objects of a month published with retention must be
    locked at least until the date its manifest records."""
    try:
        found = protection(path)
    except OSError:
        return  # missing: reported by the caller
    report.protection[str(found) if found else "none"] += 1
    if not is_remote(path):
        if found is None:
            report.add(f"{path}: writable (published files are read-only)")
    elif retention is not None and (
            found is None or found.until is None
            or found.until.replace(microsecond=0) < retention.replace(microsecond=0)):
        report.add(f"{path}: no Object Lock retention until {retention.date()} (the "
                   f"manifest records it; the object has {found or 'none'})")


def check_strays(root: Path, revisions: list[Revision], report: VerifyReport) -> None:
    """Every file under the month that no manifest lists is a mismatch."""
    listed: set[str] = set()
    for rev in revisions:
        for name in [MANIFEST, *rev.manifest.get("outputs", {})]:
            where = rev.path if name == MANIFEST else rev.files
            relative = relative_name(where / name, root)
            if relative is not None:
                listed.add(relative)
    for name in list_files(root):
        if name not in listed and not _LOCAL_STAGING.match(name):
            report.add(f"{root / name}: not listed in any manifest of {root}")


def check_numbers(month: Month, revisions: list[Revision], report: VerifyReport) -> None:
    """Each document number is issued by exactly one revision, the ones each revision's
    manifest says it issued, and the sequences run from 1 without a gap."""
    issued: dict[str, dict[str, int]] = {folder: {} for folder in KINDS}
    for rev in revisions:
        here: dict[str, set[str]] = {folder: set() for folder in KINDS}
        for relative in rev.manifest.get("outputs", {}):
            folder, _, name = relative.partition("/")
            if folder in KINDS and name.endswith(".pdf"):
                here[folder].add(name.removesuffix(".pdf"))
        for folder, numbers in here.items():
            prefix, kind = KINDS[folder]
            for number in sorted(numbers):
                if number in issued[folder]:
                    report.add(f"{rev.files / folder / number}.pdf: {kind} number {number} "
                               f"reused (already issued in revision {issued[folder][number]})")
                elif not number.startswith(f"{prefix}-{month.compact}-") or \
                        sequence(number) is None:
                    report.add(f"{rev.files / folder / number}.pdf: not a {kind} number of "
                               f"{month.label}")
                else:
                    issued[folder][number] = rev.number
        if rev.number:
            entry = rev.manifest.get("revision", {})
            stated = {"invoices": {i.get("number") for i in entry.get("invoices", [])},
                      "credit_notes": {c.get("number") for c in entry.get("credit_notes", [])}}
            for folder, numbers in here.items():
                if stated[folder] != numbers:
                    report.add(f"{rev.path / MANIFEST}: the {KINDS[folder][1]}s its revision "
                               f"block names differ from the PDFs it lists")
    for folder, by_number in issued.items():
        prefix, kind = KINDS[folder]
        used = {sequence(n) for n in by_number}
        for missing in sorted(set(range(1, max(used, default=0) + 1)) - used):  # type: ignore
            report.add(f"{revisions[0].path}: {kind} {prefix}-{month.compact}-{missing:06d} "
                       "missing from the sequence (no revision lists it)")


def check_head(head: Head, expect_head: str | None, revisions: list[Revision],
               report: VerifyReport) -> None:
    """`--expect-head`: the month must end exactly in the head kept elsewhere."""
    if expect_head is None or expect_head.lower() == head.manifest_sha256:
        return
    known = {r.manifest_sha256: r.number for r in revisions}
    where = head.month
    if expect_head.lower() in known:
        report.add(f"{where}: head is revision {head.revision} ({head.manifest_sha256}); the "
                   f"expected head is revision {known[expect_head.lower()]}, since superseded")
    else:
        report.add(f"{where}: head is revision {head.revision} ({head.manifest_sha256}), not "
                   f"the expected {expect_head}: a revision was deleted or rewritten")
