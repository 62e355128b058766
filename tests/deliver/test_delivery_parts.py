"""The parts of delivery on their own: the ledger's file, the retry schedule, SMTP URLs,
addresses, and messages built from a published month (escaping, headers, e-invoice
files beside the PDF)."""

from __future__ import annotations

import email
import email.message
import email.policy
import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from invoicing.cli import main
from invoicing.core.errors import ExitCode, UsageError
from invoicing.core.timeframe import Month
from invoicing.deliver.documents import Buyer, month_documents
from invoicing.deliver.ledger import SENDING, LocalLedger, Record, states
from invoicing.deliver.messages import Sender, build_message, is_address
from invoicing.deliver.send import Policy
from invoicing.deliver.smtp import SmtpServer, parse_url
from invoicing.publish.issued import IssuedMonth
from tests.builders import MonthBuilder, d, run_cli
from tests.smtp_server import Mailbox, tls_smtp_server

__all__ = ["tls_smtp_server"]  # the fixture, used by name

SENDER = Sender("IM Cloud Services Ltd.", "billing@imcloud.example")
WHEN = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def test_a_line_cut_short_by_a_crash_is_skipped_and_the_next_record_starts_a_line(
        tmp_path: Path) -> None:
    ledger = LocalLedger(tmp_path / "2026-10.delivery")
    first = Record("IM-1", 1, SENDING, "a@example.com", "<x@y.example>", "t1")
    ledger.append(first)
    ledger.close()
    with ledger.path.open("ab") as fh:
        fh.write(b'{"document":"IM-2","attem')  # the process died here
    second = Record("IM-2", 1, SENDING, "b@example.com", "<z@y.example>", "t2")
    reopened = LocalLedger(tmp_path / "2026-10.delivery")
    reopened.append(second)
    reopened.close()
    assert reopened.records() == [first, second]
    assert states(reopened.records())["IM-2"].in_flight
    assert oct(ledger.path.stat().st_mode & 0o777) == "0o640"


def test_retries_wait_twice_as_long_each_time_up_to_the_cap() -> None:
    policy = Policy(attempts=9, delay=5.0, max_delay=300.0)
    assert [policy.backoff(n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]


def test_smtp_urls() -> None:
    assert parse_url("smtp://mail.example.com") == SmtpServer("smtp", "mail.example.com", 587)
    assert parse_url("smtps://mail.example.com:2465").url == "smtps://mail.example.com:2465"
    assert parse_url("smtp://127.0.0.1:8025").loopback
    assert not parse_url("smtp://mail.example.com").loopback
    with pytest.raises(UsageError, match="set INVOICING_SMTP_PASSWORD"):
        parse_url("smtp://billing@mail.example.com")
    with pytest.raises(UsageError, match="not in the URL"):
        parse_url("smtp://billing:secret@mail.example.com")


def test_smtp_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOICING_SMTP_PASSWORD", "s3cret")
    server = parse_url("smtps://billing%40imcloud.example@mail.example.com")
    assert (server.user, server.password) == ("billing@imcloud.example", "s3cret")
    assert server.url == "smtps://billing@imcloud.example@mail.example.com:465"


@pytest.mark.parametrize(("text", "ok"), [
    ("ap@bluebird-social.example", True), ("first.last+billing@mail.example.co.kr", True),
    ("Accounts Payable", False), ("Name <ap@example.com>", False), ("a@b.com, c@d.com", False),
    ("ap@localhost", False), ("재무@example.com", False), ("ap@@example.com", False),
    ("", False), ("ap@example.com\nBcc: x@evil.example", False),
])
def test_only_one_plain_address_is_an_address(text: str, ok: bool) -> None:
    assert is_address(text) is ok


@pytest.fixture(scope="module")
def one_invoice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("one")
    MonthBuilder().customer("c1").app(1, "c1").day(1, d(1), dau=15_000).write(root / "in")
    assert run_cli(root / "in", root / "out").exit_code == 0
    return root / "out"


def parsed(message: email.message.EmailMessage) -> email.message.EmailMessage:
    """The message as a receiver reads it."""
    return email.message_from_bytes(message.as_bytes(policy=email.policy.SMTP),  # type: ignore[return-value]
                                    policy=email.policy.default)


def test_hostile_names_are_escaped_in_html_and_cannot_add_headers(one_invoice: Path) -> None:
    doc = month_documents(IssuedMonth(one_invoice, Month(2026, 10)))[0]
    name = '<img src="https://evil.example/x.png"> & Co\r\nBcc: victim@evil.example'
    message = parsed(build_message(doc, Buyer("c1", name, "c1@example.com", "en_US"), SENDER,
                                   WHEN))
    assert message["Bcc"] is None
    assert message["To"].addresses[0].addr_spec == "c1@example.com"
    html = message.get_body(("html",)).get_content()
    assert "&lt;img src=&#34;https://evil.example/x.png&#34;&gt; &amp; Co" in html
    assert "<img" not in html
    text = message.get_body(("plain",)).get_content()
    assert text.startswith('Dear <img src="https://evil.example/x.png"> & Co')
    assert message["Date"] == "Sun, 01 Nov 2026 09:00:00 +0000"


def test_an_einvoice_file_beside_the_pdf_travels_with_it(one_invoice: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(one_invoice, out)
    xml = b"<?xml version='1.0'?><Invoice/>"
    (out / "2026-10/invoices/IM-202610-000001.xml").write_bytes(xml)
    manifest_path = out / "2026-10/manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["outputs"]["invoices/IM-202610-000001.xml"] = hashlib.sha256(xml).hexdigest()
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")

    doc = month_documents(IssuedMonth(out, Month(2026, 10)))[0]
    assert [a.name for a in doc.attachments] == ["IM-202610-000001.pdf",
                                                 "IM-202610-000001.xml"]
    message = parsed(build_message(doc, Buyer("c1", "C1", "c1@example.com", "ko_KR"), SENDER,
                                   WHEN))
    parts = {p.get_filename(): (p.get_content_type(), p.get_content())
             for p in message.iter_attachments()}
    assert parts["IM-202610-000001.xml"] == ("application/xml", xml)
    assert "같은 내용의 전자 청구서 파일도 함께 첨부했습니다." in message.get_body(
        ("plain",)).get_content()


def test_the_rate_limit_spaces_messages_by_its_interval() -> None:
    from invoicing.deliver.send import _Pacer

    waits: list[float] = []
    pacer = _Pacer(0.001, waits.append)  # one message per 1,000 s: the waits are recorded
    pacer.wait()
    pacer.wait()
    pacer.wait()
    assert len(waits) == 2
    assert 999 < waits[0] <= 1000 and 1999 < waits[1] <= 2000
    unlimited: list[float] = []
    free = _Pacer(None, unlimited.append)
    free.wait()
    free.wait()
    assert unlimited == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # see the fixture
def test_starttls_implicit_tls_and_login(one_invoice: Path, tmp_path: Path,
                                         tls_smtp_server: tuple[Mailbox, str, str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers that require TLS and a login: smtp:// upgrades with STARTTLS, smtps:// is
    TLS from the start, the password comes from INVOICING_SMTP_PASSWORD; a wrong one is
    one line and exit 14, and nothing is recorded as in flight."""
    mailbox, starttls, implicit = tls_smtp_server
    out = tmp_path / "out"
    shutil.copytree(one_invoice, out)
    args = ["send", "--month", "2026-10", "--input", str(one_invoice.parent / "in"),
            "--out", str(out), "--retry-delay", "0"]

    monkeypatch.setenv("INVOICING_SMTP_PASSWORD", "wrong")
    refused = CliRunner().invoke(main, [*args, "--smtp", starttls])
    assert refused.exit_code == ExitCode.NOT_DELIVERED, refused.output
    assert refused.output.splitlines() == [
        f"Error: {starttls}: login refused (535 "
        "5.7.8 Authentication credentials invalid); check the user and "
        "INVOICING_SMTP_PASSWORD"]
    assert states(LocalLedger(out / "2026-10.delivery").records()) == {}

    monkeypatch.setenv("INVOICING_SMTP_PASSWORD", "s3cret")
    sent = CliRunner().invoke(main, [*args, "--smtp", starttls])
    assert sent.exit_code == 0, sent.output
    shutil.rmtree(out / "2026-10.delivery")
    again = CliRunner().invoke(main, [*args, "--smtp", implicit])
    assert again.exit_code == 0, again.output
    assert [m["X-Invoicing-Document"] for _, m in mailbox.messages()] == [
        "IM-202610-000001", "IM-202610-000001"]
