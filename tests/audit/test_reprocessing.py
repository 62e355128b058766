"""Finance reprocessing a month: retry safety, diff, reissue with credit notes, preview,
locking. Every path goes through the CLI with its exact exit code."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from filelock import FileLock
from pypdf import PdfReader

from invoicing.cli import main
from invoicing.core.errors import ExitCode
from sample_data import correct_export
from tests.builders import INCOMPLETE_OK, MonthBuilder, d

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "2026-10"


def cli(*args: str) -> Result:
    """A command on one worker; the small hand-built month needs the gates overridden."""
    extra = ["--workers", "1", INCOMPLETE_OK] if args[0] in ("run", "reissue", "preview") else []
    return CliRunner().invoke(main, [*args, *extra])


def month_args(root: Path) -> list[str]:
    return ["--month", "2026-10", "--input", str(root / "in"), "--out", str(root / "out")]


def small_month() -> MonthBuilder:
    b = MonthBuilder()
    b.customer("c1").customer("c2").customer("c3").customer("c4-free")
    b.app(1, "c1").app(2, "c2", plan="flagship").app(3, "c3").app(4, "c4-free", plan="free")
    b.day(1, d(1), dau=15_000).day(2, d(2), dau=100).day(3, d(3), dau=100).day(4, d(4), dau=10)
    return b


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def published(tmp_path: Path) -> Path:
    small_month().write(tmp_path / "in")
    result = cli("run", *month_args(tmp_path))
    assert result.exit_code == 0, result.output
    return tmp_path


def change_usage(root: Path, app: int, dau: int) -> None:
    path = root / "in/usage/part=0/usage.parquet"
    usage = pl.read_parquet(path).with_columns(
        dau=pl.when(pl.col("sdk_app_id") == app).then(pl.lit(dau, dtype=pl.Int64))
        .otherwise(pl.col("dau")))
    pq.write_table(usage.to_arrow(), path)


def test_diff_shows_changed_customers_and_lines(published: Path) -> None:
    change_usage(published, 1, 35_000)  # 1 block -> 3 blocks
    change_usage(published, 4, 50)  # Free: no charge changes, only the input hash
    result = cli("diff", *month_args(published))
    assert result.exit_code == 0, result.output
    assert result.output == (
        "2026-10: 1 customer(s) changed (compared with revision 0)\n"
        "  changed inputs: usage/part=0/usage.parquet\n"
        "\n"
        "Changed charges:\n"
        "  invoice           customer  app  charge       before" + " " * 54 + "after"
        + " " * 56 + "amount before  amount after\n"
        "  IM-202610-000001  c1        1    DAU overage"
        "  Pro, Peak DAU 15,000 on October 1, 2026, 1 block of 10,000"
        "  Pro, Peak DAU 35,000 on October 1, 2026, 3 blocks of 10,000"
        "        $149.99       $449.97\n"
        "\n"
        "Changed totals:\n"
        "  invoice           customer  subtotal            tax             total"
        "               difference\n"
        "  IM-202610-000001  c1        $548.99 -> $848.97  $0.00 -> $0.00  $548.99 -> $848.97"
        "    +$299.98\n"
    )
    as_json = json.loads(cli("diff", *month_args(published), "--format", "json").output)
    evidence = {"plan": "pro", "unit_price": "149.990000", "peak_date": "2026-10-01",
                "free_quota": 10000, "block": 10000}
    assert as_json["customers"] == [{
        "customer_id": "c1", "currency": "USD", "invoice_number": "IM-202610-000001",
        "old_total": "548.99", "new_total": "848.97", "old_subtotal": "548.99",
        "new_subtotal": "848.97", "old_tax": "0.00", "new_tax": "0.00",
        "document_changes": [],
        "lines": [{"sdk_app_id": 1, "item": "dau_overage", "plan": "pro",
                   "old_amount": "149.99", "new_amount": "449.97",
                   "old": {**evidence, "quantity": 1, "peak_value": 15000, "excess": 5000},
                   "new": {**evidence, "quantity": 3, "peak_value": 35000, "excess": 25000}}],
    }]
    assert not (published / "out/2026-10/revisions").exists()


@pytest.mark.parametrize("command", [["diff"], ["verify"], ["reissue", "--reason", "x"]])
def test_an_unpublished_month_has_its_own_exit_code(tmp_path: Path, command: list[str]) -> None:
    small_month().write(tmp_path / "in")
    result = cli(*command, *month_args(tmp_path))
    assert result.exit_code == ExitCode.NOT_PUBLISHED == 10
    assert result.output == (f"Error: {tmp_path / 'out/2026-10'}: the month has not been "
                             "published; use 'invoicing run' first\n")


def test_reissue_credits_and_replaces_only_changed_customers(published: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.setenv("INVOICING_OPERATOR", "finance@example.com")
    before = snapshot(published / "out/2026-10")
    change_usage(published, 2, 20_001)  # c2: 2 blocks of DAU overage
    result = cli("reissue", *month_args(published), "--reason", "export fixed",
                 "--issue-date", "2026-11-20")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"2026-10: wrote revision 1 to {published / 'out/2026-10/revisions/001'}\n"
        "  credit note CN-202610-000001 reverses IM-202610-000002\n"
        "  invoice IM-202610-000004 replaces IM-202610-000002\n"
        f"head: 2026-10 revision 1 sha256 {manifest_sha256(published, 'revisions/001/')}\n"
    )
    rev = published / "out/2026-10/revisions/001"
    # Nothing issued was touched; only the revision folder was added.
    after = snapshot(published / "out/2026-10")
    assert {k: v for k, v in after.items() if not k.startswith("revisions/")} == before
    state = pl.read_parquet(rev / "invoices.parquet").sort("customer_id")
    assert state.select("customer_id", "invoice_number", "issued_in_revision", "replaces",
                        "total").rows() == [
        ("c1", "IM-202610-000001", 0, None, pl.Series([548.99]).cast(pl.Decimal(38, 6))[0]),
        ("c2", "IM-202610-000004", 1, "IM-202610-000002",
         pl.Series(["1498.98"]).cast(pl.Decimal(38, 6))[0]),
        ("c3", "IM-202610-000003", 0, None, pl.Series(["399"]).cast(pl.Decimal(38, 6))[0]),
        ("c4-free", None, None, None, pl.Series(["0"]).cast(pl.Decimal(38, 6))[0]),
    ]
    notes = pl.read_parquet(rev / "credit_notes.parquet")
    assert notes.select("credit_note_number", "credits_invoice", "customer_id").rows() == [
        ("CN-202610-000001", "IM-202610-000002", "c2")]
    assert str(notes["total"][0]) == "-1199.000000"
    manifest = json.loads((rev / "manifest.json").read_text())
    assert manifest["revision"]["reason"] == "export fixed"
    assert manifest["revision"]["operator"] == "finance@example.com"
    assert manifest["revision"]["issue_date"] == "2026-11-20"
    assert manifest["revision"]["previous_manifest_sha256"] == before["manifest.json"]
    text = "".join(p.extract_text() for p in PdfReader(rev / "credit_notes/CN-202610-000001.pdf")
                   .pages)
    assert "Credit note" in text and "IM-202610-000002" in text and "-$1,199.00" in text
    assert "Peak DAU" in text  # the same evidence as the invoice it reverses
    replacement = "".join(p.extract_text() for p in PdfReader(
        rev / "invoices/IM-202610-000004.pdf").pages)
    assert "IM-202610-000002" in replacement and "$1,498.98" in replacement
    # A cron retry of `run` with the corrected inputs is now a no-op.
    retry = cli("run", *month_args(published))
    assert retry.exit_code == 0 and "already issued from identical inputs" in retry.output
    assert cli("verify", *month_args(published)).exit_code == 0


def test_reissue_twice_keeps_numbers_gapless_and_issued_bytes(published: Path) -> None:
    issued: dict[str, str] = snapshot(published / "out/2026-10")
    change_usage(published, 1, 25_000)
    assert cli("reissue", *month_args(published), "--reason", "first fix").exit_code == 0
    issued.update({f"revisions/001/{k}": v for k, v in
                   snapshot(published / "out/2026-10/revisions/001").items()})
    change_usage(published, 1, 45_000)
    change_usage(published, 3, 10_001)
    second = cli("reissue", *month_args(published), "--reason", "second fix")
    assert second.exit_code == 0, second.output
    now = snapshot(published / "out/2026-10")
    assert {k: now[k] for k in issued} == issued  # no issued byte changed

    invoice_numbers: list[str] = []
    credit_numbers: list[str] = []
    for folder in [published / "out/2026-10",
                   *sorted((published / "out/2026-10/revisions").iterdir())]:
        invoice_numbers += [p.stem for p in (folder / "invoices").glob("*.pdf")]
        credit_numbers += [p.stem for p in (folder / "credit_notes").glob("*.pdf")]
    assert sorted(invoice_numbers) == [f"IM-202610-{i:06d}" for i in range(1, 7)]
    assert sorted(credit_numbers) == [f"CN-202610-{i:06d}" for i in range(1, 4)]
    chain = [json.loads((published / "out/2026-10/revisions" / r / "manifest.json").read_text())
             for r in ("001", "002")]
    assert chain[1]["revision"]["previous_manifest_sha256"] == now["revisions/001/manifest.json"]
    assert chain[1]["revision"]["credit_notes"] == [
        {"number": "CN-202610-000002", "credits": "IM-202610-000004"},
        {"number": "CN-202610-000003", "credits": "IM-202610-000003"},
    ]
    verify = cli("verify", *month_args(published))
    assert verify.exit_code == 0, verify.output
    assert verify.output.startswith("OK 2026-10: 3 revision(s)")


def manifest_sha256(published: Path, folder: str = "") -> str:
    """The head a command prints: SHA-256 of `<out>/2026-10/<folder>manifest.json`."""
    return hashlib.sha256((published / f"out/2026-10/{folder}manifest.json").read_bytes()
                          ).hexdigest()


def test_reissue_with_nothing_changed_writes_nothing(published: Path) -> None:
    result = cli("reissue", *month_args(published), "--reason", "just checking")
    assert result.exit_code == 0
    assert result.output == ("2026-10: nothing changed since revision 0; nothing written\n"
                             f"head: 2026-10 revision 0 sha256 {manifest_sha256(published)}\n")
    assert not (published / "out/2026-10/revisions").exists()


def test_preview_publishes_nothing_and_marks_drafts(tmp_path: Path) -> None:
    small_month().write(tmp_path / "in")
    result = cli("preview", "--month", "2026-10", "--input", str(tmp_path / "in"),
                 "--drafts", str(tmp_path / "drafts"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:6] == [
        "2026-10 preview (nothing published; numbers are provisional)",
        "  c1  IM-202610-000001  USD 548.99",
        "  c2  IM-202610-000002  USD 1199.00",
        "  c3  IM-202610-000003  USD 399.00",
        "  c4-free  (zero total)  USD 0.00",
        "  total USD: 2146.99 (3 invoices)",
    ]
    drafts = sorted(p.name for p in (tmp_path / "drafts").iterdir())
    assert drafts == [f"DRAFT-IM-202610-00000{i}.pdf" for i in (1, 2, 3)]
    reader = PdfReader(tmp_path / "drafts" / drafts[0])
    assert all("DRAFT" in page.extract_text() for page in reader.pages)
    assert not (tmp_path / "out").exists()
    # Numbers were not consumed: a real run still starts at 1.
    assert cli("run", *month_args(tmp_path)).exit_code == 0
    assert (tmp_path / "out/2026-10/invoices/IM-202610-000001.pdf").exists()


def test_a_locked_month_fails_at_once(published: Path) -> None:
    lock = FileLock(str(published / "out/.2026-10.lock"))
    with lock.acquire(timeout=0):
        for command in (["run"], ["verify"], ["reissue", "--reason", "x"]):
            result = cli(*command, *month_args(published))
            assert result.exit_code == ExitCode.LOCKED, command
            assert result.output == (f"Error: {published / 'out/2026-10'}: another invoicing "
                                     "process is working on this month; try again when it "
                                     "has finished\n")


def test_a_killed_lock_holder_does_not_block(published: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from filelock import FileLock; "
         f"l = FileLock({str(published / 'out/.2026-10.lock')!r}); l.acquire(); "
         "print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert cli("verify", *month_args(published)).exit_code == ExitCode.LOCKED
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    deadline = time.monotonic() + 10
    while (code := cli("verify", *month_args(published)).exit_code) == ExitCode.LOCKED:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert code == 0


def test_run_on_a_corrected_export_is_refused(tmp_path: Path) -> None:
    """The README's walk-through (tests/e2e/test_readme_walkthrough.py): `run` on the
    corrected export of an issued month stops with exit 5 and points to diff/reissue."""
    assert cli("run", *month_args_of(SAMPLE, tmp_path), "--workers", "1").exit_code == 0
    correct_export.correct(tmp_path / "fixed")
    refused = cli("run", *month_args_of(tmp_path / "fixed", tmp_path))
    assert refused.exit_code == ExitCode.ALREADY_PUBLISHED
    assert "Use 'invoicing diff'" in refused.output
    assert not (tmp_path / "out/2026-10/revisions").exists()


def month_args_of(input_dir: Path, root: Path) -> list[str]:
    return ["--month", "2026-10", "--input", str(input_dir), "--out", str(root / "out")]
