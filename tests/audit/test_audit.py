"""Auditor-grade output: PDF/A-3b with embedded line items, identical bytes on rerun,
and `invoicing verify` catching any change to a published file or to the inputs."""

from __future__ import annotations

import hashlib
import io
import shutil
from decimal import Decimal
from pathlib import Path

import pikepdf
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from invoicing.cli import main
from invoicing.core.errors import ExitCode
from tests.conftest import sample_copy

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "2026-10"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory,
              sample_published: tuple[Path, str, str]) -> Path:
    """The sample month as published once for the test process (copied inputs and
    output: the run id does not depend on where the inputs are)."""
    return sample_copy(sample_published, tmp_path_factory.mktemp("audit"))


@pytest.fixture
def copy(published: Path, tmp_path: Path) -> Path:
    """A private copy of the published month that a test may damage."""
    shutil.copytree(published / "in", tmp_path / "in")
    shutil.copytree(published / "out", tmp_path / "out")
    return tmp_path


def verify(root: Path) -> tuple[int, str]:
    return run("verify", "--month", "2026-10", "--input", str(root / "in"),
               "--out", str(root / "out"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pdf_is_pdfa3b_with_its_line_items_attached(published: Path) -> None:
    month = published / "out/2026-10"
    items = pl.read_parquet(month / "line_items.parquet")
    for pdf in sorted((month / "invoices").glob("*.pdf")):
        with pikepdf.open(pdf) as doc:
            meta = doc.open_metadata()
            assert (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) == ("3", "B")
            assert meta.get("dc:title") == pdf.stem
            assert str(doc.Root.Lang) in {"en-US", "ko-KR", "zh-Hans-CN"}
            data = doc.attachments["line_items.csv"].get_file().read_bytes()
        embedded = pl.read_csv(io.BytesIO(data), schema=items.schema)
        assert embedded.equals(items.filter(pl.col("invoice_number") == pdf.stem)), pdf.name


def test_two_runs_give_identical_bytes(published: Path, tmp_path: Path) -> None:
    shutil.copytree(SAMPLE, tmp_path / "elsewhere")
    code, output = run("run", "--month", "2026-10", "--input", str(tmp_path / "elsewhere"),
                       "--out", str(tmp_path / "out"))
    assert code == 0, output
    first, second = published / "out/2026-10", tmp_path / "out/2026-10"
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert len([f for f in files if f.suffix == ".pdf"]) == 18
    for f in files:
        assert sha256(first / f) == sha256(second / f), f


def test_verify_passes_on_a_fresh_run(published: Path) -> None:
    code, output = verify(published)
    assert code == 0, output
    assert output == (
        "OK 2026-10: 1 revision(s), 23 files, 168 line items match\n"
        "  documents: 18 invoice(s) issued, 18 current (embedded line items match), "
        "0 credit note(s)\n"
        "  current totals: CNY CN¥24,024.44 (4 invoices) · EUR €4,194.13 (5 invoices) · "
        "KRW ₩7,141,096 (4 invoices) · "
        "USD $14,970.42 (5 invoices)\n"
        "  read-only: 24 published file(s)\n"
        f"head: 2026-10 revision 0 sha256 {sha256(published / 'out/2026-10/manifest.json')}\n")


def test_verify_names_a_pdf_with_one_flipped_byte(copy: Path) -> None:
    pdf = copy / "out/2026-10/invoices/IM-202610-000003.pdf"
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    pdf.write_bytes(bytes(data))
    code, output = verify(copy)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"{pdf}: SHA-256 differs from {copy / 'out/2026-10/manifest.json'}" in output
    # The flipped byte may also break the embedded copy of the lines: one or two lines.
    assert output.splitlines()[-1].endswith(f"mismatch(es) in {copy / 'out/2026-10'}")


def test_verify_names_line_items_with_one_changed_amount(copy: Path) -> None:
    path = copy / "out/2026-10/line_items.parquet"
    items = pl.read_parquet(path)
    target = items.filter(pl.col("item") == "plan_fee", pl.col("amount") > 0).row(0, named=True)
    changed = items.with_columns(
        amount=pl.when((pl.col("sdk_app_id") == target["sdk_app_id"])
                       & (pl.col("item") == "plan_fee"))
        .then(pl.col("amount") + 1).otherwise(pl.col("amount"))
    )
    pq.write_table(changed.to_arrow(), path)
    code, output = verify(copy)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"{path}: SHA-256 differs from" in output
    assert (target["customer_id"], target["sdk_app_id"], target["amount"]) == (
        "C1001", 1400000102, Decimal("1199"))
    assert (f"{path}: customer C1001 app 1400000102 plan_fee: published $1,200.00 "
            "(Flagship), recomputed $1,199.00 (Flagship)") in output


def test_verify_names_an_edited_usage_file(copy: Path) -> None:
    path = copy / "in/usage/region=us/2026-10-a.parquet"
    usage = pl.read_parquet(path)
    usage = usage.with_columns(
        dau=pl.when(pl.int_range(pl.len()) == 0).then(pl.col("dau") + 1).otherwise(pl.col("dau"))
    )
    pq.write_table(usage.to_arrow(), path)
    code, output = verify(copy)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"{path}: input differs from {copy / 'out/2026-10/manifest.json'} (SHA-256)" in output


def test_verify_compares_embedded_line_items(copy: Path) -> None:
    """A PDF replaced by a well-formed one with other numbers is caught twice."""
    month = copy / "out/2026-10"
    one, two = month / "invoices/IM-202610-000001.pdf", month / "invoices/IM-202610-000002.pdf"
    one.write_bytes(two.read_bytes())
    code, output = verify(copy)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"{one}: SHA-256 differs from" in output
    assert f"{one}: embedded line items differ from the recomputed month" in output
