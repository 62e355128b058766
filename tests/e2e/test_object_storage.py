"""Months in S3-compatible object storage, against a moto server on 127.0.0.1.

One server serves the whole module (started and stopped here); every test works in
its own bucket. moto 5 honours ``If-None-Match: *`` on PUT (412 when the key exists),
which is the commit the race tests exercise; with ``INITIAL_NO_AUTH_ACTION_COUNT`` at 0
it checks credentials, which the refused-credentials test relies on. Commands go
through the CLI with their exact exit codes, and the published objects are compared
byte for byte with a local run of the same month.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import s3fs
from click.testing import CliRunner, Result
from moto.server import ThreadedMotoServer
from upath import UPath

from invoicing.cli import main
from invoicing.core.errors import ExitCode
from invoicing.storage import (
    ObjectStaging,
    PublishRaceError,
    content_key,
    location,
    open_staging,
)
from invoicing.storage import s3 as storage_s3
from invoicing.storage.s3 import _storage_options
from tests.builders import INCOMPLETE_OK, MonthBuilder, d

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "2026-10"
MONTH = "2026-10"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def fs(endpoint: str) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(endpoint_url=endpoint, key="testing", secret="testing",
                             use_listings_cache=False, skip_instance_cache=True)


@pytest.fixture
def bucket(fs: s3fs.S3FileSystem) -> str:
    name = f"billing-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    return name


def cli(*args: str) -> Result:
    """A command; the small hand-built months need the month gates overridden."""
    extra = [INCOMPLETE_OK] if args[0] in ("run", "reissue", "preview") else []
    return CliRunner().invoke(main, [*args, *extra])


def s3_args(bucket: str, inputs: str = "in") -> list[str]:
    return ["--month", MONTH, "--input", f"s3://{bucket}/{inputs}/{MONTH}",
            "--out", f"s3://{bucket}/out"]


def objects(fs: s3fs.S3FileSystem, prefix: str) -> dict[str, bytes]:
    """Every object under `prefix`, by key relative to it."""
    return {key[len(prefix) + 1:]: fs.cat_file(key) for key in sorted(fs.find(prefix))}


def published_files(fs: s3fs.S3FileSystem, bucket: str, folder: str = MONTH) -> dict[str, bytes]:
    """What the committed manifest of `<out>/<folder>` lists, plus the manifest itself."""
    root = f"{bucket}/out/{folder}"
    manifest = fs.cat_file(f"{root}/manifest.json")
    scope = content_key(json.loads(manifest))
    files = {name: fs.cat_file(f"{root}/objects/{scope}/{name}")
             for name in json.loads(manifest)["outputs"] if name != "manifest.json"}
    return {"manifest.json": manifest, **files}


def sha256_of(fs: s3fs.S3FileSystem, bucket: str, folder: str) -> str:
    """SHA-256 of the committed manifest of `<out>/<MONTH>/<folder>` (a head)."""
    return hashlib.sha256(fs.cat_file(f"{bucket}/out/{MONTH}/{folder}/manifest.json")
                          ).hexdigest()


def local_files(month_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(month_dir).as_posix(): p.read_bytes()
            for p in sorted(month_dir.rglob("*")) if p.is_file() and "revisions" not in p.parts}


def small_month() -> MonthBuilder:
    b = MonthBuilder()
    b.customer("c1").customer("c2").customer("c3", country="KR", locale="ko_KR")
    b.app(1, "c1").app(2, "c2", plan="flagship").app(3, "c3")
    b.day(1, d(1), dau=15_000).day(2, d(2), dau=100).day(3, d(3), dau=20_001)
    return b


def upload_month(fs: s3fs.S3FileSystem, bucket: str, builder: MonthBuilder, tmp: Path,
                 inputs: str = "in") -> Path:
    local = builder.write(tmp / inputs / MONTH)
    fs.put(str(local), f"{bucket}/{inputs}/{MONTH}", recursive=True)
    return local


def change_usage(fs: s3fs.S3FileSystem, bucket: str, local_in: Path, app: int, dau: int) -> None:
    """Edit one app's DAU in the local copy and upload it over the stored export."""
    path = local_in / "usage/part=0/usage.parquet"
    usage = pl.read_parquet(path).with_columns(
        dau=pl.when(pl.col("sdk_app_id") == app).then(pl.lit(dau, dtype=pl.Int64))
        .otherwise(pl.col("dau")))
    pq.write_table(usage.to_arrow(), path)
    fs.put_file(str(path), f"{bucket}/in/{MONTH}/usage/part=0/usage.parquet")


# --- the sample month ------------------------------------------------------------------


def test_sample_month_in_object_storage_equals_the_local_run(
        fs: s3fs.S3FileSystem, bucket: str, sample_published: tuple[Path, str, str]) -> None:
    local_out, local_stdout, _ = sample_published  # the same month run on a local disk
    fs.put(str(SAMPLE), f"{bucket}/in/{MONTH}", recursive=True)

    run = cli("run", *s3_args(bucket), "--workers", "1")
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines()[0].startswith(
        f"{MONTH}: published s3://{bucket}/out/{MONTH} (run 202610-")
    # Same run id, same bytes: the manifest names inputs relative to --input.
    assert run.stdout.splitlines()[0].split("(run ")[1] == \
        local_stdout.splitlines()[0].split("(run ")[1]
    assert published_files(fs, bucket) == local_files(local_out / MONTH)

    verify = cli("verify", *s3_args(bucket))
    assert verify.exit_code == 0, verify.output
    assert verify.output.splitlines()[:2] == [
        f"OK {MONTH}: 1 revision(s), 23 files, 168 line items match",
        "  documents: 18 invoice(s) issued, 18 current (embedded line items match), "
        "0 credit note(s)"]

    # A cron retry with the same inputs: exit 0, not one object written or removed.
    before = objects(fs, f"{bucket}/out")
    retry = cli("run", *s3_args(bucket), "--workers", "1")
    assert retry.exit_code == 0, retry.output
    assert "already issued from identical inputs" in retry.output
    assert objects(fs, f"{bucket}/out") == before
    # Nothing is left in staging once a run has committed.
    assert not fs.exists(f"{bucket}/out/.staging")


def test_preview_reads_the_month_from_object_storage(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: Path) -> None:
    local_in = upload_month(fs, bucket, small_month(), tmp_path)
    remote = cli("preview", "--month", MONTH, "--input", f"s3://{bucket}/in/{MONTH}")
    local = cli("preview", "--month", MONTH, "--input", str(local_in))
    assert remote.exit_code == 0, remote.output
    assert remote.output == local.output
    assert "  c1  IM-202610-000001  USD 548.99" in remote.output


def test_usage_in_object_storage_is_scanned_row_group_by_row_group(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows come back in file order across row groups, fetched by range requests of at
    most a row group's columns, never as the whole object."""
    from invoicing.storage import scan_parquet

    frame = pl.DataFrame({"sdk_app_id": list(range(30_000)),
                          "dau": [i * 7 for i in range(30_000)]})
    local = tmp_path / "usage.parquet"
    pq.write_table(frame.to_arrow(), local, row_group_size=10_000, compression="none")
    fs.put(str(local), f"{bucket}/u/usage.parquet")
    # Range requests of 16 KiB instead of READ_BLOCK, for a file of ~480 KiB.
    url = f"s3://{bucket}/u/usage.parquet"
    remote = UPath(url, **{**_storage_options(), "default_block_size": 16 << 10})
    assert str(remote) == str(location(url))
    scan = scan_parquet(remote)
    assert scan.collect_schema() == frame.schema
    assert scan.with_row_index("row").collect().equals(frame.with_row_index("row"))
    size = local.stat().st_size
    fetched: list[int] = []
    fetch_range = s3fs.core._fetch_range

    def counting(*args: object, **kwargs: object) -> bytes:  # every ranged GET of a file
        data: bytes = fetch_range(*args, **kwargs)  # type: ignore[arg-type]
        fetched.append(len(data))
        return data

    monkeypatch.setattr(s3fs.core, "_fetch_range", counting)
    assert scan.collect()["dau"].to_list() == [i * 7 for i in range(30_000)]
    # Column chunks one row group at a time (~100 KiB each), never the ~570 KiB object.
    assert len(fetched) > 3 and max(fetched) < size / 3, fetched


def test_a_pricebook_in_object_storage_is_named_like_a_local_one(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: Path) -> None:
    local_in = upload_month(fs, bucket, small_month(), tmp_path)
    (tmp_path / "books").mkdir()
    book = (local_in / "pricebook.toml").rename(tmp_path / "books" / "pricebook.toml")
    fs.rm(f"{bucket}/in/{MONTH}/pricebook.toml")
    fs.put_file(str(book), f"{bucket}/books/pricebook.toml")
    remote = cli("run", *s3_args(bucket), "--pricebook", f"s3://{bucket}/books/pricebook.toml",
                 "--workers", "1")
    assert remote.exit_code == 0, remote.output
    local = cli("run", "--month", MONTH, "--input", str(local_in), "--pricebook", str(book),
                "--out", str(tmp_path / "out"), "--workers", "1")
    assert local.exit_code == 0, local.output
    manifest = json.loads(published_files(fs, bucket)["manifest.json"])
    assert "@pricebook/pricebook.toml" in [f["path"] for f in manifest["inputs"]]
    assert published_files(fs, bucket) == local_files(tmp_path / "out" / MONTH)


# --- reprocessing ----------------------------------------------------------------------


def test_changed_inputs_diff_reissue_and_verify_in_object_storage(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: Path) -> None:
    local_in = upload_month(fs, bucket, small_month(), tmp_path)
    assert cli("run", *s3_args(bucket), "--workers", "1").exit_code == 0
    change_usage(fs, bucket, local_in, 1, 35_000)  # 1 block -> 3 blocks

    before = objects(fs, f"{bucket}/out")
    refused = cli("run", *s3_args(bucket), "--workers", "1")
    assert refused.exit_code == ExitCode.ALREADY_PUBLISHED
    assert f"s3://{bucket}/out/{MONTH} was already issued from other inputs" in refused.output
    assert objects(fs, f"{bucket}/out") == before

    diff = cli("diff", *s3_args(bucket))
    assert diff.exit_code == 0, diff.output
    assert diff.output.splitlines() == [
        '2026-10: 1 customer(s) changed (compared with revision 0)',
        '  changed inputs: usage/part=0/usage.parquet',
        '',
        'Changed charges:',
        '  invoice           customer  app  charge       before' + ' ' * 54 + 'after' + ' ' * 56
        + 'amount before  amount after',
        '  IM-202610-000001  c1        1    DAU overage  Pro, Peak DAU 15,000 on October 1, 2026, '
        '1 block of 10,000  Pro, Peak DAU 35,000 on October 1, 2026, 3 blocks of 10,000'
        '        $149.99       $449.97',
        '',
        'Changed totals:',
        '  invoice           customer  subtotal            tax             total               difference',  # noqa: E501 (exact table line)
        '  IM-202610-000001  c1        $548.99 -> $848.97  $0.00 -> $0.00  $548.99 -> $848.97    +$299.98',  # noqa: E501 (exact table line)
    ]
    reissue = cli("reissue", *s3_args(bucket), "--reason", "usage export corrected",
                  "--issue-date", "2026-11-20", "--workers", "1")
    assert reissue.exit_code == 0, reissue.output
    assert reissue.stdout == (
        f"2026-10: wrote revision 1 to s3://{bucket}/out/{MONTH}/revisions/001\n"
        "  credit note CN-202610-000001 reverses IM-202610-000001\n"
        "  invoice IM-202610-000004 replaces IM-202610-000001\n"
        f"head: {MONTH} revision 1 sha256 {sha256_of(fs, bucket, 'revisions/001')}\n"
    )
    revision = published_files(fs, bucket, f"{MONTH}/revisions/001")
    assert sorted(revision) == [
        "anomalies.parquet", "credit_note_items.parquet", "credit_notes.parquet",
        "credit_notes/CN-202610-000001.pdf", "invoices.parquet",
        "invoices/IM-202610-000004.pdf", "line_items.parquet", "manifest.json",
        "rejected_rows.parquet"]
    verify = cli("verify", *s3_args(bucket))
    assert verify.exit_code == 0, verify.output
    assert verify.output.startswith(f"OK {MONTH}: 2 revision(s), ")
    retry = cli("run", *s3_args(bucket), "--workers", "1")
    assert retry.exit_code == 0, retry.output
    assert "already issued from identical inputs" in retry.output


def test_a_month_published_in_the_earlier_object_layout_stays_readable(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: Path) -> None:
    """Up to d4aedae a month's objects sat under the first 16 hex digits of the SHA-256 of
    the whole manifest; such a month is read, verified, diffed and reissued as it is."""
    local_in = upload_month(fs, bucket, small_month(), tmp_path)
    assert cli("run", *s3_args(bucket), "--workers", "1").exit_code == 0
    root = f"{bucket}/out/{MONTH}"
    manifest = fs.cat_file(f"{root}/manifest.json")
    scope, legacy = content_key(json.loads(manifest)), hashlib.sha256(manifest).hexdigest()[:16]
    for key in fs.find(f"{root}/objects/{scope}"):
        fs.copy(key, key.replace(f"/objects/{scope}/", f"/objects/{legacy}/"))
        fs.rm(key)
    assert not fs.exists(f"{root}/objects/{scope}")

    verify = cli("verify", *s3_args(bucket))
    assert verify.exit_code == 0, verify.output
    assert verify.output.startswith(f"OK {MONTH}: 1 revision(s), ")
    assert "already issued from identical inputs" in cli(
        "run", *s3_args(bucket), "--workers", "1").output
    change_usage(fs, bucket, local_in, 1, 35_000)
    diff = cli("diff", *s3_args(bucket))
    assert diff.exit_code == 0 and "1 customer(s) changed" in diff.output, diff.output
    reissue = cli("reissue", *s3_args(bucket), "--reason", "usage export corrected",
                  "--issue-date", "2026-11-20", "--workers", "1")
    assert reissue.exit_code == 0, reissue.output
    assert cli("verify", *s3_args(bucket)).exit_code == 0


def test_verify_names_a_stored_pdf_with_one_flipped_byte(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: Path) -> None:
    upload_month(fs, bucket, small_month(), tmp_path)
    assert cli("run", *s3_args(bucket), "--workers", "1").exit_code == 0
    manifest = fs.cat_file(f"{bucket}/out/{MONTH}/manifest.json")
    scope = content_key(json.loads(manifest))
    key = f"{bucket}/out/{MONTH}/objects/{scope}/invoices/IM-202610-000002.pdf"
    data = bytearray(fs.cat_file(key))
    data[len(data) // 2] ^= 0x01
    fs.pipe_file(key, bytes(data))

    verify = cli("verify", *s3_args(bucket))
    assert verify.exit_code == ExitCode.VERIFY_MISMATCH
    assert verify.output.splitlines()[0] == (
        f"s3://{key}: SHA-256 differs from s3://{bucket}/out/{MONTH}/manifest.json")
    assert verify.output.splitlines()[-1] == (
        f"Error: 1 mismatch(es) in s3://{bucket}/out/{MONTH}")


# --- the commit --------------------------------------------------------------------------


def test_the_second_commit_of_a_month_loses_and_leaves_nothing_visible(
        fs: s3fs.S3FileSystem, bucket: str) -> None:
    """Two runs that both found the month unpublished: the conditional create of the
    manifest lets exactly one commit; the other's objects are removed. (Different bytes
    come from different inputs, so their manifests differ beyond `outputs`.)"""
    out = location(f"s3://{bucket}/out")
    first, second = open_staging(out, MONTH), open_staging(out, MONTH)
    for staging, body in ((first, b"first"), (second, b"second")):
        staging.write_bytes("invoices/IM-202610-000001.pdf", body)
        staging.write_manifest({"inputs_digest": body.decode(),
                                "outputs": dict(staging.hashes)})
    first.commit()
    with pytest.raises(PublishRaceError) as lost:
        second.commit()
    assert lost.value.exit_code == ExitCode.LOCKED
    assert str(lost.value).startswith(f"s3://{bucket}/out/{MONTH}: another invoicing run "
                                      "committed this first")
    assert published_files(fs, bucket)["invoices/IM-202610-000001.pdf"] == b"first"
    assert [k.rsplit("/", 1)[-1] for k in fs.find(f"{bucket}/out")] == [
        "manifest.json", "IM-202610-000001.pdf"]


def test_an_identical_loser_keeps_the_winners_objects(fs: s3fs.S3FileSystem, bucket: str
                                                      ) -> None:
    out = location(f"s3://{bucket}/out")
    first, second = open_staging(out, MONTH), open_staging(out, MONTH)
    for staging in (first, second):
        staging.write_bytes("invoices.parquet", b"same bytes")
        staging.write_manifest({"outputs": dict(staging.hashes)})
    first.commit()
    with pytest.raises(PublishRaceError):
        second.commit()
    assert published_files(fs, bucket)["invoices.parquet"] == b"same bytes"


def command(bucket: str, inputs: str) -> list[str]:
    return [sys.executable, "-m", "invoicing.cli", "run", *s3_args(bucket, inputs),
            "--workers", "1", INCOMPLETE_OK]


def test_two_concurrent_runs_exactly_one_commits(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: Path) -> None:
    upload_month(fs, bucket, small_month(), tmp_path, "in")
    other = small_month().day(2, d(3), dau=50_000)
    upload_month(fs, bucket, other, tmp_path, "other")
    procs = [subprocess.Popen(command(bucket, inputs), cwd=REPO, env=dict(os.environ),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for inputs in ("in", "other")]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes[0] == 0 and codes[1] in (ExitCode.ALREADY_PUBLISHED, ExitCode.LOCKED), results
    loser = next(err for code, _, err in results if code != 0)
    errors = [line for line in loser.splitlines() if not line.startswith("rendering: ")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: s3://{bucket}/out/{MONTH}"), loser
    winner = "in" if results[0][0] == 0 else "other"
    assert len(fs.ls(f"{bucket}/out/{MONTH}/objects")) == 1
    verify = cli("verify", *s3_args(bucket, winner))
    assert verify.exit_code == 0, verify.output


def test_a_run_killed_while_rendering_commits_nothing_and_the_rerun_resumes(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: Path) -> None:
    """Objects go straight to the month's scope; killed before the commit, nothing is
    published (no manifest). The rerun (same inputs, same software: the same content
    key) takes the staged PDFs instead of rendering them, says how many, and publishes
    the bytes of an uninterrupted run."""
    many = MonthBuilder()
    for c in range(1, 7):
        many.customer(f"c{c:02d}").app(100 + c, f"c{c:02d}")
        many.day(100 + c, d(1), dau=10_000 + c)
    local_in = upload_month(fs, bucket, many, tmp_path)
    objects_root = f"{bucket}/out/{MONTH}/objects"

    def staged_pdfs() -> list[str]:
        return [k for k in fs.find(objects_root) if k.endswith(".pdf")]

    proc = subprocess.Popen(command(bucket, "in"), cwd=REPO, env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while len(staged_pdfs()) < 2:
            assert proc.poll() is None, "the run ended before it was killed"
            assert time.monotonic() < deadline, "no PDF was ever staged"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    staged = len(staged_pdfs())
    assert 2 <= staged < 6
    assert not fs.exists(f"{bucket}/out/{MONTH}/manifest.json")  # nothing committed
    unpublished = cli("verify", *s3_args(bucket))
    assert unpublished.exit_code == ExitCode.NOT_PUBLISHED

    rerun = cli("run", *s3_args(bucket), "--workers", "1")
    assert rerun.exit_code == 0, rerun.output
    assert "customers invoiced: 6 of 6" in rerun.output
    assert (f"  documents reused from an earlier unfinished run: {staged} "
            f"(rendered: {6 - staged})") in rerun.stdout
    assert (f"WARNING {MONTH}: reusing {staged} document(s) staged by an earlier "
            "unfinished run with the same inputs and software\n") in rerun.stderr
    # The killed run's fonts folder went with the rerun (core/scratch.py).
    assert not list(Path(tempfile.gettempdir()).glob(f"invoicing-{proc.pid}-*"))
    verify = cli("verify", *s3_args(bucket))
    assert verify.exit_code == 0, verify.output
    # Byte for byte the month of an uninterrupted run (here on a local disk).
    local = cli("run", "--month", MONTH, "--input", str(local_in), "--out",
                str(tmp_path / "out"), "--workers", "1")
    assert local.exit_code == 0, local.output
    assert published_files(fs, bucket) == local_files(tmp_path / "out" / MONTH)
    assert len(fs.ls(objects_root)) == 1


def test_staged_objects_older_than_their_lifetime_are_rendered_again(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    upload_month(fs, bucket, small_month(), tmp_path)
    first = cli("run", *s3_args(bucket), "--workers", "1")
    assert first.exit_code == 0, first.output
    published = published_files(fs, bucket)
    # As if the run had died before its commit (so before it recorded its head).
    fs.rm(f"{bucket}/out/{MONTH}/manifest.json")
    fs.rm(f"{bucket}/out/{MONTH}.heads", recursive=True)
    # A PDF staged with other bytes, too old to be trusted: rendered again, not reused.
    pdf = next(k for k in fs.find(f"{bucket}/out/{MONTH}/objects") if k.endswith(".pdf"))
    fs.pipe_file(pdf, b"stale")
    monkeypatch.setattr(storage_s3, "STAGED_LIFETIME_S", -60)  # everything is too old
    rerun = cli("run", *s3_args(bucket), "--workers", "1")
    assert rerun.exit_code == 0, rerun.output
    assert "reused" not in rerun.output
    assert published_files(fs, bucket) == published


# --- failures ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_endpoint_is_one_line_and_a_storage_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # retried once, then one line
    start = time.monotonic()
    result = cli("run", "--month", MONTH, "--input", str(SAMPLE), "--out", "s3://billing/out")
    assert time.monotonic() - start < 15
    assert result.exit_code == ExitCode.STORAGE
    assert result.output.startswith(
        f"Error: s3://billing/out: cannot reach the object storage endpoint {endpoint} ")
    assert len(result.output.splitlines()) == 1


def test_a_missing_bucket_is_one_line_and_a_storage_error(endpoint: str, tmp_path: Path) -> None:
    result = cli("run", "--month", MONTH, "--input", "s3://no-such-bucket/in/2026-10",
                 "--out", str(tmp_path / "out"))
    assert result.exit_code == ExitCode.STORAGE
    assert result.output == (
        "Error: s3://no-such-bucket/in/2026-10: not found in object storage: bucket "
        f"no-such-bucket does not exist at {endpoint}, or the object is missing (Not Found)\n")
    assert not (tmp_path / "out").exists()


def test_refused_credentials_are_one_line_and_a_storage_error(
        fs: s3fs.S3FileSystem, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    # moto checks signatures once its count of unauthenticated requests is used up.
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    result = cli("verify", *s3_args(bucket))
    assert result.exit_code == ExitCode.STORAGE
    assert result.output.startswith(
        f"Error: s3://{bucket}/in/{MONTH}: access refused by object storage (")
    assert len(result.output.splitlines()) == 1


def test_a_missing_object_names_it_and_nothing_is_committed(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: Path) -> None:
    upload_month(fs, bucket, small_month(), tmp_path)
    missing_book = cli("run", *s3_args(bucket), "--pricebook", f"s3://{bucket}/nope.toml")
    assert missing_book.exit_code == ExitCode.INPUT_ERROR
    assert missing_book.output.startswith("Error: s3://")
    fs.rm(f"{bucket}/in/{MONTH}/apps.parquet")
    result = cli("run", *s3_args(bucket), "--workers", "1")
    assert result.exit_code == ExitCode.INPUT_ERROR
    assert result.output == ("Error: apps.parquet: missing: neither apps.parquet nor apps.csv "
                             f"is in s3://{bucket}/in/{MONTH}\n")
    unpublished = cli("verify", *s3_args(bucket))
    assert unpublished.exit_code == ExitCode.NOT_PUBLISHED
    assert unpublished.output == (f"Error: s3://{bucket}/out/{MONTH}: the month has not been "
                                  "published; use 'invoicing run' first\n")
    assert not fs.exists(f"{bucket}/out")


def test_a_request_failing_while_publishing_is_a_storage_error_and_commits_nothing(
        fs: s3fs.S3FileSystem, bucket: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The staged objects vanish before the commit (say, a lifecycle rule far too short):
    the copy fails after its retries, and no manifest is written."""
    upload_month(fs, bucket, small_month(), tmp_path)
    commit = ObjectStaging.commit

    def commit_after_expiry(self: ObjectStaging) -> Path:
        fs.rm(f"{bucket}/out/.staging", recursive=True)
        return commit(self)

    monkeypatch.setattr(ObjectStaging, "commit", commit_after_expiry)
    result = cli("run", *s3_args(bucket), "--workers", "1")
    assert result.exit_code == ExitCode.STORAGE
    assert result.stderr.splitlines()[-1].startswith(
        "Error: an object vanished from object storage while in use (")
    assert not fs.exists(f"{bucket}/out/{MONTH}/manifest.json")


def test_only_s3_urls_are_accepted() -> None:
    result = cli("run", "--month", MONTH, "--input", "gs://bucket/in", "--out", "out")
    assert result.exit_code == ExitCode.USAGE
    assert "only local paths and s3://bucket/prefix URLs are supported" in result.output
