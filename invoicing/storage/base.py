"""What every storage backend offers, and the bytes every backend writes the same way.

A backend is chosen by the location's URL scheme (`invoicing.storage.backend_for`): a
plain path is a local folder, ``s3://`` is S3-compatible object storage. Adding a store
(GCS, Azure) is one new module implementing `Backend` and one line in the registry of
`invoicing/storage/__init__.py`.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, Protocol

import polars as pl

from invoicing.core.errors import ExitCode, InvoicingError, LockedError

MANIFEST: Final = "manifest.json"
#: How the Parquet outputs are written (the benchmark's DuckDB baseline uses the same).
PARQUET_COMPRESSION: Final = "zstd"
PARQUET_COMPRESSION_LEVEL: int | None = 1


class StorageError(InvoicingError):
    """Object storage unreachable, refused, missing a bucket or failing: nothing committed."""

    exit_code = ExitCode.STORAGE


class PublishRaceError(LockedError):
    """Another run committed the same month (or revision) first."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_parquet(frame: pl.DataFrame, target: Path | IO[bytes]) -> None:
    """Write `frame` as the batch writes every Parquet output (same bytes for the same
    frame: the writer is deterministic)."""
    frame.write_parquet(target, compression=PARQUET_COMPRESSION,
                        compression_level=PARQUET_COMPRESSION_LEVEL, statistics=True)


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    """`frame` as the bytes of a Parquet output (what every staging writes)."""
    buffer = io.BytesIO()
    write_parquet(frame, buffer)
    return buffer.getvalue()


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as written, the same bytes on a local disk and in object storage."""
    return (json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
            ).encode("utf-8")


@dataclass(frozen=True)
class Protection:
    """What keeps a published file from being altered or deleted.

    Attributes:
      kind: ``read-only`` (a local file without write permission) or the S3 Object Lock
        mode (``COMPLIANCE``, ``GOVERNANCE``).
      until: the end of the Object Lock retention (None for a read-only file).
    """

    kind: str
    until: datetime | None = None

    def __str__(self) -> str:
        return self.kind if self.until is None else \
            f"{self.kind} until {self.until.isoformat(timespec='seconds')}"


def content_key(manifest: Mapping[str, Any]) -> str:
    """The scope a month's (or revision's) objects are stored under on object storage: the
    first 16 hex digits of the SHA-256 of its manifest without ``outputs``.

    Everything else in a manifest (inputs and their digest, options, software and renderer
    environment, counts, totals) is known before the first document is rendered, and the
    same values give the same bytes, so workers can write straight to the scope, a
    rerun can reuse what an unfinished run with the same key wrote, and a reader finds the
    objects from the committed manifest alone.
    """
    rest = {k: v for k, v in manifest.items() if k != "outputs"}
    return sha256_bytes(manifest_bytes(rest))[:16]


class Staging(Protocol):
    """Files of one month (or revision) being written, invisible until `commit`."""

    #: Where the staged files are (a temporary folder or an object prefix).
    path: Path
    #: SHA-256 of every file written so far, by name relative to the month.
    hashes: dict[str, str]

    def write_bytes(self, relative: str, data: bytes) -> str: ...
    def write_parquet(self, relative: str, frame: pl.DataFrame) -> str: ...
    def write_manifest(self, manifest: Mapping[str, Any]) -> str: ...
    def commit(self) -> Path:
        """Publish what was written: afterwards every file is protected (read-only on a
        local disk; on object storage under Object Lock when staged with `retain_until`)."""
        ...

    def discard(self) -> None: ...

    def worker_target(self) -> str | None:
        """The URL render workers may write files to themselves (then `record` them), or
        None when only this process writes (a local temporary folder)."""
        ...

    def record(self, relative: str, sha256: str) -> str:
        """Count a file a worker wrote to `worker_target`; returns its SHA-256."""
        ...

    def reusable(self, prefix: str) -> dict[str, str]:
        """Files under `prefix` an earlier unfinished run with the same content key left,
        recent enough to trust, by name with their SHA-256 (recorded as written)."""
        ...


class Backend(Protocol):
    """One kind of store: how to open a location, read it, stage, commit and lock."""

    def location(self, text: str) -> Path:
        """The pathlib-style location for a URL or path of this backend."""
        ...

    def readable(self, path: Path) -> Path | IO[bytes]:
        """What to hand to Polars or PyArrow to read `path`."""
        ...

    def read_bytes(self, path: Path) -> bytes:
        """The whole file (one request on object storage); FileNotFoundError if missing."""

    def seekable(self, path: Path) -> AbstractContextManager[Path | IO[bytes]]:
        """`path` opened for random access (a Parquet footer), not read whole."""
        ...

    def scan_parquet(self, path: Path) -> pl.LazyFrame:
        """A lazy scan of the Parquet file `path`, read row group by row group."""
        ...

    def relative_name(self, path: Path, root: Path) -> str | None:
        """`path` relative to `root` with ``/`` separators, or None when outside."""
        ...

    def is_committed(self, folder: Path) -> bool:
        """True once a month or revision folder has been committed."""
        ...

    def files_of(self, folder: Path, manifest: bytes) -> Path:
        """Where the files listed by the committed `manifest` of `folder` are."""
        ...

    def check(self, path: Path) -> None:
        """Fail early, with one line, when `path` cannot be used."""
        ...

    def staging(self, out_dir: Path, name: str, root: Path | None,
                key: str | None = None, retain_until: datetime | None = None) -> Staging:
        """A staging area for `<out_dir>/<name>` (`root`: the output root; `key`: the
        `content_key` of its manifest, when known before rendering); with `retain_until`,
        every committed file is under Object Lock until then."""
        ...

    def check_retention(self, out_dir: Path) -> None:
        """Fail with one line, before anything is written, when `out_dir` cannot keep
        published files under retention."""
        ...

    def put_record(self, path: Path, data: bytes, retain_until: datetime | None) -> None:
        """Write a small record once (left as it is if it exists), protected like a
        published file: read-only, or under Object Lock until `retain_until`."""
        ...

    def list_files(self, folder: Path) -> list[str]:
        """Every file under `folder` (recursively), by name relative to it, sorted."""
        ...

    def protection(self, path: Path) -> Protection | None:
        """What protects the published file `path`, or None when nothing does."""
        ...

    def remove_stale_staging(self, out_dir: Path, name: str) -> None:
        """Remove what a killed run left staged for `<out_dir>/<name>` (lock held)."""
        ...

    def lock(self, out_dir: Path, name: str) -> AbstractContextManager[None]:
        """Exclusive access to `<out_dir>/<name>` while a command works on it."""
        ...

