"""The width of the funnel: how fast one batch process feeds, tracks and commits a month on
a cluster when rendering costs nothing.

    python -m benchmarks.funnel_bench --count 3000 --workers 2 --json OUT

Rendering is replaced by a stub on every worker (each "PDF" is the same fixed bytes, the
size of a one-page invoice), so a 2-core machine measures the batch process, not the
renderer. Everything else is what ``invoicing run --cluster`` does (`ClusterRenderer`):
the documents (`pdf_bench.documents`, pickled to the workers in tasks of 4, the window of
3 tasks per worker thread), the workers' results tracked as they complete, a manifest,
the commit. Two outputs, each measured separately:

* ``s3``: a ``moto_server`` process on 127.0.0.1 stands for object storage; the workers
  PUT their PDFs into the month's scope (their own AWS variables) and return number,
  SHA-256 and size; the batch records them, writes the manifest with ``If-None-Match``
  and copies nothing;
* ``local``: the PDFs come back to the batch, which writes each into its temporary folder
  (with ``fsync``) and renames the folder into place.

Reported per output: invoices/s from the first document sent to the commit, and the CPU
time of the batch process (every thread of it: the Dask client's event loop included)
per invoice; 1000 / that CPU is how many invoices/s one batch core can sustain.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.pdf_bench import MIX, documents
from invoicing.core.documents import InvoiceDocument

REPO = Path(__file__).resolve().parents[1]
#: The size of a one-page invoice (BENCHMARKS.md: ~34.7 KiB back per invoice).
PDF_BYTES = 35_500
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_DEFAULT_REGION": "us-east-1"}


class StubRenderer:
    """Stands for `InvoiceRenderer` on a worker: the same fixed bytes for every document."""

    def __init__(self, size: int):
        self.pdf = b"%PDF-1.7\n" + b"0" * (size - 9)

    def render_pdf(self, doc: InvoiceDocument, draft: bool = False) -> bytes:
        return self.pdf


def install_stub(size: int) -> None:
    """Run on each worker: its renderer becomes the stub."""
    from invoicing.render import cluster as render_cluster

    render_cluster._renderer = StubRenderer(size)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """``moto_server``, ``dask scheduler`` and `workers` ``dask worker`` on 127.0.0.1."""

    def __init__(self, workers: int, folder: Path):
        bin_dir = Path(sys.executable).parent
        quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.endpoint = f"http://127.0.0.1:{_free_port()}"
        port = self.endpoint.rsplit(":", 1)[1]
        self.moto = subprocess.Popen([str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p",
                                      port], **quiet)
        file = folder / "scheduler.json"
        self.scheduler = subprocess.Popen(
            [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(file)], **quiet)
        deadline = time.monotonic() + 60
        while not (file.exists() and file.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.address: str = json.loads(file.read_text())["address"]
        env = {**os.environ, **AWS, "AWS_ENDPOINT_URL": self.endpoint,
               "PYTHONPATH": str(REPO)}  # the workers import this module for the stub
        self.workers = [subprocess.Popen(
            [str(bin_dir / "dask"), "worker", self.address, "--host", "127.0.0.1",
             "--nthreads", "1", "--no-nanny", "--no-dashboard"], cwd=folder, env=env, **quiet)
            for _ in range(workers)]

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler, self.moto]:
            process.kill()
            process.wait(timeout=30)


def bench_output(output: str, cluster: Processes, docs: list[InvoiceDocument],
                 folder: Path, batch: int) -> dict[str, Any]:
    from invoicing.render import cluster as render_cluster
    from invoicing.render.environment import fingerprint, renderer_environment
    from invoicing.render.progress import CLUSTER_TIMEOUT, Progress
    from invoicing.storage import content_key, location, open_staging

    tag = {"bench": f"funnel-{output}-{time.time_ns()}"}
    out = location(f"s3://funnel/{tag['bench']}") if output == "s3" else folder / tag["bench"]
    staging = open_staging(out, "2026-10", key=content_key(tag))
    target = staging.worker_target()
    import psutil

    others = {"moto": [psutil.Process(cluster.moto.pid)],
              "workers": [psutil.Process(w.pid) for w in cluster.workers],
              "scheduler": [psutil.Process(cluster.scheduler.pid)]}

    def cpu_of() -> dict[str, float]:
        return {k: sum(sum(p.cpu_times()[:2]) for p in ps) for k, ps in others.items()}

    client = render_cluster.connect(cluster.address)
    try:
        render_cluster.check_workers(client, cluster.address)
        progress = Progress("rendering", len(docs), stream=io.StringIO(), tty=False)
        cpu, start, before = time.process_time(), time.perf_counter(), cpu_of()
        if target is not None:
            expected = fingerprint(renderer_environment())
            for number, sha256, _ in render_cluster._stream(
                    client, cluster.address, iter(docs), None, progress, batch,
                    CLUSTER_TIMEOUT, render_cluster.store_on_worker, False,
                    f"{target}/invoices", expected):
                staging.record(f"invoices/{number}.pdf", sha256)
        else:
            for number, pdf in render_cluster._stream(
                    client, cluster.address, iter(docs), None, progress, batch,
                    CLUSTER_TIMEOUT, render_cluster.render_on_worker, False):
                staging.write_bytes(f"invoices/{number}.pdf", pdf)
        staging.write_manifest({**tag, "outputs": dict(staging.hashes)})
        staging.commit()
        seconds = time.perf_counter() - start
        batch_cpu = time.process_time() - cpu
        after = cpu_of()
    finally:
        client.close(timeout=5)
    return {"output": output, "count": len(docs), "seconds": seconds,
            "per_second": len(docs) / seconds,
            "batch_cpu_ms_per_invoice": 1000 * batch_cpu / len(docs),
            "batch_core_invoices_per_second": len(docs) / batch_cpu,
            "files_committed": len(staging.hashes),
            **{f"{k}_cpu_ms_per_invoice": 1000 * (after[k] - before[k]) / len(docs)
               for k in others}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="invoices per measurement")
    parser.add_argument("--workers", type=int, default=2, help="dask worker processes")
    parser.add_argument("--outputs", default="s3,local", help="s3, local or both")
    parser.add_argument("--batch", type=int, default=0,
                        help="documents per task (default: the cluster renderer's batch_for)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds, interleaved; the fastest of each output is kept")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    docs = documents(MIX, args.count)
    from invoicing.render.cluster import batch_for

    batch = args.batch or batch_for(args.count, args.workers)
    runs: dict[str, list[dict[str, Any]]] = {o: [] for o in args.outputs.split(",")}
    with tempfile.TemporaryDirectory(prefix="funnel-bench-") as name:
        folder = Path(name)
        cluster = Processes(args.workers, folder)
        try:
            from distributed import Client

            with Client(cluster.address, set_as_default=False) as admin:
                admin.wait_for_workers(args.workers, timeout=120)
                admin.run(install_stub, PDF_BYTES)
            os.environ.update({**AWS, "AWS_ENDPOINT_URL": cluster.endpoint})
            import s3fs

            s3fs.S3FileSystem(endpoint_url=cluster.endpoint, key="testing", secret="testing",
                              skip_instance_cache=True).mkdir("funnel")
            for _ in range(max(1, args.repeat)):
                for output in runs:
                    runs[output].append(bench_output(output, cluster, docs, folder, batch))
        finally:
            cluster.stop()
    result = {"count": args.count, "workers": args.workers, "pdf_bytes": PDF_BYTES,
              "batch": batch,
              "outputs": {o: max(r, key=lambda x: x["per_second"]) | {
                  "all_per_second": [x["per_second"] for x in r],
                  "all_cpu_ms": [x["batch_cpu_ms_per_invoice"] for x in r]}
                  for o, r in runs.items()}}
    args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
