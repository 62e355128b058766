"""`invoicing send` and `invoicing status` against a real SMTP server (aiosmtpd on
127.0.0.1): every document once, in order, with the published bytes; reruns send
nothing; refusals, a bad address and a dropped connection are recorded and reported."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from invoicing.cli import main
from invoicing.core.errors import ExitCode
from sample_data import correct_export
from tests.builders import MonthBuilder, d, run_cli
from tests.conftest import sample_copy
from tests.smtp_server import Mailbox, attachments, smtp_server

__all__ = ["smtp_server"]  # the fixture, used by name

SELLER_DOMAIN = "imcloud.example"


def send(root: Path, url: str, *extra: str, input_dir: str = "in") -> Result:
    return CliRunner().invoke(main, [
        "send", "--month", "2026-10", "--input", str(root / input_dir), "--out",
        str(root / "out"), "--smtp", url, "--retry-delay", "0", *extra])


def ledger(root: Path) -> list[dict[str, object]]:
    path = root / "out" / "2026-10.delivery" / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def published_files(month: Path) -> dict[str, bytes]:
    """Every published PDF of the month (all revisions), by file name."""
    return {p.name: p.read_bytes() for p in month.rglob("*.pdf")}


def test_sample_month_and_its_reissue_reach_each_customer_once(
        sample_published: tuple[Path, str, str], tmp_path: Path,
        smtp_server: tuple[Mailbox, str]) -> None:
    mailbox, url = smtp_server
    root = sample_copy(sample_published, tmp_path)
    result = send(root, url)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"2026-10: 18 document(s) of 1 revision(s); 18 sent to {url}\n"
        "  sent: 18, already sent: 0, failed: 0, not attempted: 0\n")

    customers = pl.read_csv(root / "in" / "customers.csv")
    email_of = dict(zip(customers["customer_id"], customers["email"], strict=True))
    invoices = pl.read_parquet(root / "out/2026-10/invoices.parquet").drop_nulls(
        "invoice_number").sort("invoice_number")
    pdfs = published_files(root / "out/2026-10")
    peppol = root / "out/2026-10/invoices/IM-202610-000016.xml"  # C1017's, beside its PDF
    messages = mailbox.messages()
    assert [m["X-Invoicing-Document"] for _, m in messages] == invoices["invoice_number"].to_list()
    for (rcpt, message), row in zip(messages, invoices.iter_rows(named=True), strict=True):
        number = row["invoice_number"]
        assert rcpt == [email_of[row["customer_id"]]]
        assert message["Message-ID"] == f"<{row['pdf_sha256']}@{SELLER_DOMAIN}>"
        xml = {peppol.name: peppol.read_bytes()} if number == "IM-202610-000016" else {}
        assert attachments(message) == {f"{number}.pdf": pdfs[f"{number}.pdf"], **xml}
    assert messages[0][1]["Subject"] == "Invoice IM-202610-000001 · October 2026 · $2,146.97"
    korean = messages[5][1]
    assert korean["Subject"] == "청구서 IM-202610-000006 · 2026년 10월 · ₩3,248,300"
    body = korean.get_body(("plain",)).get_content()
    assert "납부 기한: 2026년 11월 3일" in body and "청구 금액: ₩3,248,300" in body

    # A rerun sends nothing.
    again = send(root, url)
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[1] == (
        "  sent: 0, already sent: 18, failed: 0, not attempted: 0")
    assert len(mailbox.received) == 18

    # A reissue: the credit note first, then its replacement; nothing else again.
    correct_export.correct(root / "fixed")
    reissued = CliRunner().invoke(main, [
        "reissue", "--month", "2026-10", "--input", str(root / "fixed"), "--out",
        str(root / "out"), "--reason", "US usage export corrected", "--workers", "1"])
    assert reissued.exit_code == 0, reissued.output
    third = send(root, url, input_dir="fixed")
    assert third.exit_code == 0, third.output
    assert third.stdout.splitlines()[1] == (
        "  sent: 2, already sent: 18, failed: 0, not attempted: 0")
    new = mailbox.messages()[18:]
    assert [(rcpt, m["X-Invoicing-Document"]) for rcpt, m in new] == [
        (["ap@bluebird-social.example"], "CN-202610-000001"),
        (["ap@bluebird-social.example"], "IM-202610-000019")]
    pdfs = published_files(root / "out/2026-10")
    for _, message in new:
        name = f"{message['X-Invoicing-Document']}.pdf"
        assert attachments(message) == {name: pdfs[name]}
    assert new[0][1]["Subject"] == "Credit note CN-202610-000001 · October 2026 · -$2,596.96"
    assert "Credits invoice: IM-202610-000002" in new[0][1].get_body(("plain",)).get_content()
    assert "Replaces invoice: IM-202610-000002" in new[1][1].get_body(("plain",)).get_content()

    status = CliRunner().invoke(main, ["status", "--month", "2026-10", "--out",
                                       str(root / "out")])
    assert status.exit_code == 0, status.output
    lines = status.stdout.splitlines()
    assert lines[0] == "2026-10: 20 document(s): 20 sent, 0 failed, 0 in flight, 0 not sent yet"
    assert lines[1].split() == ["document", "kind", "revision", "customer", "status", "attempts",
                                "recipient", "last", "record", "reply"]
    assert lines[20].split()[:7] == ["CN-202610-000001", "credit", "note", "1", "C1002", "sent",
                                     "1"]


def small_month(emails: dict[str, str] | None = None) -> MonthBuilder:
    b = MonthBuilder()
    for i, cid in enumerate(("c1", "c2", "c3", "c4"), start=1):
        b.customer(cid).app(i, cid).day(i, d(1), dau=15_000)
        if emails and cid in emails:
            b.customers[-1]["email"] = emails[cid]
    return b


@pytest.fixture(scope="module")
def small_published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four customers, one invoice each, published once for the module (c3's e-mail is
    not an address); each test works on a copy (`published_small`)."""
    root = tmp_path_factory.mktemp("small")
    small_month({"c3": "Accounts Payable"}).write(root / "in")
    result = run_cli(root / "in", root / "out")
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def published_small(small_published: Path, tmp_path: Path) -> Path:
    shutil.copytree(small_published, tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_refusals_and_a_bad_address_are_recorded_and_the_month_goes_on(
        published_small: Path, smtp_server: tuple[Mailbox, str]) -> None:
    mailbox, url = smtp_server
    root = published_small
    mailbox.refuse["c1@example.com"] = "550 5.1.1 no such mailbox"
    mailbox.temporary["c2@example.com"] = 1
    result = send(root, url)
    assert result.exit_code == ExitCode.NOT_DELIVERED, result.output
    assert result.stdout.splitlines() == [
        f"2026-10: 4 document(s) of 1 revision(s); 2 sent to {url}",
        "  sent: 2, already sent: 0, failed: 2, not attempted: 0",
        "  failed, refused by the server (5xx): 1",
        "    IM-202610-000001 to 'c1@example.com': 550 5.1.1 no such mailbox",
        "  failed, the customer's e-mail is not an address: 1",
        "    IM-202610-000003 to 'Accounts Payable': 'Accounts Payable' is not an e-mail address",
    ]
    assert result.stderr.splitlines()[-1] == (
        "Error: 2026-10: 2 document(s) not delivered; fix what the summary names, then run "
        "'invoicing send' again (it sends only those)")
    assert [(r, m["X-Invoicing-Document"]) for r, m in mailbox.messages()] == [
        (["c2@example.com"], "IM-202610-000002"), (["c4@example.com"], "IM-202610-000004")]
    assert [(r["document"], r["attempt"], r["status"], r["reply"]) for r in ledger(root)] == [
        ("IM-202610-000001", 1, "sending", None),
        ("IM-202610-000001", 1, "perm-failed", "550 5.1.1 no such mailbox"),
        ("IM-202610-000002", 1, "sending", None),
        ("IM-202610-000002", 1, "temp-failed", "451 4.3.0 mailbox busy, try again later"),
        ("IM-202610-000002", 2, "sending", None),
        ("IM-202610-000002", 2, "accepted", "250 2.0.0 Ok: queued"),
        ("IM-202610-000003", 1, "perm-failed",
         "'Accounts Payable' is not an e-mail address"),
        ("IM-202610-000004", 1, "sending", None),
        ("IM-202610-000004", 1, "accepted", "250 2.0.0 Ok: queued"),
    ]

    # Once the mailbox exists again, a rerun sends just the refused one.
    del mailbox.refuse["c1@example.com"]
    rerun = send(root, url)
    assert rerun.exit_code == ExitCode.NOT_DELIVERED, rerun.output
    assert rerun.stdout.splitlines()[1] == "  sent: 1, already sent: 2, failed: 1, not attempted: 0"
    assert [m["X-Invoicing-Document"] for _, m in mailbox.messages()][2:] == ["IM-202610-000001"]
    status = CliRunner().invoke(main, ["status", "--month", "2026-10", "--out", str(root / "out")])
    assert status.stdout.splitlines()[0] == (
        "2026-10: 4 document(s): 3 sent, 1 failed, 0 in flight, 0 not sent yet")
    assert status.stdout.splitlines()[4].split()[:6] == [
        "IM-202610-000003", "invoice", "0", "c3", "failed", "2"]


def test_a_dropped_connection_is_retried_and_nothing_is_sent_twice(
        published_small: Path, smtp_server: tuple[Mailbox, str]) -> None:
    mailbox, url = smtp_server
    root = published_small
    mailbox.drop_at = {2}
    result = send(root, url)
    assert result.exit_code == ExitCode.NOT_DELIVERED, result.output  # c3: not an address
    assert result.stdout.splitlines()[1] == (
        "  sent: 3, already sent: 0, failed: 1, not attempted: 0")
    assert [m["X-Invoicing-Document"] for _, m in mailbox.messages()] == [
        "IM-202610-000001", "IM-202610-000002", "IM-202610-000004"]
    dropped = [r for r in ledger(root) if r["status"] == "temp-failed"]
    assert [(r["document"], r["reason"]) for r in dropped] == [("IM-202610-000002",
                                                                "connection")]
    assert str(dropped[0]["reply"]).startswith("connection lost")


def test_an_unreachable_server_stops_the_month_with_exit_14(published_small: Path) -> None:
    from tests.smtp_server import free_port

    root = published_small
    result = send(root, f"smtp://127.0.0.1:{free_port()}", "--attempts", "2")
    assert result.exit_code == ExitCode.NOT_DELIVERED, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "  sent: 0, already sent: 0, failed: 1, not attempted: 3"
    assert lines[2] == "  failed, server unreachable or connection lost at every attempt: 1"
    assert [(r["status"], str(r["reply"])[:30]) for r in ledger(root)] == [
        ("temp-failed", "cannot reach smtp://127.0.0.1:")] * 2  # nothing left: no `sending`


def test_a_month_verify_refuses_is_not_sent(published_small: Path,
                                            smtp_server: tuple[Mailbox, str]) -> None:
    mailbox, url = smtp_server
    root = published_small
    pdf = root / "out/2026-10/invoices/IM-202610-000002.pdf"
    pdf.write_bytes(pdf.read_bytes() + b"\n")
    result = send(root, url)
    assert result.exit_code == ExitCode.VERIFY_MISMATCH, result.output
    assert result.output.splitlines() == [
        f"Error: {root / 'out/2026-10'}: 'invoicing verify' finds 1 mismatch(es); nothing was "
        "sent (run it for the list)"]
    assert mailbox.received == []
    assert not (root / "out/2026-10.delivery").exists()


def test_dry_run_writes_the_messages_and_records_nothing(published_small: Path) -> None:
    root = published_small
    result = CliRunner().invoke(main, [
        "send", "--month", "2026-10", "--input", str(root / "in"), "--out", str(root / "out"),
        "--dry-run", str(root / "mail")])
    assert result.exit_code == ExitCode.NOT_DELIVERED, result.output
    assert sorted(p.name for p in (root / "mail").iterdir()) == [
        "IM-202610-000001.eml", "IM-202610-000002.eml", "IM-202610-000004.eml"]
    assert not (root / "out/2026-10.delivery").exists()
    assert result.stdout.splitlines()[:3] == [
        f"2026-10: 4 document(s) of 1 revision(s); 3 written to {root / 'mail'} (dry run: "
        "nothing sent, nothing recorded)",
        "  written: 3, already sent: 0, failed: 1, not attempted: 0",
        "  failed, the customer's e-mail is not an address: 1"]
    message = email.message_from_bytes((root / "mail/IM-202610-000001.eml").read_bytes(),
                                       policy=email.policy.default)
    assert message["To"] == "Customer c1 <c1@example.com>"
    pdf = (root / "out/2026-10/invoices/IM-202610-000001.pdf").read_bytes()
    assert attachments(message) == {"IM-202610-000001.pdf": pdf}  # type: ignore[arg-type]


def test_send_needs_a_server_or_a_dry_run_and_a_valid_url(tmp_path: Path) -> None:
    args = ["send", "--month", "2026-10", "--input", str(tmp_path), "--out", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == ExitCode.USAGE
    assert "give the SMTP server with --smtp URL" in result.output
    result = CliRunner().invoke(main, [*args, "--smtp", "http://mail.example.com"])
    assert result.exit_code == ExitCode.USAGE
    assert "is not an SMTP server URL such as smtp://mail.example.com:587" in result.output


def test_a_send_killed_mid_month_loses_nothing_and_resends_only_what_was_in_flight(
        published_small: Path, smtp_server: tuple[Mailbox, str]) -> None:
    """SIGKILL while the server replies to a message it kept (the client never hears),
    then a rerun: every document arrives; only the one in flight arrives twice, both
    times with the same Message-ID."""
    mailbox, url = smtp_server
    root = published_small
    mailbox.delay = 0.5
    process = subprocess.Popen(
        [sys.executable, "-m", "invoicing.cli", "send", "--month", "2026-10", "--input",
         str(root / "in"), "--out", str(root / "out"), "--smtp", url, "--retry-delay", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while mailbox.data_commands < 2 and process.poll() is None:
            assert time.monotonic() < deadline, "the send never reached its second message"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    records = ledger(root)
    last = {r["document"]: r["status"] for r in records}
    in_flight = {doc for doc, status in last.items() if status == "sending"}
    assert in_flight == {"IM-202610-000002"}

    mailbox.delay = 0.0
    rerun = send(root, url)
    assert rerun.exit_code == ExitCode.NOT_DELIVERED, rerun.output  # c3: not an address
    assert rerun.stdout.splitlines()[2] == (
        "  sent again after an interruption (same Message-ID): IM-202610-000002")
    by_document: dict[str, list[str]] = {}
    for _, message in mailbox.messages():
        by_document.setdefault(message["X-Invoicing-Document"], []).append(message["Message-ID"])
    assert sorted(by_document) == ["IM-202610-000001", "IM-202610-000002", "IM-202610-000004"]
    assert {doc: len(ids) for doc, ids in by_document.items()} == {
        "IM-202610-000001": 1, "IM-202610-000002": 2, "IM-202610-000004": 1}
    assert len(set(by_document["IM-202610-000002"])) == 1
    status = CliRunner().invoke(main, ["status", "--month", "2026-10", "--out", str(root / "out")])
    assert status.stdout.splitlines()[0] == (
        "2026-10: 4 document(s): 3 sent, 1 failed, 0 in flight, 0 not sent yet")


def test_send_reads_the_month_with_the_conflict_policy_it_is_given(tmp_path: Path) -> None:
    """`send` checks the month as `verify` does, with --on-conflict when given, else the
    policy the month was published with; the flag is never taken and ignored."""
    b = small_month()
    b.day(1, d(2), dau=12_000).day(1, d(2), dau=13_000)  # one app-day, two different rows
    b.write(tmp_path / "in")
    published = run_cli(tmp_path / "in", tmp_path / "out", "--on-conflict", "max")
    assert published.exit_code == 0, published.output

    def dry_run(*flag: str) -> Result:
        return CliRunner().invoke(main, [
            "send", "--month", "2026-10", "--input", str(tmp_path / "in"), "--out",
            str(tmp_path / "out"), "--dry-run", str(tmp_path / "mail"), *flag])

    stopped = dry_run("--on-conflict", "error")
    assert stopped.exit_code == ExitCode.USAGE_CONFLICT, stopped.output
    assert stopped.output.startswith("Error: usage conflict: app 1 on 2026-10-02 has "
                                     "different rows"), stopped.output
    assert not (tmp_path / "mail").exists()
    for flag in ((), ("--on-conflict", "max")):
        sent = dry_run(*flag)
        assert sent.exit_code == 0, sent.output
        assert sorted(p.name for p in (tmp_path / "mail").iterdir()) == [
            f"IM-202610-00000{i}.eml" for i in (1, 2, 3, 4)]
