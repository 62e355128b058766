"""The delivery ledger on object storage (a moto server on 127.0.0.1): one object per
record, created conditionally, so nothing is overwritten and two senders cannot both
record the same attempt; `send` and `status` work on an ``s3://`` month as on a disk."""

from __future__ import annotations

import json

import pytest
import s3fs

from invoicing.core.timeframe import Month
from invoicing.deliver.ledger import (
    ACCEPTED,
    SENDING,
    AlreadyRecordedError,
    ObjectLedger,
    Record,
    open_ledger,
    states,
)
from invoicing.storage import location
from tests.e2e.test_object_storage import (
    MONTH,
    aws_env,
    bucket,
    cli,
    endpoint,
    fs,
    s3_args,
    small_month,
    upload_month,
)
from tests.smtp_server import Mailbox, smtp_server

__all__ = ["aws_env", "bucket", "endpoint", "fs", "smtp_server"]  # fixtures, used by name


def record(document: str, attempt: int, status: str) -> Record:
    return Record(document, attempt, status, "c1@example.com", "<x@imcloud.example>",
                  f"2026-12-01T00:00:0{attempt}.000+00:00", None, None, "run-1")


def test_records_are_objects_created_once(fs: s3fs.S3FileSystem, bucket: str) -> None:
    ledger = open_ledger(location(f"s3://{bucket}/out"), Month(2026, 10))
    assert isinstance(ledger, ObjectLedger)
    assert ledger.records() == []
    ledger.append(record("IM-202610-000001", 1, SENDING))
    ledger.append(record("IM-202610-000001", 1, ACCEPTED))
    with pytest.raises(AlreadyRecordedError):  # a second sender on the same attempt
        ledger.append(record("IM-202610-000001", 1, SENDING))
    assert sorted(fs.find(f"{bucket}/out/2026-10.delivery")) == [
        f"{bucket}/out/2026-10.delivery/records/IM-202610-000001/000001-accepted.json",
        f"{bucket}/out/2026-10.delivery/records/IM-202610-000001/000001-sending.json"]
    state = states(ledger.records())["IM-202610-000001"]
    assert state.accepted == record("IM-202610-000001", 1, ACCEPTED)
    assert state.attempts == 1


def test_send_and_status_on_an_object_storage_month(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: object,
        smtp_server: tuple[Mailbox, str]) -> None:
    mailbox, url = smtp_server
    upload_month(fs, bucket, small_month(), tmp_path)  # type: ignore[arg-type]
    assert cli("run", *s3_args(bucket)).exit_code == 0
    sent = cli("send", *s3_args(bucket), "--smtp", url, "--retry-delay", "0")
    assert sent.exit_code == 0, sent.output
    assert sent.stdout.splitlines()[1] == "  sent: 3, already sent: 0, failed: 0, not attempted: 0"
    again = cli("send", *s3_args(bucket), "--smtp", url, "--retry-delay", "0")
    assert again.stdout.splitlines()[1] == (
        "  sent: 0, already sent: 3, failed: 0, not attempted: 0")
    assert len(mailbox.received) == 3
    keys = sorted(fs.find(f"{bucket}/out/{MONTH}.delivery"))
    assert len(keys) == 6  # sending + accepted for each of the three invoices
    assert json.loads(fs.cat_file(keys[0]))["document"] == "IM-202610-000001"
    status = cli("status", "--month", MONTH, "--out", f"s3://{bucket}/out")
    assert status.exit_code == 0, status.output
    assert status.stdout.splitlines()[0] == (
        "2026-10: 3 document(s): 3 sent, 0 failed, 0 in flight, 0 not sent yet")
