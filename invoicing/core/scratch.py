"""Temporary folders that do not outlive their process.

WeasyPrint writes the invoice fonts (~16 MB) into a ``weasyprint-*`` folder under the
temporary directory for every renderer and only removes it when the renderer is
garbage-collected, which a worker process that exits never does. Every temporary folder
of the batch is therefore one of ours, under ``TMPDIR`` (Python's `tempfile.gettempdir`)
and named after its owner, ``invoicing-<pid>-<kind>-<random>``:

* `make_folder` creates one; `remove` removes it when its user is done;
* whatever this process still holds is removed when it exits: normally (``atexit``), as
  a `multiprocessing` child (whose exit skips ``atexit``), or on SIGTERM (`on_sigterm`);
* a folder whose owner is gone (a process killed with SIGKILL, a machine that lost
  power) is removed by the next process of the batch that makes a folder (`sweep`).
  A folder whose PID is alive, or belongs to another user, is never touched.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing.util
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

PREFIX = "invoicing-"
_OWNED = re.compile(rf"{PREFIX}(\d+)-")

_lock = threading.Lock()
#: Folders made by this process (and, after a fork, its parent's: filtered by PID).
_folders: set[Path] = set()
#: The PID that registered the exit hooks (a forked child registers again).
_registered_pid: int | None = None


def make_folder(kind: str) -> Path:
    """A new folder ``$TMPDIR/invoicing-<pid>-<kind>-<random>``, removed at exit."""
    global _registered_pid
    with _lock:
        if _registered_pid != os.getpid():
            _registered_pid = os.getpid()
            atexit.register(remove_all)
            # A multiprocessing child leaves through os._exit after its finalizers.
            multiprocessing.util.Finalize(None, remove_all, exitpriority=100)
        sweep()  # one listing of TMPDIR per renderer
        path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{kind}-"))
        _folders.add(path)
    return path


def remove(path: Path) -> None:
    """Remove a folder made by `make_folder` (nothing if it is already gone)."""
    with _lock:
        _folders.discard(path)
    shutil.rmtree(path, ignore_errors=True)


def remove_all() -> None:
    """Remove every folder this process made and has not removed yet."""
    with _lock:
        mine = [p for p in _folders if _owner(p.name) == os.getpid()]
        _folders.difference_update(mine)
    for path in mine:
        shutil.rmtree(path, ignore_errors=True)


def _owner(name: str) -> int | None:
    match = _OWNED.match(name)
    return int(match.group(1)) if match else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep(root: Path | None = None) -> list[Path]:
    """Remove the folders left by processes of the batch that are gone; return them."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    uid = os.getuid()
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            pid = _owner(entry.name)
            if pid is None or pid == os.getpid() or _alive(pid):
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir() and not entry.is_symlink() and entry.lstat().st_uid == uid:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
    return removed


@contextmanager
def tempdir_inside(folder: Path) -> Iterator[None]:
    """Make `tempfile` create its folders and files inside `folder` for a moment.

    For libraries that call `tempfile.mkdtemp` themselves (WeasyPrint's fonts): what they
    create meanwhile is then removed with `folder`. `tempfile.tempdir` is process-wide,
    so keep the block short.
    """
    previous = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = previous


def on_sigterm(exit_code: int = 128 + signal.SIGTERM) -> None:
    """In a worker process: on SIGTERM, remove this process's folders and exit at once.

    Only from the main thread (Python delivers signals there); elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        remove_all()
        os._exit(exit_code)

    signal.signal(signal.SIGTERM, handler)


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread so that ``finally`` blocks and exit hooks run."""


@contextmanager
def sigterm_exits(exit_code: int = 128 + signal.SIGTERM) -> Iterator[None]:
    """For a command's process: SIGTERM unwinds it like an error instead of killing it.

    The staging folder is discarded, worker pools are shut down and every temporary
    folder is removed; the process then exits with `exit_code` (143). Only installed
    from the main thread over the default disposition; restored afterwards.
    """
    installed = False
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_DFL:
            def handler(signum: int, frame: FrameType | None) -> None:
                raise Terminated(exit_code)

            signal.signal(signal.SIGTERM, handler)
            installed = True
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)
