"""Scanning a Parquet object in object storage row group by row group (`storage/s3.py`).

Polars and PyArrow would open an ``s3://`` URL with their own HTTP clients; this reads
through the location's s3fs client instead, so the endpoint, credentials, retries and
errors are those of every other request of the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Final

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from polars.io.plugins import register_io_source

#: Rows per frame handed to Polars while scanning (at most one row group is decoded).
SCAN_BATCH_ROWS: Final = 1 << 20


def scan_parquet_in_row_groups(
        path: Path, opener: Callable[[Path], AbstractContextManager[Path | IO[bytes]]]
) -> pl.LazyFrame:
    """A lazy frame over a Parquet object, decoded one row group at a time when collected.

    Only the footer is read here; the rows are fetched with range requests through the
    location's own s3fs client (PyArrow's dataset reader over fsspec), in file order (row
    numbers count from the top of the file), so memory holds at most a row group's
    compressed and decoded columns on top of the frames built from them. The decoded
    batches use the system allocator: Arrow's default one (mimalloc) keeps freed pages
    cached, which cost about 100 MiB on the medium month (BENCHMARKS.md).
    """
    with opener(path) as source:
        schema = pl.from_arrow(pq.read_schema(source).empty_table()).schema  # type: ignore[union-attr]
    filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(path.fs))  # type: ignore[attr-defined]
    key = path.path  # type: ignore[attr-defined]

    def batches(with_columns: list[str] | None, predicate: pl.Expr | None,
                n_rows: int | None, batch_size: int | None) -> Iterator[pl.DataFrame]:
        left = n_rows
        dataset = pads.dataset(key, filesystem=filesystem, format="parquet")
        for batch in dataset.to_batches(columns=with_columns,
                                        batch_size=batch_size or SCAN_BATCH_ROWS,
                                        use_threads=False, batch_readahead=1,
                                        fragment_scan_options=_NO_PREBUFFER,
                                        memory_pool=_scan_memory_pool()):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            del batch
            if predicate is not None:
                frame = frame.filter(predicate)
            if left is not None:
                frame = frame.head(left)
                left -= frame.height
            yield frame
            if left is not None and left <= 0:
                return

    return register_io_source(batches, schema=schema, explain_name="s3 parquet")


#: PyArrow would otherwise coalesce the reads of many row groups into one request of up
#: to 32 MiB, i.e. fetch a usage file whole.
_NO_PREBUFFER = pads.ParquetFragmentScanOptions(pre_buffer=False)


def _scan_memory_pool() -> pa.MemoryPool:
    """The allocator of the decoded row groups, which the frames of the usage share
    (no copy) until validation drops them: jemalloc with its decay at 0, so the pages go
    back to the system as soon as they are freed. Arrow's default (mimalloc) and the
    C library's allocator both keep them cached, and Polars' own allocator never
    reuses them: ~100 MiB more at the peak on the medium month (BENCHMARKS.md)."""
    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)
    except NotImplementedError:  # pragma: no cover - a PyArrow built without jemalloc
        return pa.system_memory_pool()
    return pool
