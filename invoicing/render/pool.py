"""Rendering many documents: one long-lived renderer per worker process, bounded memory,
and progress a person or a log file can follow.

Layout with WeasyPrint is CPU-bound Python, so documents are spread over processes
(`--workers`, default: every core). Each worker builds one `InvoiceRenderer` at start
(fonts and stylesheet parsed once) and renders the documents it is sent. At most
`window` documents are in flight, so memory stays flat however many customers the
month has, and results come back in submission order so the output never depends on
scheduling.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TextIO

import click

from invoicing.core.documents import InvoiceDocument

RenderFn = Callable[[Iterator[InvoiceDocument], int], Iterator[tuple[str, bytes]]]

_worker_renderer = None


def _init_worker(parent_pid: int) -> None:
    global _worker_renderer
    from invoicing.render.pdf import InvoiceRenderer

    _worker_renderer = InvoiceRenderer()
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
            os._exit(1)


def _render_one(doc: InvoiceDocument, draft: bool) -> tuple[str, bytes]:
    assert _worker_renderer is not None
    return doc.invoice_number, _worker_renderer.render_pdf(doc, draft=draft)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


class Progress:
    """A bar on a terminal; otherwise one log line per tenth of the work.

    Lines carry counts only (no timings), so logs of identical runs are identical.
    """

    def __init__(self, label: str, total: int, stream: TextIO | None = None,
                 tty: bool | None = None):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.done = 0
        self.tty = self.stream.isatty() if tty is None else tty
        self._bar = None
        self._next_report = 1
        if self.tty and total:
            self._bar = click.progressbar(length=total, label=label, file=self.stream,
                                          show_pos=True, show_eta=True)
            self._bar.__enter__()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        step = max(1, -(-self.total // 10))  # ceil: about ten lines in all
        if self.done >= self._next_report * step or self.done == self.total:
            percent = 100 * self.done // self.total if self.total else 100
            print(f"{self.label}: {self.done}/{self.total} ({percent}%)", file=self.stream,
                  flush=True)
            self._next_report = self.done // step + 1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def make_renderer(workers: int, label: str = "rendering", stream: TextIO | None = None,
                  tty: bool | None = None, draft: bool = False) -> RenderFn:
    """A render function for `pipeline.run_month`: documents in, (number, PDF) out."""

    def render(docs: Iterator[InvoiceDocument], total: int) -> Iterator[tuple[str, bytes]]:
        progress = Progress(label, total, stream, tty)
        try:
            if workers <= 1 or total <= 1:
                from invoicing.render.pdf import InvoiceRenderer

                renderer = InvoiceRenderer()
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
                for doc in docs:
                    pending.append(pool.submit(_render_one, doc, draft))
                    if len(pending) >= window:
                        yield pending.popleft().result()
                        progress.advance()
                while pending:
                    yield pending.popleft().result()
                    progress.advance()
        finally:
            progress.close()

    return render


def choose_renderer(workers: int, cluster: str | None, label: str = "rendering",
                    draft: bool = False) -> RenderFn:
    """The local pool of `workers` processes, or the Dask cluster at `cluster` if given.

    Dask is imported only for a cluster, so the base install never needs it.
    """
    if cluster:
        from invoicing.render.cluster import make_cluster_renderer

        return make_cluster_renderer(cluster, label=label, draft=draft)
    return make_renderer(workers, label=label, draft=draft)
