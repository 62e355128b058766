"""Rendering many documents: one long-lived renderer per worker process, bounded memory,
and progress a person or a log file can follow.

Layout with WeasyPrint is CPU-bound Python, so documents are spread over processes
(`--workers`, default: every core). Each worker builds one `InvoiceRenderer` at start
(fonts and stylesheet parsed once, `shared_renderer`) and renders the documents it is
sent; on one worker, the batch process renders with its own. At most
`window` documents are in flight, so memory stays flat however many customers the
month has, and results come back in submission order so the output never depends on
scheduling.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, TextIO

from invoicing.core import scratch
from invoicing.core.documents import InvoiceDocument
from invoicing.render.progress import Progress, RenderFn

if TYPE_CHECKING:
    from invoicing.render.pdf import InvoiceRenderer

_worker_renderer: InvoiceRenderer | None = None
_shared: InvoiceRenderer | None = None
_shared_lock = threading.Lock()


def shared_renderer() -> InvoiceRenderer:
    """This process's renderer, built at its first use and kept.

    Building one parses the stylesheet, copies the fonts into a scratch folder and
    starts WeasyPrint's font caches cold (about a quarter of a second); a process that
    renders more than once (`reissue` renders credit notes, then invoices; a library
    caller runs many months) builds it once. The same documents give the same bytes
    from a fresh or a warm renderer (tests/render/test_render.py). Its scratch folder is
    removed when the process ends (`core/scratch.py`); if something removed it sooner,
    a new renderer is built.
    """
    global _shared
    from invoicing.render.pdf import InvoiceRenderer

    with _shared_lock:
        if _shared is None or not _shared.scratch.is_dir():
            if _shared is None:
                atexit.register(_drop_shared)
            _shared = InvoiceRenderer()
        return _shared


def _drop_shared() -> None:
    """Let the renderer go while the interpreter still works: WeasyPrint's font
    configuration frees its Pango objects in ``__del__``, which fails once module globals
    are being torn down. Its scratch folder is removed next (`core/scratch.py`)."""
    global _shared
    with _shared_lock:
        _shared = None
    gc.collect()


def _init_worker(parent_pid: int) -> None:
    global _worker_renderer

    scratch.on_sigterm()  # its fonts folder goes too; otherwise removed when it exits
    _worker_renderer = shared_renderer()
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker when the batch process is gone.

    A worker blocks on its task queue, and every worker holds both ends of that queue,
    so a SIGKILLed batch would otherwise leave its workers (and the forkserver) asleep
    forever, holding memory and the caller's pipes.
    """
    while True:
        time.sleep(1.0)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            scratch.remove_all()
            os._exit(1)


def _render_one(doc: InvoiceDocument, draft: bool) -> tuple[str, bytes]:
    assert _worker_renderer is not None
    return doc.invoice_number, _worker_renderer.render_pdf(doc, draft=draft)


def make_renderer(workers: int, label: str = "rendering", stream: TextIO | None = None,
                  tty: bool | None = None, draft: bool = False) -> RenderFn:
    """A render function for `pipeline.run_month`: documents in, (number, PDF) out."""

    def render(docs: Iterator[InvoiceDocument], total: int) -> Iterator[tuple[str, bytes]]:
        progress = Progress(label, total, stream, tty)
        # What killed runs left in TMPDIR goes now, also when this process's renderer
        # (whose creation sweeps too) already exists.
        scratch.sweep()
        try:
            if workers <= 1 or total <= 1:
                renderer = shared_renderer()
                for doc in docs:
                    yield doc.invoice_number, renderer.render_pdf(doc, draft=draft)
                    progress.advance()
                return
            # forkserver, not fork: Polars' thread pool must not be forked mid-flight.
            context = multiprocessing.get_context("forkserver")
            window = 8 * workers
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                     initargs=(os.getpid(),)) as pool:
                pending: deque[Future[tuple[str, bytes]]] = deque()
                try:
                    for doc in docs:
                        pending.append(pool.submit(_render_one, doc, draft))
                        if len(pending) >= window:
                            yield pending.popleft().result()
                            progress.advance()
                    while pending:
                        yield pending.popleft().result()
                        progress.advance()
                except BaseException:
                    # Stopped (an error, SIGTERM, the caller closed us): render no more.
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        finally:
            progress.close()

    return render
