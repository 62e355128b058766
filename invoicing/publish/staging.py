"""Stage 7, publish: write a month's outputs atomically, with a manifest.

Everything is written into a fresh hidden folder beside the destination
(``<out>/.<YYYY-MM>.tmp-<random>``), flushed to disk, and only then renamed to
``<out>/<YYYY-MM>``. A rename within one file system is atomic, so a crash leaves
either the previous complete month or none, never half of one. Leftover temporary
folders from a killed run are removed by the next run of the same month.

Files are created owner/group-readable only (0640, folders 0750): invoices hold
customers' personal data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Final

import polars as pl

from invoicing.storage import ObjectStaging, is_remote

#: How the Parquet outputs are written (the benchmark's DuckDB baseline uses the same).
PARQUET_COMPRESSION: Final = "zstd"
PARQUET_COMPRESSION_LEVEL: int | None = 1

FILE_MODE = 0o640
DIR_MODE = 0o750
MANIFEST = "manifest.json"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remove_stale_staging(out_dir: Path, name: str) -> None:
    """Remove temporary folders a killed run left behind (the caller holds the lock).

    On object storage there is no lock to make this safe: staged objects are ignored by
    every reader and expire by the bucket's lifecycle rule (README, "Object storage")."""
    if is_remote(out_dir):
        return
    for stale in out_dir.glob(f".{name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def write_parquet(frame: pl.DataFrame, target: Path | IO[bytes]) -> None:
    """Write `frame` as the batch writes every Parquet output (same bytes for the same
    frame: the writer is deterministic)."""
    frame.write_parquet(target, compression=PARQUET_COMPRESSION,
                        compression_level=PARQUET_COMPRESSION_LEVEL, statistics=True)


class Staging:
    """A temporary output folder that becomes `<out>/<name>` on `commit`."""

    def __init__(self, out_dir: Path, name: str):
        self.out_dir = out_dir
        self.name = name
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(out_dir, name)
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
        import io

        buffer = io.BytesIO()
        write_parquet(frame, buffer)
        return self.write_bytes(relative, buffer.getvalue())

    def write_manifest(self, manifest: Mapping[str, Any]) -> str:
        return self.write_bytes(MANIFEST, manifest_bytes(manifest))

    def commit(self) -> Path:
        """Rename into place; the destination must not exist (callers check first)."""
        final = self.out_dir / self.name
        for folder in [self.path, *[p for p in self.path.rglob("*") if p.is_dir()]]:
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.rename(self.path, final)
        fd = os.open(self.out_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return final

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as written, the same bytes on a local disk and in object storage."""
    return (json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
            ).encode("utf-8")


def open_staging(out_dir: Path, name: str, root: Path | None = None) -> Staging | ObjectStaging:
    """Staging for `<out_dir>/<name>`: a temporary folder renamed into place on a local
    disk, objects committed by a conditional manifest on object storage (`root`, the
    output root, is where object storage keeps its staging prefix)."""
    if is_remote(out_dir):
        return ObjectStaging(out_dir, name, root)
    return Staging(out_dir, name)


def read_manifest(month_dir: Path) -> dict[str, Any]:
    with (month_dir / MANIFEST).open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data
