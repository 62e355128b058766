"""How the cluster renderer waits (`render/cluster.py`): how many tasks to keep in flight,
and how long to wait for a cluster without a worker before giving up.

Imported only with ``--cluster`` (it needs Dask distributed).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from distributed import Client, as_completed

from invoicing.core.errors import ClusterUnavailableError

#: Tasks in flight per worker thread: enough to keep every worker busy while PDFs
#: travel back, few enough that memory stays flat (a document is ~2 KiB, a PDF ~40 KiB).
WINDOW_PER_THREAD = 3
#: Seconds between checks of the deadline while no result is ready.
POLL = 0.1


class Window:
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


class Watch:
    """Ends a run whose cluster has had no worker, or no scheduler answering, for `timeout`
    seconds: Dask itself waits forever for a worker to come back. Asked only while no
    result is ready, and at most once a second; a slow document never trips it."""

    def __init__(self, client: Client, address: str, timeout: float):
        self.client = client
        self.address = address
        self.timeout = timeout
        self.lost_since: float | None = None
        self.checked = float("-inf")

    def check(self) -> None:
        now = time.monotonic()
        if now - self.checked < 1.0:
            return
        self.checked = now
        workers = 0
        with contextlib.suppress(Exception):  # a scheduler gone or hung counts as no worker
            if self.client.status == "running":
                workers = len(self.client.nthreads(callback_timeout=min(5.0, self.timeout)))
        if workers:
            self.lost_since = None
        elif self.lost_since is None:
            self.lost_since = now
        elif now - self.lost_since >= self.timeout:
            raise ClusterUnavailableError(
                f"cluster {self.address}: no worker for {self.timeout:g} s (every worker "
                "lost, or the scheduler not answering); nothing was published, rerun when "
                "the cluster is back")


def next_done(pending: as_completed, watch: Watch) -> Any:
    """The next finished future; `watch` decides how long to wait for one."""
    condition = getattr(pending, "thread_condition", None)
    while not pending.has_ready():
        watch.check()
        if condition is None:
            time.sleep(POLL / 10)
        else:
            with condition:
                condition.wait(timeout=POLL)
    return next(pending)
