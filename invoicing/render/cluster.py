"""Rendering on a Dask cluster (`--cluster ADDRESS`): pricing here, layout on the workers.

The coordinating process (the one `invoicing run` runs in) prices the month, numbers the
invoices and builds every `InvoiceDocument`, as it does locally; only the rendering, which
is independent per document and takes ~99% of a month's CPU, is sent to the workers of
a Dask distributed cluster. The scheduler, the workers and their retries are Dask's own:

* **Same bytes.** Before the first document leaves, every worker reports its
  `render_environment.renderer_environment` (invoicing, WeasyPrint, pydyf and HarfBuzz
  versions, bundled fonts and templates); any difference from this process refuses the
  run (`ClusterMismatchError`, exit 13). Every PDF also comes back with the fingerprint
  of the environment that rendered it, so a worker that joins later is held to the same
  rule. Documents are rendered by the same `InvoiceRenderer` code as locally.
* **Flat memory.** At most `window` tasks of `batch_for` documents are in flight; each PDF
  is handed to the caller (which writes it to the staging folder) as soon as it arrives,
  and its future is released, so neither this process nor the cluster holds the month.
* **One renderer per worker process.** `_worker_renderer` builds an `InvoiceRenderer` the
  first time a worker renders and keeps it for the worker's life (fonts, stylesheet and
  the `render_engine` caches stay warm across documents and runs).
* **Faults.** A worker that dies mid-render has its tasks rerun elsewhere by the
  scheduler; the PDF is a function of the document, so the month is unchanged. A
  scheduler that cannot be reached, has no worker, goes away mid-run, or a cluster
  without a worker (or an answering scheduler) for `CLUSTER_TIMEOUT` seconds (every
  worker lost: Dask would wait for one forever) raises `ClusterUnavailableError` (exit
  12): the caller discards its staging folder, so nothing is published.

Dask is an optional extra (``pip install 'invoicing[cluster]'``); only this module imports
it, and only when ``--cluster`` is given.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import CancelledError
from itertools import islice
from typing import Any, TextIO

from invoicing.core.documents import InvoiceDocument
from invoicing.core.errors import ClusterMismatchError, ClusterUnavailableError
from invoicing.render.cluster_wait import Watch, Window, next_done
from invoicing.render.environment import differences, fingerprint, renderer_environment
from invoicing.render.pool import shared_renderer
from invoicing.render.progress import CLUSTER_TIMEOUT, Progress
from invoicing.storage import sha256_bytes, write_objects

try:
    from distributed import Client, as_completed
    from distributed.client import ClosedClientError, FutureCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker
except ImportError as exc:  # pragma: no cover - the base install
    raise ClusterUnavailableError(
        "--cluster needs Dask distributed: pip install 'invoicing[cluster]'") from exc

log = logging.getLogger("invoicing")

#: Seconds to wait for the scheduler to answer.
CONNECT_TIMEOUT = 10.0
#: Documents per task: each task costs the coordinator and the scheduler a few
#: messages, so several documents share one (a one-page invoice renders in ~0.1 s).
#: At least `BATCH`; up to `MAX_BATCH` when the month is large enough that every worker
#: thread still gets `TASKS_PER_THREAD` tasks (`batch_for`): a task of 16 halves the
#: batch's CPU per invoice against 4 (BENCHMARKS.md, "The width of the funnel").
BATCH = 4
MAX_BATCH = 16
TASKS_PER_THREAD = 16

#: What losing the scheduler (or every worker) looks like from the client side.
_LOST = (FutureCancelledError, CancelledError, CommClosedError, KilledWorker, OSError,
         TimeoutError, ClosedClientError)  # the last: the client closed itself on the loss

# --- on the workers -------------------------------------------------------------------------

#: A stand-in for the renderer on this worker, when set (the stub of
#: benchmarks/funnel_bench.py, which measures everything but the rendering).
_renderer: Any = None


def _worker_renderer() -> Any:
    """This worker process's renderer, built at its first document and then kept."""
    return _renderer or shared_renderer()


def worker_environment() -> dict[str, str | bool]:
    """Run on each worker by the coordinator's check (`Client.run`)."""
    return renderer_environment()


def render_on_worker(docs: list[InvoiceDocument], draft: bool
                     ) -> tuple[str, list[tuple[str, bytes]]]:
    """One Dask task: the fingerprint of this worker's environment and, per document, its
    number and PDF bytes."""
    renderer = _worker_renderer()
    pdfs = [(doc.invoice_number, renderer.render_pdf(doc, draft=draft)) for doc in docs]
    return fingerprint(renderer_environment()), pdfs


def store_on_worker(docs: list[InvoiceDocument], draft: bool, target: str, expected: str
                    ) -> tuple[str, list[tuple[str, str, int]]]:
    """One Dask task when the workers write: render, write each PDF to
    ``<target>/<number>.pdf`` (concurrently, with this worker's own storage
    configuration), and return only the fingerprint and, per document, its number,
    SHA-256 and size. A worker whose environment is not `expected` writes nothing."""
    made_by = fingerprint(renderer_environment())
    if made_by != expected:
        return made_by, [(doc.invoice_number, "", 0) for doc in docs]
    renderer = _worker_renderer()
    pdfs = {doc.invoice_number: renderer.render_pdf(doc, draft=draft) for doc in docs}
    write_objects(target, {f"{number}.pdf": pdf for number, pdf in pdfs.items()})
    return made_by, [(number, sha256_bytes(pdf), len(pdf)) for number, pdf in pdfs.items()]


# --- on the coordinator ---------------------------------------------------------------------


def _quiet_dask_logs() -> None:
    """Keep Dask's reconnection tracebacks off stderr: the failure is reported as one line.

    With ``-v`` (the invoicing logger at INFO) Dask's warnings and errors stay visible.
    """
    level = logging.WARNING if log.isEnabledFor(logging.INFO) else logging.CRITICAL
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(level)


def connect(address: str, timeout: float | None = None,
            worker_timeout: float | None = None) -> Client:
    """A client of the scheduler at `address` with at least one worker, or one clear error
    (`worker_timeout`: seconds to wait for the first worker, default `CLUSTER_TIMEOUT`)."""
    timeout = timeout or CONNECT_TIMEOUT
    worker_timeout = worker_timeout or CLUSTER_TIMEOUT
    _quiet_dask_logs()
    try:
        # PDFs come straight from the workers, not relayed through the scheduler.
        client = Client(address, timeout=timeout, set_as_default=False,
                        direct_to_workers=True)
    except (*_LOST, ValueError) as exc:
        raise ClusterUnavailableError(
            f"cluster {address}: cannot reach the scheduler ({_reason(exc)}); "
            "nothing was published") from None
    try:
        client.wait_for_workers(1, timeout=worker_timeout)
    except _LOST as exc:
        client.close(timeout=2)
        raise ClusterUnavailableError(
            f"cluster {address}: no worker joined within {worker_timeout:g} s "
            f"({_reason(exc)}); nothing was published") from None
    return client


def check_workers(client: Client, address: str) -> int:
    """Refuse the run unless every worker renders with this process's environment.

    Returns the number of worker threads.
    """
    here = renderer_environment()
    try:
        reports: dict[str, dict[str, str | bool]] = client.run(worker_environment)
    except _LOST as exc:
        raise ClusterUnavailableError(
            f"cluster {address}: lost while checking the workers ({_reason(exc)}); "
            "nothing was published") from None
    for worker, there in sorted(reports.items()):
        found = differences(here, there)
        if found:
            raise ClusterMismatchError(
                f"cluster {address}: worker {worker} renders with another environment "
                f"({'; '.join(found)}); its PDFs could differ from a local run, so "
                "nothing was rendered. Run the same image on the workers as here.")
    info = client.scheduler_info()
    return sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()) or 1


def scheduler_has_bokeh() -> bool:
    """Run on the scheduler: Dask's dashboard pages need bokeh, which the `cluster` extra
    does not install (without it the address serves only /health and /metrics)."""
    return importlib.util.find_spec("bokeh") is not None


def dashboard(client: Client) -> str:
    """The scheduler's dashboard address, or a note that it has none."""
    services = client.scheduler_info().get("services", {})
    if "dashboard" not in services:
        return "none (no dashboard)"
    with contextlib.suppress(Exception):  # advisory: the run does not need a dashboard
        if not client.run_on_scheduler(scheduler_has_bokeh):
            return "none (no bokeh on the scheduler)"
    return client.dashboard_link


def make_cluster_renderer(address: str, label: str = "rendering", stream: TextIO | None = None,
                          tty: bool | None = None, draft: bool = False,
                          window: int | None = None, timeout: float | None = None,
                          batch: int | None = None) -> ClusterRenderer:
    """A render function for `pipeline.run_month` that renders on the cluster at `address`.

    PDFs come back in completion order (the caller names and hashes each by its number,
    so the outputs do not depend on the order). ``window``: tasks in flight (default
    `WINDOW_PER_THREAD` per worker thread, recounted as workers come and go), each of
    `batch` documents (default: `batch_for` the month). ``timeout``: seconds without a
    worker (waiting for the first one, or after losing every one) after which the run
    stops with `ClusterUnavailableError` (default `CLUSTER_TIMEOUT`).
    """
    return ClusterRenderer(address, label, stream, tty, draft, window,
                           timeout or CLUSTER_TIMEOUT, batch)


def batch_for(total: int, threads: int) -> int:
    """Documents per task for `total` documents on `threads` worker threads."""
    return max(BATCH, min(MAX_BATCH, total // (max(1, threads) * TASKS_PER_THREAD)))


class ClusterRenderer:
    """A `RenderFn` on a Dask cluster; `store` has the workers write the PDFs themselves."""

    def __init__(self, address: str, label: str, stream: TextIO | None, tty: bool | None,
                 draft: bool, window: int | None, timeout: float, batch: int | None):
        self.address, self.label, self.stream, self.tty = address, label, stream, tty
        self.draft, self.window, self.timeout, self.batch = draft, window, timeout, batch

    def __call__(self, docs: Iterator[InvoiceDocument], total: int
                 ) -> Iterator[tuple[str, bytes]]:
        """(number, PDF bytes): the PDFs travel back to this process."""
        yield from self._run(docs, total, render_on_worker, self.draft)

    def store(self, docs: Iterator[InvoiceDocument], total: int, target: str
              ) -> Iterator[tuple[str, str, int]]:
        """(number, SHA-256, size): each worker writes its PDFs to ``<target>/<number>.pdf``
        (a `Staging.worker_target`), and only these three values travel back."""
        expected = fingerprint(renderer_environment())
        yield from self._run(docs, total, store_on_worker, self.draft, target, expected)

    def _run(self, docs: Iterator[InvoiceDocument], total: int, task: Any, *args: Any
             ) -> Iterator[tuple[Any, ...]]:
        if total == 0:
            return
        client = connect(self.address, worker_timeout=self.timeout)
        try:
            threads = check_workers(client, self.address)
            workers = len(client.scheduler_info().get("workers", {}))
            # Before the progress bar starts, so the bar keeps its line.
            print(f"{self.label} on cluster {self.address}: {workers} worker(s), {threads} "
                  f"thread(s); dashboard {dashboard(client)}", file=self.stream or sys.stderr,
                  flush=True)
            progress = Progress(self.label, total, self.stream, self.tty)
            try:
                yield from _stream(client, self.address, docs, self.window, progress,
                                   self.batch or batch_for(total, threads), self.timeout,
                                   task, *args)
            finally:
                progress.close()
        finally:
            client.close(timeout=5)


def _stream(client: Client, address: str, docs: Iterator[InvoiceDocument],
            window: int | None, progress: Progress, batch: int, timeout: float, task: Any,
            *args: Any) -> Iterator[tuple[Any, ...]]:
    """Keep `window` tasks ``task(documents, *args)`` of `batch` documents in flight
    (default: `WINDOW_PER_THREAD` per worker thread); yield each document's result as it
    arrives; stop after `timeout` seconds without a worker."""
    expected = fingerprint(renderer_environment())
    limit = Window(client, window)
    run = uuid.uuid4().hex[:8]  # keys unique per call, so two runs never share a result
    pending = as_completed(loop=client.loop)
    watch = Watch(client, address, timeout)
    in_flight = 0
    docs = iter(docs)
    try:
        while True:
            while in_flight < int(limit):
                chunk = list(islice(docs, batch))
                if not chunk:
                    break
                pending.add(client.submit(task, chunk, *args, pure=False,
                                          key=f"render-{chunk[0].invoice_number}-{run}"))
                in_flight += 1
            if in_flight == 0:
                return
            future = next_done(pending, watch)
            made_by, pdfs = future.result()
            future.release()
            in_flight -= 1
            if made_by != expected:
                raise ClusterMismatchError(
                    f"cluster {address}: {pdfs[0][0]} was rendered by a worker with another "
                    "environment (it joined after the check); nothing was published")
            for result in pdfs:
                yield result
                progress.advance()
    except _LOST as exc:
        raise ClusterUnavailableError(
            f"cluster {address}: lost during rendering ({_reason(exc)}); nothing was "
            "published, rerun when the cluster is back") from None
    finally:
        # Nothing left running for a run that stopped (the client's thread may be
        # completing futures meanwhile, hence the lock). A lost scheduler has already
        # cancelled them.
        with pending.lock:
            left = list(pending.futures)
        if left and client.status == "running":
            with contextlib.suppress(Exception):
                client.cancel(left)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
