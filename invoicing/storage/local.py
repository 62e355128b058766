"""Local folders: an atomic rename publishes, an OS lock serialises.

Everything is written into a fresh hidden folder beside the destination
(``<out>/.<YYYY-MM>.tmp-<random>``), flushed to disk, and only then renamed to
``<out>/<YYYY-MM>``. A rename within one file system is atomic, so a crash leaves
either the previous complete month or none, never half of one. Leftover temporary
folders from a killed run are removed by the next run of the same month.

Files are created owner/group-readable only (0640, folders 0750): invoices hold
customers' personal data. Just before the rename every file is made read-only (0440):
nothing issued is rewritten, and `verify` reports a published file that is writable
again. (Folders stay 0750: a reissue adds ``revisions/NNN/`` inside the month.)

`run`, `reissue` and `verify` hold ``<out>/.<YYYY-MM>.lock`` while they work. The lock
is an OS-level advisory lock (flock via the filelock library): the kernel releases it
when the holding process exits, however it dies, so a killed run never blocks the
next one. A second process fails at once with `LockedError` instead of waiting.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import polars as pl
from filelock import FileLock, Timeout

from invoicing.core.errors import LockedError, OutputUnavailableError, UsageError
from invoicing.storage.base import (
    MANIFEST,
    Protection,
    manifest_bytes,
    parquet_bytes,
    sha256_bytes,
)

FILE_MODE = 0o640
#: Published files, from the commit on.
PUBLISHED_MODE = 0o440
DIR_MODE = 0o750


class LocalStaging:
    """A temporary output folder that becomes `<out>/<name>` on `commit`."""

    def __init__(self, out_dir: Path, name: str):
        self.out_dir = out_dir
        self.name = name
        out_dir.mkdir(parents=True, exist_ok=True)
        LocalBackend().remove_stale_staging(out_dir, name)
        self.path = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=out_dir))
        os.chmod(self.path, DIR_MODE)
        self.hashes: dict[str, str] = {}

    def _target(self, relative: str) -> Path:
        target = (self.path / relative).resolve()
        # Names come from our own invoice numbers, but never trust a path to stay inside.
        if self.path.resolve() not in target.parents:
            raise ValueError(f"refusing to write outside the output folder: {relative!r}")
        target.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        return target

    def write_bytes(self, relative: str, data: bytes) -> str:
        target = self._target(relative)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        digest = sha256_bytes(data)
        self.hashes[relative] = digest
        return digest

    def write_parquet(self, relative: str, frame: pl.DataFrame) -> str:
        return self.write_bytes(relative, parquet_bytes(frame))

    def write_manifest(self, manifest: Mapping[str, Any]) -> str:
        return self.write_bytes(MANIFEST, manifest_bytes(manifest))

    def commit(self) -> Path:
        """Rename into place; the destination must not exist (callers check first)."""
        final = self.out_dir / self.name
        for file in (p for p in self.path.rglob("*") if p.is_file()):
            os.chmod(file, PUBLISHED_MODE)
        for folder in [self.path, *[p for p in self.path.rglob("*") if p.is_dir()]]:
            fsync_dir(folder)
        os.rename(self.path, final)
        fsync_dir(self.out_dir)
        return final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def worker_target(self) -> str | None:
        # The folder is private to this process: rendered PDFs come back to be written.
        return None

    def record(self, relative: str, sha256: str) -> str:
        self.hashes[relative] = sha256
        return sha256

    def reusable(self, prefix: str) -> dict[str, str]:
        # A fresh temporary folder: a local run starts again (the next run removes a
        # killed run's folder, and the atomic rename stays the commit).
        return {}


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a created or renamed file) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBackend:
    """`storage.base.Backend` for a folder on a local (or mounted) file system."""

    def location(self, text: str) -> Path:
        return Path(text)

    def readable(self, path: Path) -> Path | IO[bytes]:
        return path

    def read_bytes(self, path: Path) -> bytes:
        return path.read_bytes()

    @contextmanager
    def seekable(self, path: Path) -> Iterator[Path | IO[bytes]]:
        yield path

    def scan_parquet(self, path: Path) -> pl.LazyFrame:
        return pl.scan_parquet(path)

    def relative_name(self, path: Path, root: Path) -> str | None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return None

    def is_committed(self, folder: Path) -> bool:
        # A local month folder exists only once renamed into place. A dangling link in
        # its place counts too: reading it then fails with one line (exit 7).
        return folder.exists() or folder.is_symlink()

    def files_of(self, folder: Path, manifest: bytes) -> Path:
        return folder

    def check(self, path: Path) -> None:
        return None

    def staging(self, out_dir: Path, name: str, root: Path | None,
                key: str | None = None, retain_until: datetime | None = None) -> LocalStaging:
        return LocalStaging(out_dir, name)

    def check_retention(self, out_dir: Path) -> None:
        raise UsageError(f"--retain-days: {out_dir} is a local folder; retention needs an "
                         "s3:// output on a bucket with Object Lock (published local files "
                         "are made read-only instead)")

    def put_record(self, path: Path, data: bytes, retain_until: datetime | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        if path.exists():
            return
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PUBLISHED_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(temporary, path)
        fsync_dir(path.parent)

    def list_files(self, folder: Path) -> list[str]:
        return sorted((p.relative_to(folder).as_posix() for p in folder.rglob("*")
                       if p.is_file()), key=lambda n: n.split("/"))

    def protection(self, path: Path) -> Protection | None:
        mode = path.stat().st_mode
        return None if mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) else \
            Protection("read-only")

    def remove_stale_staging(self, out_dir: Path, name: str) -> None:
        for stale in out_dir.glob(f".{name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)

    @contextmanager
    def lock(self, out_dir: Path, name: str) -> Iterator[None]:
        lock = FileLock(str(out_dir / f".{name}.lock"), mode=0o640)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=0)
        except Timeout:  # before OSError: filelock's Timeout is a TimeoutError, an OSError
            raise LockedError(
                f"{out_dir / name}: another invoicing process is working on this month; "
                "try again when it has finished"
            ) from None
        except OSError as exc:
            # A read-only folder, a path through a file, a full disk: the environment.
            raise OutputUnavailableError(
                f"--out {out_dir}: cannot create or write the output folder "
                f"({exc.strerror or type(exc).__name__}); nothing was written") from None
        try:
            yield
        finally:
            lock.release()
