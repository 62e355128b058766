"""What the usage files' footers say about their values, before any data is read.

Parquet keeps each column's lowest and highest value per row group; from them the
validation knows whether every metric fits a 32-bit integer and reads it so, which
halves the bytes of the largest frames of a run. A footer without them leaves a metric
unknown (read as 64-bit, as declared); a footer that lies makes the narrow read fail,
and the validation reads the data again as declared (`validate/usage.py`).
"""

from __future__ import annotations

import pyarrow.parquet as pq

#: The usage metrics (the integer columns besides the id).
METRICS = ("dau", "group_count", "live_group_count")

#: Per metric, the lowest and highest value a file (or all files) may hold, or None
#: when that is not known without reading the data.
Bounds = dict[str, tuple[int, int] | None]


def parquet_bounds(metadata: pq.FileMetaData, present: list[str]) -> Bounds:
    """Each metric's bounds from the row groups' statistics in the footer: known only
    when every row group of the column has them (a writer may leave them out). A column
    the file lacks is null in every row: no bounds needed."""
    names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
    return {metric: _column_bounds(metadata, names.index(metric)) if metric in present
            else (0, 0) for metric in METRICS}


def _column_bounds(metadata: pq.FileMetaData, column: int) -> tuple[int, int] | None:
    lows: list[int] = []
    highs: list[int] = []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(column).statistics
        if stats is not None and stats.has_min_max:
            lows.append(stats.min)
            highs.append(stats.max)
        elif stats is None or stats.num_values:  # values, but no statistics for them
            return None
        # else: only nulls in this row group
    return min(lows, default=0), max(highs, default=0)


def merge_bounds(parts: list[Bounds]) -> Bounds:
    """The bounds of several files together (unknown when one file's are)."""
    merged: Bounds = {}
    for metric in METRICS:
        known = [p[metric] for p in parts]
        merged[metric] = None if any(b is None for b in known) else (
            min((b[0] for b in known if b), default=0),
            max((b[1] for b in known if b), default=0))
    return merged
