"""One process at a time per output month.

`run`, `reissue` and `verify` hold ``<out>/.<YYYY-MM>.lock`` while they work. The lock
is an OS-level advisory lock (flock via the filelock library): the kernel releases it
when the holding process exits, however it dies, so a killed run never blocks the
next one. A second process fails at once with `LockedError` instead of waiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from invoicing.core.errors import LockedError, OutputUnavailableError
from invoicing.core.timeframe import Month
from invoicing.storage import is_remote


def lock_path(out_dir: Path, month: Month) -> Path:
    return out_dir / f".{month.label}.lock"


@contextmanager
def month_lock(out_dir: Path, month: Month) -> Iterator[None]:
    if is_remote(out_dir):
        # Object storage has no flock: the conditional create of the manifest is what
        # makes a second concurrent run lose (invoicing/storage.py).
        yield
        return
    lock = FileLock(str(lock_path(out_dir, month)), mode=0o640)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except Timeout:  # before OSError: filelock's Timeout is a TimeoutError, an OSError
        raise LockedError(
            f"{out_dir / month.label}: another invoicing process is working on this month; "
            "try again when it has finished"
        ) from None
    except OSError as exc:
        # A read-only folder, a path through a file, a full disk: the environment, not a bug.
        raise OutputUnavailableError(
            f"--out {out_dir}: cannot create or write the output folder "
            f"({exc.strerror or type(exc).__name__}); nothing was written") from None
    try:
        yield
    finally:
        lock.release()
