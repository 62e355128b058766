"""Rendering throughput on a local Dask cluster next to the local process pool.

    python -m benchmarks.cluster_bench --count 150 --workers 1,2 --json OUT

For the same documents (`pdf_bench.documents`, the en/ko/zh mix of one-page invoices):

* the local pool: `pdf_bench.bench_renderer` with 2 processes (start-up not timed);
* for each worker count, a local cluster started as an operator would, each part in its
  own process on 127.0.0.1: ``dask scheduler`` and that many ``dask worker --nthreads 1``;
  every worker renders one warm-up invoice per locale first, then
  the documents go through `render_cluster` exactly as ``invoicing run --cluster`` sends
  them (bounded window, PDFs back as they complete). Connecting and the worker check are
  timed apart from the rendering.

Reported per run: invoices/s; CPU time per invoice of the coordinator (this process,
which holds the Dask client and its event-loop thread, while rendering; the documents
are built before the timer starts), of the scheduler and of the workers (their
processes, through psutil), next to the CPU time of one warm renderer in this process
(what an invoice costs locally); and the bytes moved per invoice (the pickled document
out plus the PDF back; Dask's message framing is not counted).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.pdf_bench import LOCALES, MIX, bench_renderer, documents, warm_up_documents
from invoicing.core.documents import InvoiceDocument


def _warm_up(docs: list[InvoiceDocument]) -> int:
    """Run on each worker: build its renderer and render one invoice per locale."""
    from invoicing.render import cluster as render_cluster

    renderer = render_cluster._worker_renderer()
    return sum(len(renderer.render_pdf(doc)) for doc in docs)


class LocalProcesses:
    """``dask scheduler`` and `workers` ``dask worker`` processes on 127.0.0.1."""

    def __init__(self, workers: int, folder: Path):
        dask = str(Path(sys.executable).parent / "dask")
        file = folder / "scheduler.json"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.scheduler = subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(file)], cwd=folder,
            env={**os.environ, "DASK_TEMPORARY_DIRECTORY": str(folder)}, **quiet)  # type: ignore[call-overload]
        deadline = time.monotonic() + 60
        while not (file.exists() and file.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.address: str = json.loads(file.read_text())["address"]
        self.workers = [subprocess.Popen(
            [dask, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
             "--no-nanny", "--no-dashboard", "--local-directory", str(folder)], cwd=folder, **quiet)  # type: ignore[call-overload]
            for _ in range(workers)]

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            process.terminate()  # a worker removes its renderer's fonts on SIGTERM
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def bench_cluster(workers: int, docs: list[InvoiceDocument]) -> dict[str, Any]:
    import psutil
    from distributed import Client

    from invoicing.render import cluster as render_cluster
    from invoicing.render.progress import CLUSTER_TIMEOUT, Progress

    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as folder:
        cluster = LocalProcesses(workers, Path(folder))
        try:
            with Client(cluster.address, set_as_default=False) as admin:
                admin.wait_for_workers(workers, timeout=120)
                admin.run(_warm_up, warm_up_documents(MIX))
            scheduler = psutil.Process(cluster.scheduler.pid)
            worker_processes = [psutil.Process(w.pid) for w in cluster.workers]
            began = time.perf_counter()
            client = render_cluster.connect(cluster.address)
            try:
                render_cluster.check_workers(client, cluster.address)
                ready = time.perf_counter()
                cpu, scheduler_cpu = time.process_time(), sum(scheduler.cpu_times()[:2])
                worker_cpu = sum(sum(w.cpu_times()[:2]) for w in worker_processes)
                start = time.perf_counter()
                progress = Progress("rendering", len(docs), stream=io.StringIO(), tty=False)
                pdf_bytes = 0
                for _, pdf in render_cluster._stream(
                        client, cluster.address, iter(docs), None, progress,
                        render_cluster.BATCH, CLUSTER_TIMEOUT, render_cluster.render_on_worker,
                        False):
                    pdf_bytes += len(pdf)
                seconds = time.perf_counter() - start
                coordinator_cpu = time.process_time() - cpu
                scheduler_cpu = sum(scheduler.cpu_times()[:2]) - scheduler_cpu
                worker_cpu = sum(sum(w.cpu_times()[:2]) for w in worker_processes) - worker_cpu
            finally:
                client.close(timeout=5)
        finally:
            cluster.stop()
    doc_bytes = sum(len(pickle.dumps(doc, protocol=5)) for doc in docs)
    return {
        "mode": "cluster", "workers": workers, "count": len(docs), "seconds": seconds,
        "per_second": len(docs) / seconds, "connect_check_seconds": ready - began,
        "coordinator_cpu_ms_per_invoice": 1000 * coordinator_cpu / len(docs),
        "scheduler_cpu_ms_per_invoice": 1000 * scheduler_cpu / len(docs),
        "worker_cpu_ms_per_invoice": 1000 * worker_cpu / len(docs),
        "document_bytes_per_invoice": doc_bytes / len(docs),
        "pdf_bytes_per_invoice": pdf_bytes / len(docs),
    }


def local_cpu(docs: list[InvoiceDocument]) -> dict[str, Any]:
    """CPU time per invoice of one warm renderer in this process: what a core costs locally."""
    from invoicing.render.pdf import InvoiceRenderer

    renderer = InvoiceRenderer()
    for doc in warm_up_documents(MIX):
        renderer.render_pdf(doc)
    cpu = time.process_time()
    for doc in docs:
        renderer.render_pdf(doc)
    return {"cpu_ms_per_invoice": 1000 * (time.process_time() - cpu) / len(docs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=150,
                        help="invoices per measurement (a multiple of 3: the locale mix)")
    parser.add_argument("--workers", default="1,2", help="cluster sizes, comma-separated")
    parser.add_argument("--pool-workers", type=int, default=2,
                        help="processes of the local pool measured alongside (0 = skip)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every measurement, interleaved; the fastest of each "
                             "is kept (on a shared machine the load changes between runs)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    count = -(-args.count // len(LOCALES)) * len(LOCALES)
    docs = documents(MIX, count)
    sizes = [int(w) for w in args.workers.split(",")]
    pools: list[dict[str, Any]] = []
    clusters: dict[int, list[dict[str, Any]]] = {w: [] for w in sizes}
    for _ in range(max(1, args.repeat)):
        if args.pool_workers:
            pools.append(bench_renderer(MIX, count, args.pool_workers))
        for workers in sizes:
            clusters[workers].append(bench_cluster(workers, docs))

    def fastest(runs: list[dict[str, Any]]) -> dict[str, Any]:
        best = max(runs, key=lambda r: r["per_second"])
        return best | {"all_per_second": [r["per_second"] for r in runs]}

    result: dict[str, Any] = {"count": count, "repeat": args.repeat,
                              "clusters": [fastest(clusters[w]) for w in sizes],
                              "local": local_cpu(docs)}
    if pools:
        result["pool"] = fastest(pools)
    args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
