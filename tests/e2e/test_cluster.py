"""Rendering on a real Dask cluster on 127.0.0.1: same bytes, faults, refused workers.

One `LocalCluster` (two worker processes, one thread each) is shared by the module; the
tests that stop a scheduler or bring a foreign worker start their own with the
``dask scheduler`` / ``dask worker`` commands, as an operator would. Nothing listens on
anything but 127.0.0.1, and every wait is bounded.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest
from click.testing import CliRunner
from distributed import Client, LocalCluster

from invoicing.cli import main
from invoicing.core.errors import ClusterUnavailableError, ExitCode
from invoicing.core.timeframe import Month
from invoicing.pipeline import run_month
from invoicing.render import cluster as render_cluster
from invoicing.render.cluster import make_cluster_renderer
from invoicing.render.environment import renderer_environment
from tests.builders import assert_stopped

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "2026-10"
BIN = Path(sys.executable).parent
MONTH = Month.parse("2026-10")


def hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_args(out: Path, *extra: str) -> list[str]:
    return ["run", "--month", "2026-10", "--input", str(SAMPLE), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def local_month(sample_published: tuple[Path, str, str]) -> tuple[Path, str]:
    """The sample month rendered locally (conftest.py): the reference bytes and progress."""
    out, _, stderr = sample_published
    return out / "2026-10", stderr


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    # Dask's own scratch space in a test folder, not in TMPDIR (which must stay empty).
    scratch = str(tmp_path_factory.mktemp("dask"))
    with dask.config.set({"temporary-directory": scratch}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address="127.0.0.1:0", local_directory=scratch) as local, \
            Client(local, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        yield client


class Scheduler:
    """A ``dask scheduler`` process on 127.0.0.1 and ``dask worker`` processes for it."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        file = tmp / "scheduler.json"
        self.processes = [subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(file)],
            env={**os.environ, "DASK_TEMPORARY_DIRECTORY": str(tmp)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        self.address = json.loads(_wait_for(file).read_text())["address"]

    def worker(self, pythonpath: Path | None = None,
               extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        env = {**os.environ, **(extra_env or {})}
        if pythonpath is not None:
            env["PYTHONPATH"] = str(pythonpath)
        process = subprocess.Popen(
            [str(BIN / "dask"), "worker", self.address, "--host", "127.0.0.1", "--nthreads",
             "1", "--no-nanny", "--no-dashboard", "--local-directory", str(self.tmp)],
            env=env, cwd=self.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        # SIGTERM, as an operator stopping a worker would: it removes its renderer's fonts.
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def _wait_for(path: Path, seconds: float = 30.0) -> Path:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            return path
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not appear within {seconds} s")


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[Scheduler]:
    started = Scheduler(tmp_path)
    try:
        yield started
    finally:
        started.stop()


class OnFirstProgress(io.StringIO):
    """A progress stream that calls `action` once, when the first progress line is written."""

    def __init__(self, action: object):
        super().__init__()
        self.action = action
        self.fired = False

    def write(self, text: str) -> int:
        if not self.fired and text.startswith("rendering: "):
            self.fired = True
            self.action()  # type: ignore[operator]
        return super().write(text)


def cluster_run(out: Path, address: str, stream: io.StringIO) -> None:
    run_month(SAMPLE, out, MONTH, render=make_cluster_renderer(address, stream=stream, tty=False))


# --- the tests ------------------------------------------------------------------------------


def test_the_base_install_does_not_import_dask() -> None:
    code = ("import sys, invoicing.cli, invoicing.pipeline, invoicing.render.pool, "
            "invoicing.audit.reissue; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('dask', 'distributed')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_sample_month_on_the_cluster_is_byte_identical(
        tmp_path: Path, cluster: Client, local_month: tuple[Path, str]) -> None:
    reference, local_progress = local_month
    address = cluster.scheduler.address
    code, stdout, stderr = invoke(*run_args(tmp_path, "--cluster", address))
    assert code == 0, stdout + stderr
    assert hashes(tmp_path / "2026-10") == hashes(reference)
    first, *progress = stderr.splitlines()
    # The `cluster` extra does not install bokeh, so no dashboard is promised.
    assert first == (f"rendering on cluster {address}: 2 worker(s), 2 thread(s); "
                     "dashboard none (no bokeh on the scheduler)")
    assert progress == local_progress.splitlines()  # the same lines as a local run
    assert progress[-1] == "rendering: 18/18 (100%)"
    assert stdout.startswith("2026-10: published")


def test_the_manifest_records_the_renderer_environment(local_month: tuple[Path, str]) -> None:
    manifest = json.loads((local_month[0] / "manifest.json").read_text(encoding="utf-8"))
    env = renderer_environment()
    assert manifest["renderer"] == env
    assert env["weasyprint"] == "70.0"
    assert env["harfbuzz"].count(".") == 2 and env["harfbuzz_subset"] is True
    assert len(str(env["fonts_sha256"])) == 64


def test_the_cluster_address_comes_from_the_environment(
        tmp_path: Path, cluster: Client, local_month: tuple[Path, str]) -> None:
    result = CliRunner().invoke(main, ["preview", "--month", "2026-10", "--input", str(SAMPLE),
                                       "--drafts", str(tmp_path / "drafts")],
                                env={"INVOICING_CLUSTER": cluster.scheduler.address})
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"drafts on cluster {cluster.scheduler.address}: ")
    assert len(list((tmp_path / "drafts").glob("DRAFT-IM-202610-*.pdf"))) == 18


def test_a_worker_killed_mid_run_still_gives_the_same_month(
        tmp_path: Path, cluster: Client, local_month: tuple[Path, str]) -> None:
    pids = cluster.run(os.getpid)
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        busy = sorted(w for w, keys in cluster.processing().items() if keys)
        killed.append(pids[busy[0]])
        os.kill(killed[0], signal.SIGKILL)

    stream = OnFirstProgress(kill_a_busy_worker)
    cluster_run(tmp_path, cluster.scheduler.address, stream)
    assert stream.fired and killed
    victim = killed[0]
    assert hashes(tmp_path / "2026-10") == hashes(local_month[0])
    # The nanny replaced the killed process; the next test gets two workers again.
    cluster.wait_for_workers(2, timeout=60)
    assert victim not in cluster.run(os.getpid).values()


def test_an_unreachable_scheduler_fails_cleanly(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_cluster, "CONNECT_TIMEOUT", 1.0)
    address = "tcp://127.0.0.1:9"  # discard port: nothing listens
    result = CliRunner().invoke(main, run_args(tmp_path, "--cluster", address))
    assert_stopped(result, ExitCode.CLUSTER_UNAVAILABLE,
                   f"cluster {address}: cannot reach the scheduler (OSError: Timed out trying "
                   f"to connect to {address} after 1 s); nothing was published", tmp_path)


@pytest.mark.parametrize("address", ["nonsense", "tcp://scheduler", "tcp://a b:8786"])
def test_a_malformed_address_is_a_usage_error(tmp_path: Path, address: str) -> None:
    result = CliRunner().invoke(main, run_args(tmp_path, "--cluster", address))
    assert result.exit_code == ExitCode.USAGE
    assert (f"Invalid value for '--cluster': {address!r} is not a scheduler address such as "
            "tcp://scheduler:8786") in result.stderr
    assert not (tmp_path / "2026-10").exists()


def test_a_scheduler_stopped_mid_run_publishes_nothing_and_the_rerun_completes(
        tmp_path: Path, scheduler: Scheduler, local_month: tuple[Path, str]) -> None:
    scheduler.worker()
    stream = OnFirstProgress(lambda: scheduler.processes[0].kill())
    with pytest.raises(ClusterUnavailableError) as failure:
        cluster_run(tmp_path, scheduler.address, stream)
    assert stream.fired
    assert str(failure.value).startswith(f"cluster {scheduler.address}: lost during rendering (")
    assert str(failure.value).endswith("nothing was published, rerun when the cluster is back")
    assert "\n" not in str(failure.value)
    assert not (tmp_path / "2026-10").exists()
    assert not list(tmp_path.glob(".2026-10.tmp-*"))
    # The rerun (here on this machine) completes and gives the reference month.
    code, stdout, stderr = invoke(*run_args(tmp_path, "--workers", "1"))
    assert code == 0, stdout + stderr
    assert hashes(tmp_path / "2026-10") == hashes(local_month[0])


def foreign_installation(root: Path, extra_font: bool = True) -> Path:
    """A copy of invoicing whose bundled fonts differ by one extra file (fonts symlinked),
    or (``extra_font=False``) whose code differs by one comment line."""
    shutil.copytree(REPO / "invoicing", root / "invoicing",
                    ignore=shutil.ignore_patterns("__pycache__"))
    fonts = root / "templates" / "fonts"
    fonts.mkdir(parents=True)
    for path in (REPO / "templates").iterdir():
        if path.is_file():
            (root / "templates" / path.name).symlink_to(path)
    for path in (REPO / "templates" / "fonts").iterdir():
        (fonts / path.name).symlink_to(path)
    if extra_font:
        (fonts / "Extra.ttf").write_bytes(b"not the image's font")
    else:
        money = root / "invoicing" / "core" / "money.py"
        money.write_text(money.read_text() + "# a hot fix deployed to one worker only\n")
    return root


def test_a_worker_with_other_fonts_is_refused(tmp_path: Path, scheduler: Scheduler) -> None:
    scheduler.worker(pythonpath=foreign_installation(tmp_path / "foreign"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, run_args(out, "--cluster", scheduler.address))
    assert result.exit_code == ExitCode.CLUSTER_MISMATCH, result.output
    line, = result.stderr.strip().splitlines()
    here = str(renderer_environment()["fonts_sha256"])
    assert line.startswith(f"Error: cluster {scheduler.address}: worker tcp://127.0.0.1:")
    # The fonts are data of the software, so its identity differs too.
    assert "renders with another environment (software_sha256 " in line
    assert f"; fonts_sha256 {here[:12]}… here, " in line
    assert line.endswith("nothing was rendered. Run the same image on the workers as here.")
    assert "templates_sha256" not in line  # only the fonts differ
    assert not (out / "2026-10").exists()
    assert not list(out.glob(".2026-10.tmp-*"))


def test_a_worker_running_changed_code_is_refused(tmp_path: Path, scheduler: Scheduler) -> None:
    """The same version string, one changed line of code: the software identity differs."""
    scheduler.worker(pythonpath=foreign_installation(tmp_path / "foreign", extra_font=False))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, run_args(out, "--cluster", scheduler.address))
    assert result.exit_code == ExitCode.CLUSTER_MISMATCH, result.output
    line, = result.stderr.strip().splitlines()
    here = str(renderer_environment()["software_sha256"])
    assert f"renders with another environment (software_sha256 {here[:12]}… here, " in line
    assert "fonts_sha256" not in line and "templates_sha256" not in line
    assert not (out / "2026-10").exists()


def test_losing_every_worker_ends_the_run_within_the_cluster_timeout(
        tmp_path: Path, scheduler: Scheduler) -> None:
    """Scheduler up, both workers killed by PID: Dask would wait for a worker forever; the
    run stops after --cluster-timeout seconds without one, exit 12, nothing left."""
    workers = [scheduler.worker(), scheduler.worker()]
    with Client(scheduler.address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)

    def kill_every_worker() -> None:
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)

    stream = OnFirstProgress(kill_every_worker)
    render = make_cluster_renderer(scheduler.address, stream=stream, tty=False, timeout=3.0,
                                   batch=1)
    with pytest.raises(ClusterUnavailableError) as failure:
        run_month(SAMPLE, tmp_path, MONTH, render=render)
    assert stream.fired
    assert all(worker.wait(timeout=10) == -signal.SIGKILL for worker in workers)
    assert str(failure.value) == (
        f"cluster {scheduler.address}: no worker for 3 s (every worker lost, or the "
        "scheduler not answering); nothing was published, rerun when the cluster is back")
    assert failure.value.exit_code == ExitCode.CLUSTER_UNAVAILABLE
    assert not (tmp_path / "2026-10").exists()
    assert not list(tmp_path.glob(".2026-10.tmp-*"))


def test_a_cluster_without_workers_ends_within_the_timeout_from_the_environment(
        tmp_path: Path, scheduler: Scheduler) -> None:
    result = CliRunner().invoke(main, run_args(tmp_path, "--cluster", scheduler.address),
                                env={"INVOICING_CLUSTER_TIMEOUT": "1"})
    assert_stopped(result, ExitCode.CLUSTER_UNAVAILABLE,
                   f"cluster {scheduler.address}: no worker joined within 1 s "
                   "(WorkerStartTimeoutError: Only 0/1 workers arrived after 1.0); nothing was "
                   "published", tmp_path)


def test_workers_write_the_pdfs_to_object_storage_and_the_batch_only_counts(
        tmp_path: Path, scheduler: Scheduler, local_month: tuple[Path, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With --out on object storage the workers PUT each PDF into the month's scope with
    their own AWS variables; the batch gets number, SHA-256 and size, writes only the
    Parquet files and the manifest, and the commit copies nothing: the same bytes."""
    from moto.server import ThreadedMotoServer

    from invoicing.storage import ObjectStaging, content_key, location

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        aws = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        for name, value in aws.items():
            monkeypatch.setenv(name, value)
        scheduler.worker(extra_env=aws)
        scheduler.worker(extra_env=aws)
        out = location("s3://billing/out")
        import s3fs

        s3fs.S3FileSystem(endpoint_url=aws["AWS_ENDPOINT_URL"], key="testing",
                          secret="testing", skip_instance_cache=True).mkdir("billing")
        written_here: list[str] = []
        write_bytes = ObjectStaging.write_bytes

        def spy(self: ObjectStaging, relative: str, data: bytes) -> str:
            written_here.append(relative)
            return write_bytes(self, relative, data)

        monkeypatch.setattr(ObjectStaging, "write_bytes", spy)
        render = make_cluster_renderer(scheduler.address, stream=io.StringIO(), tty=False)
        result = run_month(SAMPLE, out, MONTH, render=render)
        # No PDF passes through the batch: it writes the tables and the Peppol XML that
        # C1017's format puts beside its PDF (built here, it needs no rendering).
        assert written_here == ["invoices/IM-202610-000016.xml", "line_items.parquet",
                                "invoices.parquet", "rejected_rows.parquet",
                                "anomalies.parquet"]
        fs = out.fs  # type: ignore[attr-defined]
        manifest = fs.cat_file("billing/out/2026-10/manifest.json")
        scope = f"billing/out/2026-10/objects/{content_key(json.loads(manifest))}"
        stored = {name: hashlib.sha256(fs.cat_file(f"{scope}/{name}")).hexdigest()
                  for name in result.manifest["outputs"] if name != "manifest.json"}
        stored["manifest.json"] = hashlib.sha256(manifest).hexdigest()
        assert stored == hashes(local_month[0])
        assert not fs.exists("billing/out/.staging")  # nothing staged elsewhere, no copies
    finally:
        server.stop()
