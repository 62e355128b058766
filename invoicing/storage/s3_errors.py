"""Object-storage failures as one line each (`StorageError`, exit 11)."""

from __future__ import annotations

import os
from pathlib import Path

from upath import UPath

from invoicing.storage.base import StorageError

#: The URL scheme of S3-compatible object storage.
SCHEME = "s3://"


def _bucket(path: Path) -> str:
    return str(path)[len(SCHEME):].split("/", 1)[0]


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "the default AWS endpoint"


def raised_by_object_storage(exc: BaseException) -> bool:
    """True when `exc` came out of the S3 client (s3fs, aiobotocore, botocore), so that a
    local file error in the same command is not mistaken for a storage failure."""
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.split(".")[0] in ("s3fs", "aiobotocore", "botocore"):
            return True
        tb = tb.tb_next
    cause = exc.__cause__ or exc.__context__
    return cause is not None and raised_by_object_storage(cause)


def storage_error(exc: BaseException, where: Path | str | None = None) -> StorageError | None:
    """The one-line `StorageError` for an object-storage failure, or None if `exc` is not one."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    place = f"{where}: " if where is not None else ""
    bucket = _bucket(where) if isinstance(where, UPath) else "the bucket"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, EndpointConnectionError) or "connect" in type(exc).__name__.lower():
        return StorageError(f"{place}cannot reach the object storage endpoint {_endpoint()} "
                            f"({text}); check AWS_ENDPOINT_URL and the network")
    if isinstance(exc, NoCredentialsError):
        return StorageError(f"{place}no credentials for object storage; set "
                            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE")
    if isinstance(exc, PermissionError):
        return StorageError(f"{place}access refused by object storage ({text}); check the "
                            f"credentials and their rights on {bucket}")
    if isinstance(exc, FileNotFoundError) and isinstance(where, UPath):
        return StorageError(f"{place}not found in object storage: bucket {bucket} does not "
                            f"exist at {_endpoint()}, or the object is missing ({text})")
    if isinstance(exc, FileNotFoundError):
        return StorageError(f"{place}an object vanished from object storage while in use "
                            f"({text})")
    if isinstance(exc, BotoCoreError | ClientError | OSError):
        return StorageError(f"{place}object storage failed, retries included "
                            f"({type(exc).__name__}: {text})")
    return None
