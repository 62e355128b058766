"""Where the month's files live: storage backends behind one interface.

Every file the batch reads or publishes goes through a pathlib-style location: a
`pathlib.Path` for a local folder, a `upath.UPath` for an ``s3://bucket/prefix`` URL.
The stages use the one pathlib API (``/``, ``is_file``, ``rglob``, ``open``,
``read_bytes``) whatever the location; what differs between stores — how to read a file
into Polars, how to stage and commit a month, how to lock it — is a `Backend`
(`storage/base.py`), chosen here by the location's URL scheme:

- `storage/local.py`: a folder; publish by atomic rename, lock with flock;
- `storage/s3.py`: S3-compatible object storage; publish by a conditional create of the
  manifest.

Another store (``gs://``, ``az://``) is one new module implementing `Backend` and one
entry in `BACKENDS`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import polars as pl

from invoicing.storage.base import (
    MANIFEST,
    PARQUET_COMPRESSION,
    PARQUET_COMPRESSION_LEVEL,
    Backend,
    Protection,
    PublishRaceError,
    Staging,
    StorageError,
    content_key,
    manifest_bytes,
    sha256_bytes,
    write_parquet,
)
from invoicing.storage.local import LocalBackend
from invoicing.storage.s3 import (
    OBJECTS,
    SCHEME,
    STAGED_LIFETIME_S,
    STAGING,
    ObjectStaging,
    S3Backend,
    is_remote,
)
from invoicing.storage.s3_errors import raised_by_object_storage, storage_error

__all__ = [
    "MANIFEST",
    "OBJECTS",
    "PARQUET_COMPRESSION",
    "PARQUET_COMPRESSION_LEVEL",
    "SCHEME",
    "STAGED_LIFETIME_S",
    "STAGING",
    "Backend",
    "ObjectStaging",
    "Protection",
    "PublishRaceError",
    "Staging",
    "StorageError",
    "backend_for",
    "check",
    "check_retention",
    "content_key",
    "files_of",
    "is_committed",
    "is_remote",
    "list_files",
    "location",
    "lock",
    "manifest_bytes",
    "open_staging",
    "protection",
    "put_record",
    "raised_by_object_storage",
    "read_bytes",
    "readable",
    "relative_name",
    "remote_locations",
    "remove_stale_staging",
    "scan_parquet",
    "seekable",
    "sha256_bytes",
    "storage_error",
    "supported_schemes",
    "write_objects",
    "write_parquet",
]

#: URL scheme → backend. A location without a scheme is a local path.
BACKENDS: dict[str, Backend] = {"s3": S3Backend()}
LOCAL: Backend = LocalBackend()


def supported_schemes() -> list[str]:
    return sorted(f"{scheme}://" for scheme in BACKENDS)


def _scheme(text: str) -> str | None:
    return text.split("://", 1)[0] if "://" in text else None


def backend_for(path: object) -> Backend:
    """The backend of a location (a `Path`/`UPath`) or of a URL or path string."""
    if isinstance(path, str):
        scheme = _scheme(path)
        if scheme is None:
            return LOCAL
        if scheme not in BACKENDS:
            urls = " and ".join(f"{s}bucket/prefix" for s in supported_schemes())
            raise StorageError(f"{path!r}: only local paths and {urls} URLs are supported")
        return BACKENDS[scheme]
    protocol = getattr(path, "protocol", "") if is_remote(path) else ""
    return BACKENDS.get(protocol, LOCAL) if protocol else LOCAL


def location(text: str | os.PathLike[str]) -> Path:
    """A local `Path`, or the backend's location for a ``scheme://`` URL."""
    raw = os.fspath(text)
    return backend_for(raw).location(raw)


def remote_locations(values: Iterable[Any]) -> list[Path]:
    """The object-storage locations among a command's arguments."""
    return [v for v in values if is_remote(v)]


def readable(path: Path) -> Path | IO[bytes]:
    """What to hand to Polars or PyArrow: the local path, or the object's bytes."""
    return backend_for(path).readable(path)


def read_bytes(path: Path) -> bytes:
    """The whole file, through its backend (one request on object storage)."""
    return backend_for(path).read_bytes(path)

def seekable(path: Path) -> AbstractContextManager[Path | IO[bytes]]:
    """`path` opened for random access (a Parquet footer) without reading it whole."""
    return backend_for(path).seekable(path)


def scan_parquet(path: Path) -> pl.LazyFrame:
    """A lazy scan of a Parquet file that reads it row group by row group, wherever it is
    stored (object storage included, through the same client and credentials)."""
    return backend_for(path).scan_parquet(path)


def relative_name(path: Path, root: Path) -> str | None:
    """`path` relative to `root` with ``/`` separators, or None when it is outside."""
    if is_remote(path) != is_remote(root):
        return None
    return backend_for(root).relative_name(path, root)


def is_committed(folder: Path) -> bool:
    """A published month or revision: a local folder exists only once renamed into place;
    on object storage only its manifest, written last, commits it."""
    return backend_for(folder).is_committed(folder)


def files_of(folder: Path, manifest: bytes) -> Path:
    """Where the files a committed manifest lists are: the folder itself on a local disk,
    ``objects/<first 16 hex of the manifest's SHA-256>/`` under it on object storage."""
    return backend_for(folder).files_of(folder, manifest)


def check(path: Path) -> None:
    """Fail early, with one line, when the store of `path` cannot be used."""
    backend_for(path).check(path)


def open_staging(out_dir: Path, name: str, root: Path | None = None,
                 key: str | None = None, retain_until: datetime | None = None) -> Staging:
    """Staging for `<out_dir>/<name>`: a temporary folder renamed into place on a local
    disk, objects committed by a conditional manifest on object storage (`root`, the
    output root, is where object storage keeps its staging prefix; `key`, the manifest's
    `content_key` when known before rendering, lets workers write the objects in place).
    Committed files are read-only on a local disk, and under Object Lock until
    `retain_until` if given."""
    return backend_for(out_dir).staging(out_dir, name, root, key, retain_until)


def check_retention(out_dir: Path) -> None:
    """Refuse, with one line, an output that cannot keep files under retention."""
    backend_for(out_dir).check_retention(out_dir)


def put_record(path: Path, data: bytes, retain_until: datetime | None = None) -> None:
    """Write a small record once, read-only or under Object Lock (`Backend.put_record`)."""
    backend_for(path).put_record(path, data, retain_until)


def list_files(folder: Path) -> list[str]:
    """Every file under `folder`, by name relative to it (one listing on object storage)."""
    return backend_for(folder).list_files(folder)


def protection(path: Path) -> Protection | None:
    """What protects a published file: read-only, Object Lock until a date, or None."""
    return backend_for(path).protection(path)


def write_objects(target: str, files: dict[str, bytes]) -> None:
    """Write `files` (name relative to `target` -> bytes) under the `worker_target` URL of a
    staging area, concurrently; the store is configured by this process's own
    environment (on a render worker: its AWS variables)."""
    where = location(target)
    if is_remote(where):
        where.fs.pipe({(where / name).path: data  # type: ignore[attr-defined]
                       for name, data in files.items()})
        return
    for name, data in files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_bytes(data)


def remove_stale_staging(out_dir: Path, name: str) -> None:
    """Remove what a killed run left staged (the caller holds the lock)."""
    backend_for(out_dir).remove_stale_staging(out_dir, name)


def lock(out_dir: Path, name: str) -> AbstractContextManager[None]:
    """Exclusive access to `<out_dir>/<name>` while a command works on it."""
    return backend_for(out_dir).lock(out_dir, name)
