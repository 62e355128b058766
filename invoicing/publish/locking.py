"""One process at a time per output month.

`run`, `reissue` and `verify` hold the month's lock while they work: on a local disk an
OS-level advisory lock on ``<out>/.<YYYY-MM>.lock`` that the kernel releases however the
holder dies (`storage/local.py`); on object storage none, because the conditional create
of the manifest makes a second concurrent run lose (`storage/s3.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from invoicing import storage
from invoicing.core.timeframe import Month


@contextmanager
def month_lock(out_dir: Path, month: Month) -> Iterator[None]:
    with storage.lock(out_dir, month.label):
        yield
