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
* **Flat memory.** At most `window` tasks of `BATCH` documents are in flight; each PDF
  is handed to the caller (which writes it to the staging folder) as soon as it arrives,
  and its future is released, so neither this process nor the cluster holds the month.
* **One renderer per worker process.** `_worker_renderer` builds an `InvoiceRenderer` the
  first time a worker renders and keeps it for the worker's life (fonts, stylesheet and
  the `render_engine` caches stay warm across documents and runs).
* **Faults.** A worker that dies mid-render has its tasks rerun elsewhere by the
  scheduler; the PDF is a function of the document, so the month is unchanged. A
  scheduler that cannot be reached, has no worker, or goes away mid-run raises
  `ClusterUnavailableError` (exit 12): the caller discards its staging folder, so nothing
  is published, and a rerun starts again from scratch.

Dask is an optional extra (``pip install 'invoicing[cluster]'``); only this module imports
it, and only when ``--cluster`` is given.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import CancelledError
from itertools import islice
from typing import Any, TextIO

from invoicing.core.documents import InvoiceDocument
from invoicing.core.errors import ClusterMismatchError, ClusterUnavailableError
from invoicing.render.environment import differences, fingerprint, renderer_environment
from invoicing.render.progress import Progress, RenderFn

try:
    from distributed import Client, as_completed
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker
except ImportError as exc:  # pragma: no cover - the base install
    raise ClusterUnavailableError(
        "--cluster needs Dask distributed: pip install 'invoicing[cluster]'") from exc

log = logging.getLogger("invoicing")

#: Seconds to wait for the scheduler to answer, and for at least one worker to join.
CONNECT_TIMEOUT = 10.0
WORKER_TIMEOUT = 60.0
#: Documents per task: each task costs the coordinator and the scheduler a few
#: messages, so a few documents share one (a one-page invoice renders in ~0.1 s).
BATCH = 4
#: Tasks in flight per worker thread: enough to keep every worker busy while PDFs
#: travel back, few enough that memory stays flat (a document is ~2 KiB, a PDF ~40 KiB).
WINDOW_PER_THREAD = 3

#: What losing the scheduler (or every worker) looks like from the client side.
_LOST = (FutureCancelledError, CancelledError, CommClosedError, KilledWorker, OSError,
         TimeoutError)

# --- on the workers -------------------------------------------------------------------------

_renderer: Any = None
_renderer_lock = threading.Lock()


def _worker_renderer() -> Any:
    """This worker process's renderer, built at its first document and then kept."""
    global _renderer
    with _renderer_lock:
        if _renderer is None:
            from invoicing.render.pdf import InvoiceRenderer

            _renderer = InvoiceRenderer()
        return _renderer


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
    """A client of the scheduler at `address` with at least one worker, or one clear error."""
    timeout = timeout or CONNECT_TIMEOUT
    worker_timeout = worker_timeout or WORKER_TIMEOUT
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


def dashboard(client: Client) -> str:
    """The scheduler's dashboard address, or a note that it has none."""
    services = client.scheduler_info().get("services", {})
    return client.dashboard_link if "dashboard" in services else "none (no dashboard)"


def make_cluster_renderer(address: str, label: str = "rendering", stream: TextIO | None = None,
                          tty: bool | None = None, draft: bool = False,
                          window: int | None = None) -> RenderFn:
    """A render function for `pipeline.run_month` that renders on the cluster at `address`.

    PDFs come back in completion order (the caller names and hashes each by its number,
    so the outputs do not depend on the order). ``window``: tasks in flight (default
    `WINDOW_PER_THREAD` per worker thread, recounted as workers come and go), each of
    `BATCH` documents.
    """

    def render(docs: Iterator[InvoiceDocument], total: int) -> Iterator[tuple[str, bytes]]:
        if total == 0:
            return
        client = connect(address)
        try:
            threads = check_workers(client, address)
            workers = len(client.scheduler_info().get("workers", {}))
            # Before the progress bar starts, so the bar keeps its line.
            print(f"{label} on cluster {address}: {workers} worker(s), {threads} thread(s); "
                  f"dashboard {dashboard(client)}", file=stream or sys.stderr, flush=True)
            progress = Progress(label, total, stream, tty)
            try:
                yield from _stream(client, address, docs, window, draft, progress)
            finally:
                progress.close()
        finally:
            client.close(timeout=5)

    return render


class _Window:
    """Tasks to keep in flight: fixed, or `WINDOW_PER_THREAD` per worker thread, recounted
    at most once a second, so workers that join during the run (a cluster still scaling
    up when the batch starts) get work too."""

    def __init__(self, client: Client, fixed: int | None):
        self.client = client
        self.fixed = fixed
        self.size = fixed or 1
        self.counted = float("-inf")

    def __int__(self) -> int:
        now = time.monotonic()
        if self.fixed is None and now - self.counted >= 1.0 and self.client.status == "running":
            self.counted = now
            # Advisory: if the scheduler is gone, the futures report it, not this count.
            with contextlib.suppress(Exception):
                self.size = WINDOW_PER_THREAD * max(1, sum(self.client.nthreads().values()))
        return self.size


def _stream(client: Client, address: str, docs: Iterator[InvoiceDocument],
            window: int | None, draft: bool, progress: Progress, batch: int = BATCH
            ) -> Iterator[tuple[str, bytes]]:
    """Keep `window` tasks of `batch` documents in flight (default: `WINDOW_PER_THREAD` per
    worker thread); yield each PDF as it arrives."""
    expected = fingerprint(renderer_environment())
    limit = _Window(client, window)
    run = uuid.uuid4().hex[:8]  # keys unique per call, so two runs never share a result
    pending = as_completed(loop=client.loop)
    in_flight = 0
    docs = iter(docs)
    try:
        while True:
            while in_flight < int(limit):
                chunk = list(islice(docs, batch))
                if not chunk:
                    break
                pending.add(client.submit(render_on_worker, chunk, draft, pure=False,
                                          key=f"render-{chunk[0].invoice_number}-{run}"))
                in_flight += 1
            if in_flight == 0:
                return
            future = next(pending)
            made_by, pdfs = future.result()
            future.release()
            in_flight -= 1
            if made_by != expected:
                raise ClusterMismatchError(
                    f"cluster {address}: {pdfs[0][0]} was rendered by a worker with another "
                    "environment (it joined after the check); nothing was published")
            for number, pdf in pdfs:
                yield number, pdf
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
