"""S3 Object Lock for published objects (``--retain-days``): write once, enforced by the
store. Published objects get `LOCK_MODE` retention until a date; in compliance mode
nobody, the bucket's owner included, can delete or overwrite those object versions
before it (README, "The head and retention")."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from invoicing.storage.base import Protection

LOCK_MODE: Final = "COMPLIANCE"


def _split(path: Path) -> tuple[str, str]:
    bucket, key = path.path.split("/", 1)  # type: ignore[attr-defined]
    return bucket, key


def lock_headers(until: datetime | None) -> dict[str, Any]:
    """The PutObject arguments that create an object under retention until `until`."""
    return {} if until is None else {"ObjectLockMode": LOCK_MODE,
                                     "ObjectLockRetainUntilDate": until}


def object_lock_enabled(out_dir: Path) -> bool:
    """Whether the bucket of `out_dir` was created with Object Lock enabled."""
    bucket, _ = _split(out_dir / "x")
    try:
        config = out_dir.fs.call_s3(  # type: ignore[attr-defined]
            "get_object_lock_configuration", Bucket=bucket)
    except Exception as exc:
        if "ObjectLockConfigurationNotFound" in str(exc):
            return False
        raise
    return bool(config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled")


def retain(folder: Path, names: list[str], until: datetime) -> None:
    """Put `LOCK_MODE` retention until `until` on the objects `names` under `folder`."""
    fs = folder.fs  # type: ignore[attr-defined]
    for name in names:
        bucket, key = _split(folder / name)
        fs.call_s3("put_object_retention", Bucket=bucket, Key=key,
                   Retention={"Mode": LOCK_MODE, "RetainUntilDate": until})


def put_once(path: Path, data: bytes, until: datetime | None) -> None:
    """Create a small object once (left as it is if it exists), under retention if given."""
    with contextlib.suppress(FileExistsError):
        path.fs.pipe_file(path.path, data, mode="create",  # type: ignore[attr-defined]
                          **lock_headers(until))


def object_protection(path: Path) -> Protection | None:
    """The Object Lock retention of an object, or None."""
    bucket, key = _split(path)
    head = path.fs.call_s3("head_object", Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    mode, until = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
    return Protection(mode, until) if mode and until else None
