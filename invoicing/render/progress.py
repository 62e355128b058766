"""What every renderer is (`RenderFn`) and how it shows its progress.

A renderer takes the month's documents (and their count) and yields ``(number, PDF
bytes)`` in submission order; `render/pool.py` renders on local processes,
`render/cluster.py` on a Dask cluster, and `render/renderers.py` chooses between them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Protocol, TextIO, runtime_checkable

from invoicing.core.documents import InvoiceDocument

RenderFn = Callable[[Iterator[InvoiceDocument], int], Iterator[tuple[str, bytes]]]


@runtime_checkable
class StoringRenderer(Protocol):
    """A renderer whose workers write each PDF to ``<target>/<number>.pdf`` themselves
    (`render/cluster.py`): only ``(number, SHA-256, size)`` comes back."""

    def store(self, docs: Iterator[InvoiceDocument], total: int, target: str
              ) -> Iterator[tuple[str, str, int]]: ...

BAR_WIDTH = 36
#: Seconds a Dask cluster may go without a worker (none joined yet, every worker lost, the
#: scheduler gone or not answering) before a run stops with exit 12
#: (``--cluster-timeout``, ``INVOICING_CLUSTER_TIMEOUT``): long enough for Kubernetes to
#: replace a worker pod, short enough that a lost cluster does not hold the month.
CLUSTER_TIMEOUT = 300.0


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
        self._next_report = 1
        self._bar = bool(self.tty and total)
        if self._bar:
            self._draw()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar:
            self._draw()
            return
        step = max(1, -(-self.total // 10))  # ceil: about ten lines in all
        if self.done >= self._next_report * step or self.done == self.total:
            percent = 100 * self.done // self.total if self.total else 100
            print(f"{self.label}: {self.done}/{self.total} ({percent}%)", file=self.stream,
                  flush=True)
            self._next_report = self.done // step + 1

    def _draw(self) -> None:
        filled = BAR_WIDTH * self.done // self.total
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stream.write(f"\r{self.label}  [{bar}]  {self.done}/{self.total}")
        self.stream.flush()

    def close(self) -> None:
        if self._bar:
            self.stream.write("\n")
            self.stream.flush()
            self._bar = False
