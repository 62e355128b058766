"""The tamper catalogue: every kind of damage someone with write access to the output
could do to a published month is caught by `verify` (exit 7), with a line naming the
damaged file and fact.

The month is the sample month published once per test process (`sample_published`),
reissued once here for an EU customer (so that there is a revision, a credit note and a
replacement, both with a ``factur-x.xml``); each case damages its own copy. Every case
verifies against the same inputs, so the month's recomputation is made once per process
(`cached_recomputation`); the cases that change an input are in tests/audit/test_audit.py.
The same damage on object storage is in tests/e2e/test_tamper_s3.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pikepdf
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import invoicing.audit.verify as verify_module
from invoicing.cli import main
from invoicing.core.errors import ExitCode
from tests.builders import INCOMPLETE_OK, MonthBuilder, d
from tests.conftest import sample_copy

MONTH = "2026-10"
EU_APP = 1400001502  # customer C1015, Germany: its invoice IM-202610-000014 is a Factur-X
CN = "CN-202610-000001"


def cli(*args: str) -> tuple[int, str]:
    """Exit code, and what the command printed (stdout and stderr) but its progress."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, "".join(line for line in result.output.splitlines(keepends=True)
                                     if not line.startswith("rendering: "))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def eu_change(inputs: Path) -> None:
    """One EU app's DAU on its first day raised: C1015 gets a credit note and a replacement."""
    path = inputs / "usage/region=eu/2026-10.parquet"
    usage = pl.read_parquet(path).with_row_index()
    first = usage.filter(pl.col("sdk_app_id") == EU_APP)["index"][0]
    usage = usage.with_columns(
        dau=pl.when(pl.col("index") == first).then(pl.lit(25_000, dtype=pl.Int64))
        .otherwise(pl.col("dau"))).drop("index")
    pq.write_table(usage.to_arrow(), path)


@pytest.fixture(scope="module")
def reissued(tmp_path_factory: pytest.TempPathFactory,
             sample_published: tuple[Path, str, str]) -> Path:
    """``in/`` (the corrected inputs), ``out/`` (revision 0 and 1) and ``head`` (the head
    the reissue printed); also ``other/``, another month's published files."""
    root = sample_copy(sample_published, tmp_path_factory.mktemp("tamper"))
    eu_change(root / "in")
    code, output = cli("reissue", "--month", MONTH, "--input", str(root / "in"), "--out",
                       str(root / "out"), "--reason", "EU export fixed", "--issue-date",
                       "2026-11-20", "--workers", "1")
    assert code == 0, output
    assert output.splitlines()[1:3] == [f"  credit note {CN} reverses IM-202610-000014",
                                        "  invoice IM-202610-000019 replaces IM-202610-000014"]
    head = output.splitlines()[-1]
    assert head.startswith(f"head: {MONTH} revision 1 sha256 ")
    (root / "head").write_text(head.split()[-1])
    other = MonthBuilder().customer("c1").app(1, "c1").day(1, d(1), dau=15_000)
    other.write(root / "other-in")
    code, output = cli("run", "--month", MONTH, "--input", str(root / "other-in"), "--out",
                       str(root / "other"), "--workers", "1", INCOMPLETE_OK)
    assert code == 0, output
    return root


@pytest.fixture(scope="module", autouse=True)
def cached_recomputation() -> Iterator[None]:
    """Every case recomputes the same inputs: recompute them once."""
    real = verify_module.compute_month
    cache: dict[tuple[object, ...], object] = {}

    def cached(*args: object, **options: object) -> object:
        key = (*args, *sorted(options.items()))
        if key not in cache:
            cache[key] = real(*args, **options)  # type: ignore[arg-type]
        return cache[key]

    verify_module.compute_month = cached  # type: ignore[assignment]
    yield
    verify_module.compute_month = real


@pytest.fixture
def month(reissued: Path, tmp_path: Path) -> Path:
    """A private copy of the published month (``<copy>/out/2026-10``), with links to the
    shared inputs (``<copy>/in``) and the other month (``<copy>/other``)."""
    shutil.copytree(reissued / "out", tmp_path / "out")
    (tmp_path / "in").symlink_to(reissued / "in")
    (tmp_path / "other").symlink_to(reissued / "other")
    return tmp_path / "out" / MONTH


def verify(month: Path, *extra: str) -> tuple[int, str]:
    inputs = (month.parents[1] / "in").resolve()
    return cli("verify", "--month", MONTH, "--input", str(inputs), "--out", str(month.parent),
               *extra)


# --- ways to damage a file ------------------------------------------------------------


def write(path: Path, data: bytes) -> None:
    """Overwrite a published (read-only) file the way someone with write access would."""
    os.chmod(path, 0o640)
    path.write_bytes(data)
    os.chmod(path, 0o440)


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    write(path, bytes(data))


def truncate(path: Path) -> None:
    write(path, path.read_bytes()[: path.stat().st_size // 2])


def rehash(manifest: Path, relative: str, data: bytes) -> None:
    """Record `data`'s SHA-256 for `relative` in `manifest`, as a forger would."""
    content = json.loads(manifest.read_bytes())
    content["outputs"][relative] = sha256(data)
    write(manifest, json.dumps(content, indent=2).encode())


def edit_manifest(manifest: Path, change: Callable[[dict[str, object]], None]) -> None:
    content = json.loads(manifest.read_bytes())
    change(content)
    write(manifest, json.dumps(content, indent=2).encode())


def paid_overlay(pdf: Path) -> bytes:
    """The PDF with a "PAID IN FULL" stamp on its first page (a valid PDF)."""
    with pikepdf.open(pdf) as doc:
        page = doc.pages[0]
        page.contents_add(doc.make_stream(b"BT /F1 48 Tf 100 400 Td (PAID IN FULL) Tj ET"))
        out = io.BytesIO()
        doc.save(out)
    return out.getvalue()


def edit_attachment(pdf: Path, name: str, edit: Callable[[bytes], bytes]) -> bytes:
    with pikepdf.open(pdf) as doc:
        data = doc.attachments[name].get_file().read_bytes()
        doc.attachments[name] = pikepdf.AttachedFileSpec(doc, edit(data), filename=name)
        out = io.BytesIO()
        doc.save(out)
    return out.getvalue()


# --- the catalogue ----------------------------------------------------------------------
# Each case damages `m` (the month folder) and returns the line verify must print.

INV = "invoices/IM-202610-000003.pdf"
EU_INV = "invoices/IM-202610-000014.pdf"
REV = "revisions/001"


def _pdf_byte(m: Path) -> str:
    flip_byte(m / INV)
    return f"{m / INV}: SHA-256 differs from {m / 'manifest.json'}"


def _pdf_truncated(m: Path) -> str:
    truncate(m / INV)
    return f"{m / INV}: SHA-256 differs from {m / 'manifest.json'}"


def _pdf_deleted(m: Path) -> str:
    (m / INV).unlink()
    return f"{m / INV}: missing (listed in {m / 'manifest.json'})"


def _pdf_from_another_month(m: Path) -> str:
    other = m.parents[1] / "other" / MONTH / "invoices/IM-202610-000001.pdf"
    write(m / "invoices/IM-202610-000001.pdf", other.read_bytes())
    return f"{m / 'invoices/IM-202610-000001.pdf'}: SHA-256 differs from {m / 'manifest.json'}"


def _pdfs_swapped(m: Path) -> str:
    one, two = m / "invoices/IM-202610-000001.pdf", m / "invoices/IM-202610-000002.pdf"
    a, b = one.read_bytes(), two.read_bytes()
    write(one, b)
    write(two, a)
    return f"{one}: embedded line items differ from {m / 'line_items.parquet'}"


def _pdfs_swapped_and_rehashed(m: Path) -> str:
    one, two = m / "invoices/IM-202610-000001.pdf", m / "invoices/IM-202610-000002.pdf"
    a, b = one.read_bytes(), two.read_bytes()
    write(one, b)
    write(two, a)
    rehash(m / "manifest.json", "invoices/IM-202610-000001.pdf", b)
    rehash(m / "manifest.json", "invoices/IM-202610-000002.pdf", a)
    return (f"{m / 'invoices.parquet'}: IM-202610-000001: pdf_sha256 differs from "
            f"invoices/IM-202610-000001.pdf in {m / 'manifest.json'}")


def _paid_in_full_and_rehashed(m: Path) -> str:
    stamped = paid_overlay(m / INV)
    write(m / INV, stamped)
    rehash(m / "manifest.json", INV, stamped)
    return (f"{m / 'invoices.parquet'}: IM-202610-000003: pdf_sha256 differs from "
            f"{INV} in {m / 'manifest.json'}")


def _stray_invoice(m: Path) -> str:
    shutil.copy(m / INV, m / "invoices/IM-202610-000099.pdf")
    return f"{m / 'invoices/IM-202610-000099.pdf'}: not listed in any manifest of {m}"


def _stray_credit_note_in_unnamed_folder(m: Path) -> str:
    (m / "credit_notes").mkdir()
    shutil.copy(m / REV / "credit_notes" / f"{CN}.pdf", m / "credit_notes/CN-202610-000099.pdf")
    return f"{m / 'credit_notes/CN-202610-000099.pdf'}: not listed in any manifest of {m}"


def _stray_in_revision(m: Path) -> str:
    shutil.copy(m / REV / "credit_notes" / f"{CN}.pdf",
                m / REV / "credit_notes/CN-202610-000002.pdf")
    return f"{m / REV / 'credit_notes/CN-202610-000002.pdf'}: not listed in any manifest of {m}"


def _parquet_byte(m: Path) -> str:
    flip_byte(m / "invoices.parquet")
    return f"{m / 'invoices.parquet'}: SHA-256 differs from {m / 'manifest.json'}"


def _parquet_truncated(m: Path) -> str:
    truncate(m / REV / "credit_notes.parquet")
    return f"{m / REV / 'credit_notes.parquet'}: SHA-256 differs from {m / REV / 'manifest.json'}"


def _parquet_deleted(m: Path) -> str:
    (m / REV / "line_items.parquet").unlink()
    return f"{m / REV / 'line_items.parquet'}: missing (listed in {m / REV / 'manifest.json'})"


def _parquet_from_another_month(m: Path) -> str:
    other = m.parents[1] / "other" / MONTH / "line_items.parquet"
    write(m / "line_items.parquet", other.read_bytes())
    return f"{m / 'line_items.parquet'}: SHA-256 differs from {m / 'manifest.json'}"


def _total_rewritten_and_rehashed(m: Path) -> str:
    path = m / REV / "invoices.parquet"
    invoices = pl.read_parquet(path).with_columns(
        total=pl.when(pl.col("invoice_number") == "IM-202610-000001")
        .then(pl.col("total") - 100).otherwise(pl.col("total")))
    buffer = io.BytesIO()
    invoices.write_parquet(buffer)
    write(path, buffer.getvalue())
    rehash(m / REV / "manifest.json", "invoices.parquet", buffer.getvalue())
    return f"{m / REV / 'manifest.json'}: totals differ from {m / REV / 'invoices.parquet'}"


def _credit_note_byte(m: Path) -> str:
    pdf = m / REV / "credit_notes" / f"{CN}.pdf"
    flip_byte(pdf)
    return f"{pdf}: SHA-256 differs from {m / REV / 'manifest.json'}"


def _credit_note_deleted(m: Path) -> str:
    pdf = m / REV / "credit_notes" / f"{CN}.pdf"
    pdf.unlink()
    return f"{pdf}: missing (listed in {m / REV / 'manifest.json'})"


def _manifest_field(key: str, change: Callable[[dict[str, object]], None]
                    ) -> Callable[[Path], str]:
    def damage(m: Path) -> str:
        edit_manifest(m / REV / "manifest.json", change)
        return f"{m / REV / 'manifest.json'}: field {key!r} differs from the recomputed month"
    damage.__name__ = f"_manifest_{key}"
    return damage


def _usd_total(c: dict) -> None:  # type: ignore[type-arg]
    c["totals"]["USD"]["total"] = "1.00"


def _invoice_count(c: dict) -> None:  # type: ignore[type-arg]
    c["counts"]["invoices"] -= 1


def _gates(c: dict) -> None:  # type: ignore[type-arg]
    c["month_gates"] = {"passed": False, "accepted_incomplete": True, "findings": []}


def _pricebook(c: dict) -> None:  # type: ignore[type-arg]
    c["pricebook_versions"][0]["customers"] += 1


def _manifest_outputs_dropped(m: Path) -> str:
    edit_manifest(m / "manifest.json", lambda c: c["outputs"].pop(INV))  # type: ignore
    return f"{m / INV}: not listed in any manifest of {m}"


def _chain_link(m: Path) -> str:
    edit_manifest(m / REV / "manifest.json",
                  lambda c: c["revision"].update(previous_manifest_sha256="0" * 64))  # type: ignore
    return (f"{m / REV / 'manifest.json'}: previous_manifest_sha256 does not match "
            f"{m / 'manifest.json'}")


def _first_manifest_edited(m: Path) -> str:
    edit_manifest(m / "manifest.json", _usd_total)
    return (f"{m / REV / 'manifest.json'}: previous_manifest_sha256 does not match "
            f"{m / 'manifest.json'}")


def _revision_manifest_deleted(m: Path) -> str:
    (m / REV / "manifest.json").unlink()
    return f"{m / REV / 'manifest.json'}: missing or unreadable"


def _revision_manifest_not_json(m: Path) -> str:
    write(m / REV / "manifest.json", b"{not json")
    return f"{m / REV / 'manifest.json'}: missing or unreadable"


def _embedded_line_items(m: Path) -> str:
    pdf = m / "invoices/IM-202610-000001.pdf"
    data = edit_attachment(pdf, "line_items.csv",  # its last line left out
                           lambda b: b.rstrip(b"\n").rsplit(b"\n", 1)[0] + b"\n")
    write(pdf, data)
    rehash(m / "manifest.json", "invoices/IM-202610-000001.pdf", data)
    return f"{pdf}: embedded line items differ from {m / 'line_items.parquet'}"


def _embedded_xml(m: Path) -> str:
    pdf = m / EU_INV
    data = edit_attachment(pdf, "factur-x.xml", lambda b: b.replace(
        b"<ram:GrandTotalAmount>", b"<ram:GrandTotalAmount>1", 1))
    write(pdf, data)
    return f"{pdf}: factur-x.xml differs from {m / 'invoices.parquet'}"


def _credit_note_xml(m: Path) -> str:
    pdf = m / REV / "credit_notes" / f"{CN}.pdf"
    data = edit_attachment(pdf, "factur-x.xml", lambda b: b.replace(
        b"<ram:GrandTotalAmount>", b"<ram:GrandTotalAmount>1", 1))
    write(pdf, data)
    return f"{pdf}: factur-x.xml differs from credit_notes.parquet"


def _made_writable(m: Path) -> str:
    os.chmod(m / "anomalies.parquet", 0o640)
    return f"{m / 'anomalies.parquet'}: writable (published files are read-only)"


def _revision_renumbered(m: Path) -> str:
    (m / REV).rename(m / "revisions/002")
    return f"{m / 'revisions/002/manifest.json'}: missing or unreadable (it says revision 1)"


CASES: list[Callable[[Path], str]] = [
    _pdf_byte, _pdf_truncated, _pdf_deleted, _pdf_from_another_month, _pdfs_swapped,
    _pdfs_swapped_and_rehashed, _paid_in_full_and_rehashed, _stray_invoice,
    _stray_credit_note_in_unnamed_folder, _stray_in_revision, _parquet_byte,
    _parquet_truncated, _parquet_deleted, _parquet_from_another_month,
    _total_rewritten_and_rehashed, _credit_note_byte, _credit_note_deleted,
    _manifest_field("totals", _usd_total), _manifest_field("counts", _invoice_count),
    _manifest_field("month_gates", _gates), _manifest_field("pricebook_versions", _pricebook),
    _manifest_outputs_dropped, _chain_link, _first_manifest_edited, _revision_manifest_deleted,
    _revision_manifest_not_json, _embedded_line_items, _embedded_xml, _credit_note_xml,
    _made_writable, _revision_renumbered,
]


def test_the_undamaged_month_verifies(month: Path, reissued: Path) -> None:
    code, output = verify(month, "--expect-head", (reissued / "head").read_text())
    assert code == 0, output
    assert output.splitlines()[-2:] == [
        "  read-only: 33 published file(s)",
        f"head: {MONTH} revision 1 sha256 {(reissued / 'head').read_text()}"]


@pytest.mark.parametrize("damage", CASES, ids=[c.__name__.strip("_") for c in CASES])
def test_every_kind_of_damage_is_caught(damage: Callable[[Path], str], month: Path) -> None:
    expected = damage(month)
    code, output = verify(month)
    assert code == ExitCode.VERIFY_MISMATCH, output
    assert any(line.startswith(expected) for line in output.splitlines()), output


def test_a_deleted_latest_revision_is_caught_with_the_head_the_reissue_printed(
        month: Path, reissued: Path) -> None:
    head = (reissued / "head").read_text()
    shutil.rmtree(month / REV)
    code, output = verify(month)  # the month looks like its previous state...
    assert code == ExitCode.VERIFY_MISMATCH  # ...except that the inputs moved on
    code, output = verify(month, "--expect-head", head)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"{MONTH}: head is revision 0 (" in output and f"not the expected {head}" in output


def test_a_deleted_revisions_folder_is_caught_with_the_head(month: Path, reissued: Path) -> None:
    head = (reissued / "head").read_text()
    shutil.rmtree(month / "revisions")
    code, output = verify(month, "--expect-head", head)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"not the expected {head}: a revision was deleted or rewritten" in output


def test_reissue_refuses_to_spend_numbers_again_after_a_deleted_revision(
        month: Path, reissued: Path) -> None:
    head = (reissued / "head").read_text()
    shutil.rmtree(month / REV)
    shutil.rmtree(month.parent / f"{MONTH}.heads")  # the records beside it deleted too
    code, output = cli("reissue", "--month", MONTH, "--input", str(reissued / "in"), "--out",
                       str(month.parent), "--reason", "again", "--expect-head", head,
                       "--workers", "1")
    assert code == ExitCode.VERIFY_MISMATCH
    now = sha256((month / "manifest.json").read_bytes())
    assert output == (f"Error: {month}: head is revision 0 ({now}), not the expected {head}: "
                      "a revision was deleted, "
                      "rewritten or added since; nothing was written and no number was used\n")
    assert list((month / "revisions").iterdir()) == []


def test_verify_never_crashes_on_a_month_without_a_manifest(month: Path) -> None:
    (month / "manifest.json").unlink()
    code, output = verify(month)
    assert code == ExitCode.VERIFY_MISMATCH
    assert output.splitlines()[0].startswith(f"{month / 'manifest.json'}: missing or unreadable")


def test_a_total_in_the_manifest_is_exact(month: Path) -> None:
    """The manifest's totals are compared as exact strings, to the cent."""
    def cent(c: dict) -> None:  # type: ignore[type-arg]
        usd = Decimal(c["totals"]["USD"]["total"]) + Decimal("0.01")
        c["totals"]["USD"]["total"] = str(usd)
    edit_manifest(month / REV / "manifest.json", cent)
    code, output = verify(month)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"{month / REV / 'manifest.json'}: field 'totals' differs" in output


def test_the_head_records_beside_the_month_name_a_deleted_revision(month: Path) -> None:
    """Without the head kept elsewhere, the records `reissue` left beside the month (in
    ``<out>/2026-10.heads/``) still show that revision 1 existed."""
    record = month.parent / f"{MONTH}.heads/001.json"
    assert json.loads(record.read_bytes())["credit_note_seq"] == 1
    shutil.rmtree(month / REV)
    code, output = verify(month)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"{record}: records revision 1 (" in output
    assert "which the month no longer holds: a revision was deleted" in output
    code, output = cli("reissue", "--month", MONTH, "--input", str(month.parents[1] / "in"),
                       "--out", str(month.parent), "--reason", "again", "--workers", "1")
    assert code == ExitCode.VERIFY_MISMATCH
    assert output.startswith(f"Error: {record}: records revision 1 (")
    assert output.endswith("nothing was written and no number was used\n")
    assert list((month / "revisions").iterdir()) == []


def test_a_deleted_month_is_not_published_again_over_its_head_records(month: Path) -> None:
    shutil.rmtree(month)
    code, output = cli("run", "--month", MONTH, "--input", str(month.parents[1] / "in"),
                       "--out", str(month.parent), "--workers", "1")
    assert code == ExitCode.VERIFY_MISMATCH
    assert output.startswith(f"Error: {month.parent / MONTH}.heads/000.json: records revision 0")
    assert not month.exists()
