"""S3-compatible object storage (AWS S3, MinIO, Ceph, R2, a local moto server).

Locations are `upath.UPath` objects (fsspec + s3fs) with the pathlib API the stages use
on local folders (``/``, ``is_file``, ``rglob``, ``open``, ``read_bytes``). Object
storage has no atomic rename and no lock: a conditional create of the manifest is the
commit (`ObjectStaging`), and a second concurrent run loses it.

Configuration is the standard AWS one, read by botocore itself:
``AWS_ENDPOINT_URL`` (MinIO, Ceph, R2, a local moto server), ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` or a profile
(``AWS_PROFILE``). Transient errors (throttling, 5xx, dropped connections) are retried
a bounded number of times (``AWS_MAX_ATTEMPTS``, default 3) before the command fails
with one line (`StorageError`, exit 11).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

import polars as pl
from upath import UPath

from invoicing.storage.base import (
    MANIFEST,
    Protection,
    PublishRaceError,
    StorageError,
    content_key,
    manifest_bytes,
    parquet_bytes,
    sha256_bytes,
)
from invoicing.storage.object_lock import (
    lock_headers,
    object_lock_enabled,
    object_protection,
    put_once,
    retain,
)
from invoicing.storage.s3_errors import (
    SCHEME,
    _bucket,
    storage_error,
)
from invoicing.storage.s3_scan import scan_parquet_in_row_groups

CONNECT_TIMEOUT_S: Final = 5
#: Prefix, under the output root, of objects staged by a run that has not committed.
STAGING: Final = ".staging"
#: Folder, under a committed month or revision, holding the objects its manifest lists.
OBJECTS: Final = "objects"
#: Bytes fetched per range request when a Parquet object is scanned (s3fs reads ahead this
#: much; its default, 50 MiB, would hold a whole usage file of the medium month).
READ_BLOCK: Final = 8 << 20
#: Seconds after which an object an unfinished run wrote is no longer trusted by a rerun
#: (rendered again instead): the two days of the staging lifecycle rule (README).
STAGED_LIFETIME_S: Final = 2 * 24 * 3600


def is_remote(path: object) -> bool:
    """True for an object-storage location (a `UPath` that is not a local `Path`)."""
    return isinstance(path, UPath) and not isinstance(path, Path)


def _storage_options() -> dict[str, Any]:
    """s3fs options. The AWS variables are passed explicitly because s3fs caches one
    client per set of options: a changed environment must give a new client."""
    env = os.environ
    options: dict[str, Any] = {
        "use_listings_cache": False,  # other processes write too: always ask the store
        "default_block_size": READ_BLOCK,
        # botocore's "standard" retry mode: throttling, 5xx and dropped connections are
        # retried with jittered backoff, AWS_MAX_ATTEMPTS attempts in all (default 3).
        "config_kwargs": {
            "retries": {"mode": env.get("AWS_RETRY_MODE", "standard")},
            "connect_timeout": CONNECT_TIMEOUT_S,
        },
    }
    if env.get("AWS_ENDPOINT_URL"):
        options["endpoint_url"] = env["AWS_ENDPOINT_URL"]
    if env.get("AWS_ACCESS_KEY_ID"):
        options["key"] = env["AWS_ACCESS_KEY_ID"]
        options["secret"] = env.get("AWS_SECRET_ACCESS_KEY")
        if env.get("AWS_SESSION_TOKEN"):
            options["token"] = env["AWS_SESSION_TOKEN"]
    elif env.get("AWS_PROFILE"):
        options["profile"] = env["AWS_PROFILE"]
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["client_kwargs"] = {"region_name": region}
    return options


class ObjectStaging:
    """`storage.base.Staging` for object storage, where there is no atomic rename.

    Every object is written under ``<final>/objects/<scope>/`` and
    ``<final>/manifest.json`` is created last with ``If-None-Match: *``: that one request
    is the commit, and a second run gets `PublishRaceError`. The scope is the manifest's
    `content_key`, so a reader finds the objects from the committed manifest alone, and
    two runs with different results never share a key.

    * With `key` (a month run: the key is known before rendering), objects are written
      straight to their scope, by this process or by the render workers
      (`worker_target`), and the commit copies nothing. A run that fails leaves them
      for a rerun with the same key (`reusable`); readers ignore them (no manifest).
    * Without (a revision, whose manifest holds the time of the reissue), objects are
      staged under ``<root>/.staging/<final, relative to root>/<random>/`` and copied
      into the scope at commit, as the manifest is only known then.
    With `retain_until`, the commit creates the manifest under Object Lock and then locks
    each listed object (`storage/object_lock.py`): a losing run can still remove its own.
    """

    def __init__(self, out_dir: Path, name: str, root: Path | None = None,
                 key: str | None = None, retain_until: datetime | None = None):
        self.out_dir = out_dir
        self.retain_until = retain_until
        self.name = name
        self.final = out_dir / name
        self.key = key
        if key is not None:
            self.path = self.final / OBJECTS / key
        else:
            root = root if root is not None else out_dir
            below = S3Backend().relative_name(self.final, root) or name
            self.path = root / STAGING / below / uuid.uuid4().hex
        self.hashes: dict[str, str] = {}
        self._manifest: bytes | None = None
        self._copies: Path | None = None

    def _target(self, relative: str) -> Path:
        parts = relative.split("/")
        if relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"refusing to write outside the output folder: {relative!r}")
        return self.path / relative

    def write_bytes(self, relative: str, data: bytes) -> str:
        target = self._target(relative)
        target.fs.pipe_file(target.path, data)  # type: ignore[attr-defined]
        digest = hashlib.sha256(data).hexdigest()
        self.hashes[relative] = digest
        return digest

    def write_parquet(self, relative: str, frame: pl.DataFrame) -> str:
        return self.write_bytes(relative, parquet_bytes(frame))

    def write_manifest(self, manifest: Mapping[str, Any]) -> str:
        self._manifest = manifest_bytes(manifest)
        digest = hashlib.sha256(self._manifest).hexdigest()
        self.hashes[MANIFEST] = digest
        return digest

    def worker_target(self) -> str | None:
        return str(self.path) if self.key is not None else None

    def record(self, relative: str, sha256: str) -> str:
        self._target(relative)
        self.hashes[relative] = sha256
        return sha256

    def reusable(self, prefix: str) -> dict[str, str]:
        """Objects under `prefix` of this scope written less than `STAGED_LIFETIME_S` ago,
        read back and hashed (a PUT is all or nothing, and the same key gives the same
        bytes, so each is the file this run would write)."""
        if self.key is None:
            return {}
        fs = self.path.fs  # type: ignore[attr-defined]
        base = self.path.path  # type: ignore[attr-defined]
        try:
            found = fs.find(f"{base}/{prefix}", detail=True)
        except FileNotFoundError:
            return {}
        oldest = time.time() - STAGED_LIFETIME_S
        fresh = sorted(key for key, info in found.items() if _modified(info) >= oldest)
        if not fresh:
            return {}
        contents = fs.cat(fresh)  # one call: s3fs fetches them concurrently
        reused = {}
        for key in fresh:
            relative = key[len(base) + 1:]
            reused[relative] = self.record(relative, sha256_bytes(contents[key]))
        return reused

    def commit(self) -> Path:
        if self._manifest is None:
            raise RuntimeError("commit before write_manifest")
        fs = self.final.fs  # type: ignore[attr-defined]
        scope = content_key(json.loads(self._manifest))
        if self.key is not None and scope != self.key:
            raise RuntimeError(f"manifest content key {scope} is not the staged {self.key}")
        names = sorted(n for n in self.hashes if n != MANIFEST)
        if self.key is None:
            self._copies = self.final / OBJECTS / scope
            # One call: s3fs runs the server-side copies concurrently, in batches.
            fs.copy([(self.path / n).path for n in names],  # type: ignore[attr-defined]
                    [(self._copies / n).path for n in names])  # type: ignore[attr-defined]
        lock = lock_headers(self.retain_until)
        try:
            fs.pipe_file((self.final / MANIFEST).path,  # type: ignore[attr-defined]
                         self._manifest, mode="create", **lock)
        except FileExistsError:
            self.discard()
            raise PublishRaceError(
                f"{self.final}: another invoicing run committed this first; nothing of "
                "this run is visible. Run again to see whether it matches") from None
        self._copies = None  # committed: the copies are the published files
        if self.retain_until is not None:
            retain(self.final / OBJECTS / scope, names, self.retain_until)
        if self.key is None:
            _remove(self.path)
        else:
            self._remove_other_scopes()
        return self.final

    def _remove_other_scopes(self) -> None:
        """After a run's commit, what unfinished runs of the month with other keys left
        (no revision exists yet, so no other scope is referenced). Best effort."""
        with contextlib.suppress(Exception):
            fs = self.final.fs  # type: ignore[attr-defined]
            objects = (self.final / OBJECTS).path  # type: ignore[attr-defined]
            for folder in fs.ls(objects, detail=False):
                if folder.rstrip("/").rsplit("/", 1)[-1] != self.key:
                    fs.rm(folder, recursive=True)

    def discard(self) -> None:
        """Remove what this run staged, and its copies unless a committed manifest with the
        same scope (an identical run) lists them. With a key, the objects stay for a
        rerun unless another run committed the month with another key. Best effort: a
        failing store must not hide the error that brought us here."""
        try:
            committed: bytes | None = (self.final / MANIFEST).read_bytes()
        except Exception:
            committed = None
        same = committed is not None and self._manifest is not None and (
            content_key(json.loads(committed)) == content_key(json.loads(self._manifest)))
        if self.key is not None:
            if committed is not None and content_key(json.loads(committed)) != self.key:
                _remove(self.path)
            return
        _remove(self.path)
        if self._copies is not None and not same:
            _remove(self._copies)


def _modified(info: Mapping[str, Any]) -> float:
    """The time an object was written, from a listing entry (0: unknown, never trusted)."""
    value = info.get("LastModified") or info.get("mtime")
    return float(value.timestamp()) if value is not None and hasattr(value, "timestamp") else 0.0


def _remove(prefix: Path) -> None:
    with contextlib.suppress(Exception):  # best effort, see ObjectStaging.discard
        prefix.fs.rm(prefix.path, recursive=True)  # type: ignore[attr-defined]


class S3Backend:
    """`storage.base.Backend` for ``s3://bucket/prefix`` locations."""

    def location(self, text: str) -> Path:
        bucket = text[len(SCHEME):].split("/", 1)[0]
        if not bucket:
            raise StorageError(f"{text}: no bucket in the URL (expected s3://bucket/prefix)")
        return UPath(text.rstrip("/"), **_storage_options())

    def readable(self, path: Path) -> Path | IO[bytes]:
        # Polars and PyArrow would open an s3:// string with their own HTTP clients.
        return io.BytesIO(self.read_bytes(path))

    def read_bytes(self, path: Path) -> bytes:
        # One GET (the pathlib API would ask for the object's size first).
        return path.fs.cat_file(path.path)  # type: ignore[attr-defined]

    @contextmanager
    def seekable(self, path: Path) -> Iterator[Path | IO[bytes]]:
        # Range requests through the same s3fs client (and credentials) as everything else.
        with path.fs.open(path.path, "rb", block_size=READ_BLOCK) as fh:  # type: ignore[attr-defined]
            yield fh

    def scan_parquet(self, path: Path) -> pl.LazyFrame:
        return scan_parquet_in_row_groups(path, self.seekable)

    def relative_name(self, path: Path, root: Path) -> str | None:
        prefix = str(root).rstrip("/") + "/"
        text = str(path)
        return text[len(prefix):] if is_remote(path) and text.startswith(prefix) else None

    def is_committed(self, folder: Path) -> bool:
        # Only the manifest, written last by a conditional create, commits a month.
        return (folder / MANIFEST).is_file()

    def files_of(self, folder: Path, manifest: bytes) -> Path:
        parsed = json.loads(manifest)
        scope = folder / OBJECTS / content_key(parsed)
        # Months published before workers wrote their own objects (up to d4aedae) keep
        # them under the first 16 hex digits of the whole manifest's SHA-256. A committed
        # manifest whose first output is not in today's scope but is in that one is such a
        # month: one HEAD request per revision read keeps it readable, verifiable and
        # reissuable.
        first = next(iter(sorted(parsed.get("outputs", {}))), None)
        if first is not None and not (scope / first).exists():
            legacy = folder / OBJECTS / sha256_bytes(manifest)[:16]
            if (legacy / first).exists():
                return legacy
        return scope

    def check(self, path: Path) -> None:
        try:
            path.fs.call_s3("head_bucket", Bucket=_bucket(path))  # type: ignore[attr-defined]
        except Exception as exc:
            error = storage_error(exc, path)
            if error is None:
                raise
            raise error from None

    def staging(self, out_dir: Path, name: str, root: Path | None,
                key: str | None = None, retain_until: datetime | None = None) -> ObjectStaging:
        return ObjectStaging(out_dir, name, root, key, retain_until)

    def check_retention(self, out_dir: Path) -> None:
        self.check(out_dir)  # a missing bucket or refused credentials: their own line
        if not object_lock_enabled(out_dir):
            raise StorageError(
                f"{out_dir}: --retain-days needs Object Lock, and bucket {_bucket(out_dir)} "
                "was not created with it (create the bucket with Object Lock enabled); "
                "nothing was written")

    def put_record(self, path: Path, data: bytes, retain_until: datetime | None) -> None:
        put_once(path, data, retain_until)

    def list_files(self, folder: Path) -> list[str]:
        fs = folder.fs  # type: ignore[attr-defined]
        base = folder.path.rstrip("/") + "/"  # type: ignore[attr-defined]
        return sorted((key[len(base):] for key in fs.find(base) if key.startswith(base)),
                      key=lambda n: n.split("/"))

    def protection(self, path: Path) -> Protection | None:
        return object_protection(path)

    def remove_stale_staging(self, out_dir: Path, name: str) -> None:
        # There is no lock to make this safe: staged objects are ignored by every reader
        # and expire by the bucket's lifecycle rule (README, "Object storage").
        return None

    @contextmanager
    def lock(self, out_dir: Path, name: str) -> Iterator[None]:
        # No flock on object storage: the conditional create of the manifest is what
        # makes a second concurrent run lose (`ObjectStaging.commit`).
        yield
