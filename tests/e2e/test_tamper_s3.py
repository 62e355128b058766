# ruff: noqa: F401, F811  (pytest fixtures imported from the modules that define them)
"""The tamper catalogue on object storage, and write-once storage (S3 Object Lock), against
the moto server on 127.0.0.1 of tests/e2e/test_object_storage.py.

The reissued sample month of tests/e2e/test_tamper.py is uploaded once per module in the
layout a run on object storage writes (each revision's manifest beside
``objects/<scope>/``), then copied server-side into a fresh bucket per case. Object Lock
tests publish a small month into a bucket created with Object Lock enabled.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from pathlib import Path

import boto3
import pytest
import s3fs
from botocore.exceptions import ClientError

from invoicing.core.errors import ExitCode
from invoicing.storage import content_key
from tests.builders import INCOMPLETE_OK
from tests.e2e.test_object_storage import (
    aws_env,
    change_usage,
    endpoint,
    fs,
    small_month,
    upload_month,
)
from tests.e2e.test_tamper import (
    CN,
    EU_INV,
    MONTH,
    cached_recomputation,
    cli,
    edit_attachment,
    paid_overlay,
    reissued,
)


def scope(manifest: bytes) -> str:
    """Where a committed manifest's objects are (`storage.content_key`)."""
    return content_key(json.loads(manifest))


@pytest.fixture(scope="module")
def base(reissued: Path, endpoint: str) -> str:
    """The reissued month uploaded once, as object storage lays it out."""
    store = s3fs.S3FileSystem(endpoint_url=endpoint, key="testing", secret="testing",
                              use_listings_cache=False, skip_instance_cache=True)
    bucket = f"tamper-base-{uuid.uuid4().hex[:8]}"
    store.mkdir(bucket)
    local = reissued / "out" / MONTH
    for folder, target in [(local, f"{bucket}/out/{MONTH}"),
                           (local / "revisions/001", f"{bucket}/out/{MONTH}/revisions/001")]:
        manifest = (folder / "manifest.json").read_bytes()
        for name in json.loads(manifest)["outputs"]:
            store.pipe_file(f"{target}/objects/{scope(manifest)}/{name}",
                            (folder / name).read_bytes())
        store.pipe_file(f"{target}/manifest.json", manifest)
    return bucket


@pytest.fixture
def month(base: str, fs: s3fs.S3FileSystem) -> str:
    """A private copy of the month: ``<bucket>/out/2026-10``."""
    bucket = f"tamper-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    fs.copy(f"{base}/out", f"{bucket}/out", recursive=True)
    return f"{bucket}/out/{MONTH}"


def verify(reissued: Path, month: str, *extra: str) -> tuple[int, str]:
    return cli("verify", "--month", MONTH, "--input", str(reissued / "in"), "--out",
               f"s3://{month.rsplit('/', 1)[0]}", *extra)


def files(fs: s3fs.S3FileSystem, folder: str) -> str:
    """Where the objects a committed manifest of `folder` lists are."""
    return f"{folder}/objects/{scope(fs.cat_file(f'{folder}/manifest.json'))}"


def test_the_uploaded_month_verifies(reissued: Path, month: str) -> None:
    code, output = verify(reissued, month, "--expect-head", (reissued / "head").read_text())
    assert code == 0, output
    assert "  retention: none on 33 published object(s) (published without --retain-days)" \
        in output.splitlines()


def test_a_credit_notes_einvoice_is_checked_on_object_storage(
        reissued: Path, month: str, fs: s3fs.S3FileSystem) -> None:
    key = f"{files(fs, f'{month}/revisions/001')}/credit_notes/{CN}.pdf"
    local = reissued / "out" / MONTH / "revisions/001/credit_notes" / f"{CN}.pdf"
    fs.pipe_file(key, edit_attachment(local, "factur-x.xml", lambda b: b.replace(
        b"<ram:GrandTotalAmount>", b"<ram:GrandTotalAmount>1", 1)))
    code, output = verify(reissued, month)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"s3://{key}: factur-x.xml differs from credit_notes.parquet" in output
    assert f"s3://{key}: SHA-256 differs from s3://{month}/revisions/001/manifest.json" in output


def test_a_stamped_pdf_is_caught(reissued: Path, month: str,
                                 fs: s3fs.S3FileSystem) -> None:
    key = f"{files(fs, month)}/{EU_INV}"
    fs.pipe_file(key, paid_overlay(reissued / "out" / MONTH / EU_INV))
    code, output = verify(reissued, month)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"s3://{key}: SHA-256 differs from s3://{month}/manifest.json" in output


@pytest.mark.parametrize("where", ["credit_notes/CN-202610-000099.pdf",
                                   "objects/0123456789abcdef/invoices/IM-202610-000099.pdf",
                                   "revisions/001/notes.txt"])
def test_a_stray_object_is_caught(reissued: Path, month: str, fs: s3fs.S3FileSystem,
                                  where: str) -> None:
    fs.pipe_file(f"{month}/{where}", b"%PDF-1.7 forged")
    code, output = verify(reissued, month)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"s3://{month}/{where}: not listed in any manifest of s3://{month}" in output


def test_a_deleted_object_is_caught(reissued: Path, month: str,
                                    fs: s3fs.S3FileSystem) -> None:
    key = f"{files(fs, month)}/line_items.parquet"
    fs.rm_file(key)
    code, output = verify(reissued, month)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"s3://{key}: missing (listed in s3://{month}/manifest.json)" in output


def test_an_edited_manifest_is_caught(reissued: Path, month: str,
                                      fs: s3fs.S3FileSystem) -> None:
    content = json.loads(fs.cat_file(f"{month}/manifest.json"))
    content["totals"]["USD"]["total"] = "1.00"
    fs.pipe_file(f"{month}/manifest.json", json.dumps(content, indent=2).encode())
    code, output = verify(reissued, month)
    assert code == ExitCode.VERIFY_MISMATCH
    assert (f"s3://{month}/revisions/001/manifest.json: previous_manifest_sha256 does not "
            f"match s3://{month}/manifest.json") in output


def test_a_deleted_latest_revision_is_caught_with_the_head(
        reissued: Path, month: str, fs: s3fs.S3FileSystem) -> None:
    fs.rm_file(f"{month}/revisions/001/manifest.json")
    head = (reissued / "head").read_text()
    code, output = verify(reissued, month, "--expect-head", head)
    assert code == ExitCode.VERIFY_MISMATCH
    assert f"not the expected {head}: a revision was deleted or rewritten" in output


def test_a_month_whose_manifest_is_gone_is_a_mismatch(reissued: Path, month: str,
                                                      fs: s3fs.S3FileSystem) -> None:
    fs.rm_file(f"{month}/manifest.json")
    head = (reissued / "head").read_text()
    code, output = verify(reissued, month, "--expect-head", head)
    assert code == ExitCode.VERIFY_MISMATCH
    assert output.startswith(f"s3://{month}/manifest.json: missing: the month ends in no "
                             f"head, not the expected {head}")


# --- write once: S3 Object Lock ----------------------------------------------------------


@pytest.fixture
def client(endpoint: str) -> object:
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1")


def test_retained_objects_cannot_be_deleted_and_verify_lists_their_retention(
        fs: s3fs.S3FileSystem, client: object, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = f"locked-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)  # type: ignore
    local_in = upload_month(fs, bucket, small_month(), tmp_path)
    args = ["--month", MONTH, "--input", f"s3://{bucket}/in/{MONTH}", "--out",
            f"s3://{bucket}/out"]
    monkeypatch.setenv("INVOICING_RETAIN_DAYS", "1")
    code, output = cli("run", *args, "--workers", "1", INCOMPLETE_OK)
    assert code == 0, output
    manifest = json.loads(fs.cat_file(f"{bucket}/out/{MONTH}/manifest.json"))
    until = manifest["retention"]["retain_until"]
    assert manifest["retention"]["mode"] == "COMPLIANCE"
    published = [f"out/{MONTH}/manifest.json",
                 *(f"out/{MONTH}/objects/{scope(fs.cat_file(f'{bucket}/out/{MONTH}/manifest.json'))}"
                   f"/{name}" for name in manifest["outputs"])]
    # A reissue under retention too: its revision's objects are locked the same way.
    change_usage(fs, bucket, local_in, 1, 35_000)
    code, output = cli("reissue", *args, "--reason", "usage corrected", "--retain-days", "1",
                       "--workers", "1", INCOMPLETE_OK)
    assert code == 0, output
    revision = f"out/{MONTH}/revisions/001"
    rev_manifest = fs.cat_file(f"{bucket}/{revision}/manifest.json")
    rev_until = json.loads(rev_manifest)["retention"]["retain_until"]
    published += [f"{revision}/manifest.json",
                  *(f"{revision}/objects/{scope(rev_manifest)}/{name}"
                    for name in json.loads(rev_manifest)["outputs"])]
    versions = client.list_object_versions(  # type: ignore[attr-defined]
        Bucket=bucket, Prefix=f"out/{MONTH}/")["Versions"]
    assert sorted(v["Key"] for v in versions) == sorted(published)
    for v in versions:
        head = client.head_object(Bucket=bucket, Key=v["Key"])  # type: ignore[attr-defined]
        assert head["ObjectLockMode"] == "COMPLIANCE", v["Key"]
        with pytest.raises(ClientError, match="AccessDenied"):
            client.delete_object(  # type: ignore[attr-defined]
                Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    record = client.head_object(  # type: ignore[attr-defined]
        Bucket=bucket, Key=f"out/{MONTH}.heads/000.json")  # the head record is kept too
    assert record["ObjectLockMode"] == "COMPLIANCE"
    monkeypatch.delenv("INVOICING_RETAIN_DAYS")
    code, output = cli("verify", *args, "--expect-head", output.splitlines()[-1].split()[-1])
    assert code == 0, output
    assert len(published) == 17  # 8 objects of revision 0, 9 of revision 1
    counts = Counter({until: 8})
    counts[rev_until] += 9  # (the same second when both ran within it)
    assert [line for line in output.splitlines() if line.startswith("  retention: ")] == [
        f"  retention: {n} published object(s) under Object Lock, COMPLIANCE until {t}"
        for t, n in sorted(counts.items())]

    # An overwrite adds a version without retention: verify names it.
    key = published[1]
    fs.pipe_file(f"{bucket}/{key}", b"overwritten")
    code, output = cli("verify", *args)
    assert code == ExitCode.VERIFY_MISMATCH
    assert (f"s3://{bucket}/{key}: no Object Lock retention until {until[:10]} (the manifest "
            "records it; the object has none)") in output


def test_a_bucket_without_object_lock_is_refused_before_anything_is_written(
        fs: s3fs.S3FileSystem, tmp_path: Path) -> None:
    bucket = f"unlocked-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    upload_month(fs, bucket, small_month(), tmp_path)
    code, output = cli("run", "--month", MONTH, "--input", f"s3://{bucket}/in/{MONTH}",
                       "--out", f"s3://{bucket}/out", "--retain-days", "1", "--workers", "1",
                       INCOMPLETE_OK)
    assert code == ExitCode.STORAGE
    assert output == (f"Error: s3://{bucket}/out: --retain-days needs Object Lock, and bucket "
                      f"{bucket} was not created with it (create the bucket with Object Lock "
                      "enabled); nothing was written\n")
    assert fs.find(f"{bucket}/out") == []


def test_retention_on_a_local_folder_is_refused(tmp_path: Path) -> None:
    small_month().write(tmp_path / "in")
    code, output = cli("run", "--month", MONTH, "--input", str(tmp_path / "in"), "--out",
                       str(tmp_path / "out"), "--retain-days", "1", INCOMPLETE_OK)
    assert code == ExitCode.USAGE
    assert output.startswith(f"Error: --retain-days: {tmp_path / 'out'} is a local folder")
    assert not (tmp_path / "out").exists()


