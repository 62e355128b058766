"""Stage 2, validate: sort usage rows into billable, duplicate or rejected (the small
tables' references are checked in `validate/tables.py`).

As SPEC §2 asks:

* a usage row that cannot be billed becomes a row of ``rejected_rows.parquet`` with its
  source file, row number and reason; exact duplicates are collapsed and counted;
  two different rows for one app and day stop the run (`ConflictError`) unless the
  caller asked for ``on_conflict="max"``.

Every usage row read ends in exactly one of: billed, duplicate, merged conflict, rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

import polars as pl

from invoicing.core.errors import MAX_REPORTED_ERRORS, ConflictError, ErrorLog, Source
from invoicing.core.timeframe import Month
from invoicing.load.inputs import Inputs, find_unreadable_usage
from invoicing.load.pricebook import MAX_QUANTITY

OnConflict = Literal["error", "max"]

REJECTED_SCHEMA: dict[str, pl.DataType] = {
    "source_file": pl.String(),
    "source_row": pl.Int64(),
    "sdk_app_id": pl.Int64(),
    "date": pl.Date(),
    "dau": pl.Int64(),
    "group_count": pl.Int64(),
    "live_group_count": pl.Int64(),
    "reason": pl.String(),
}
USAGE_KEY = ["sdk_app_id", "date"]
USAGE_VALUES = ["dau", "group_count", "live_group_count"]


@dataclass(frozen=True)
class UsageCounts:
    """How every usage row read was accounted for (recorded in the manifest).

    Attributes:
      rows_in: rows read over all usage files.
      billed: rows kept, one per app and day.
      duplicates: exact copies of a kept row, collapsed.
      conflicts_merged: rows folded into another row of the same app and day by
        ``--on-conflict max`` (0 otherwise).
      rejected: rows written to ``rejected_rows.parquet``.
    """

    rows_in: int
    billed: int
    duplicates: int
    conflicts_merged: int
    rejected: int

    def balanced(self) -> bool:
        return self.rows_in == self.billed + self.duplicates + self.conflicts_merged + self.rejected


@dataclass(frozen=True)
class ValidUsage:
    """Usage ready for pricing.

    Attributes:
      usage: one row per (sdk_app_id, date) with dau, group_count, live_group_count
        (the last may be null when the export has no live-group figure), sorted by
        sdk_app_id and date (`plan_days` relies on it).
      rejected: rows that cannot be billed, in `REJECTED_SCHEMA`, sorted by source.
      counts: the accounting of every row read.
    """

    usage: pl.DataFrame
    rejected: pl.DataFrame
    counts: UsageCounts


# --- usage rows ------------------------------------------------------------------------------


def _reject_reason(month: Month) -> pl.Expr:
    outside = f"date outside {month.label}"
    return (
        pl.when(pl.col("sdk_app_id").is_null()).then(pl.lit("null sdk_app_id"))
        .when(pl.col("_known").is_null()).then(pl.lit("unknown sdk_app_id"))
        .when(pl.col("date").is_null()).then(pl.lit("null date"))
        .when((pl.col("date") < month.start) | (pl.col("date") > month.end)).then(pl.lit(outside))
        .when(pl.col("dau").is_null()).then(pl.lit("null dau"))
        .when(pl.col("dau") < 0).then(pl.lit("negative dau"))
        .when(pl.col("group_count").is_null()).then(pl.lit("null group_count"))
        .when(pl.col("group_count") < 0).then(pl.lit("negative group_count"))
        .when(pl.col("live_group_count") < 0).then(pl.lit("negative live_group_count"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def _billable(known: pl.Expr, month: Month) -> pl.Expr:
    """True for a row `_reject_reason` gives no reason for (a null anywhere but in
    ``live_group_count`` makes it False). Cheaper than the reason: no strings."""
    live = pl.col("live_group_count")
    return (
        known
        & pl.col("date").is_between(month.start, month.end)
        & (pl.col("dau") >= 0)
        & (pl.col("group_count") >= 0)
        & (live.is_null() | (live >= 0))
    ).fill_null(False)


def _source_of(positions: pl.Series, inputs: Inputs) -> pl.DataFrame:
    """``source_file_id`` and 1-based ``source_row`` of rows given by their position in
    the usage scan (the files one after another, in `Inputs.usage_files` order)."""
    rows = {f.path: f.rows or 0 for f in inputs.files}
    sizes = [rows[label] for label in inputs.usage_files]
    starts = pl.Series("start", [0, *accumulate(sizes)][:-1], dtype=pl.Int64)
    pos = positions.cast(pl.Int64)
    file_id = (starts.search_sorted(pos, side="right") - 1).cast(pl.Int32)
    return pl.DataFrame({
        "source_file_id": file_id,
        "source_row": pos - starts.gather(file_id) + 1,
    })


def _check_ranges(frame: pl.DataFrame, inputs: Inputs, errors: ErrorLog) -> None:
    """Refuse metrics above `MAX_QUANTITY` (exit 3, naming file, column and row): beyond
    it a block count times a price would no longer be exact in the pricing scale."""
    for name in USAGE_VALUES:
        positions = frame.select(
            (pl.col(name) > MAX_QUANTITY).fill_null(False).arg_true())[:, 0]
        if not positions.len():
            continue
        # Only the rows that can be printed get a source; the rest are counted.
        errors.count_more(positions.len() - MAX_REPORTED_ERRORS)
        positions = positions.head(MAX_REPORTED_ERRORS)
        sources = _source_of(positions, inputs).with_columns(
            value=frame[name].gather(positions))
        for file_id, row, value in sources.rows():
            errors.add(Source(inputs.usage_files[file_id], name, row),
                       f"{value:,} is above the largest value the batch bills exactly "
                       f"({MAX_QUANTITY:,})")


def _day_key(apps: pl.DataFrame, month: Month) -> tuple[pl.Expr, list[pl.Expr]]:
    """One integer per (app, day) that sorts like (sdk_app_id, date), and the expressions
    that decode ``sdk_app_id`` and ``date`` from it (as column ``_key``).

    ``(sdk_app_id − lowest id) × 64 + day``, in the smallest type that holds it: Int32
    when the apps' ids span less than 2^25 (33 million apps: sorting half the bytes
    costs about a third less), Int64 below 2^57, else Int128, so that no id of the
    int64 range can overflow the key and move usage to another app. Only the apps of
    `apps` get a key (the offset is taken in the wide type, then narrowed).
    """
    ids = apps["sdk_app_id"].drop_nulls()
    low = int(ids.min()) if ids.len() else 0  # type: ignore[arg-type]
    high = int(ids.max()) if ids.len() else 0  # type: ignore[arg-type]
    wide = pl.Int64 if high - low < 2**57 else pl.Int128
    dtype = pl.Int32 if high - low < 2**25 else wide
    # Not strict: a row of an unknown app may not fit the narrow type; the scan gives
    # such rows no key (`_scan`), and every known app fits.
    key = ((pl.col("sdk_app_id").cast(wide) - pl.lit(low, dtype=wide))
           .cast(dtype, strict=False) * 64 + pl.col("date").dt.day().cast(dtype))
    app = (pl.col("_key").cast(wide) // 64 + pl.lit(low, dtype=wide)).cast(pl.Int64)
    day = (pl.col("_key") % 64).cast(pl.Int32)
    date = (pl.lit(month.start).cast(pl.Int32) + (day - 1)).cast(pl.Date)
    return key, [app.alias("sdk_app_id"), date.alias("date")]


def _narrowed(frame: pl.DataFrame) -> list[pl.Expr]:
    """The metrics in the smallest integer type that holds every billable value: Int32
    when they are below 2^31 (any real month), else Int64 as read. Halves the bytes the
    sort moves and every later stage holds; arithmetic with the Int64 quotas and blocks
    widens again, and the published columns are cast to their schema."""
    # Metrics the scan already read as Int32 (`load/bounds.py`) need no pass for their
    # maximum: only those read as declared, when the footers could not tell.
    wide = [name for name in USAGE_VALUES if frame.schema[name] != pl.Int32]
    billable = pl.col("_key").is_not_null()
    highest = dict(zip(wide, frame.select(pl.col(wide).filter(billable).max()).row(0),
                       strict=True)) if wide else {}
    # Not strict: an unbillable row's value may not fit, and those rows are cut off
    # after the sort; every billable value is between 0 and its highest.
    return [pl.col(name).cast(pl.Int32, strict=False) if (highest.get(name) or 0) < 2**31
            else pl.col(name) for name in USAGE_VALUES]


def _scan(inputs: Inputs, month: Month, known: pl.Expr, key: pl.Expr) -> pl.DataFrame:
    """One pass over the files: each row's (app, day) key ``_key`` and its metrics.

    Only a billable row gets a key (null otherwise): app and date, 12 of the 24 bytes a
    row is read in, are not kept (the key holds them in 4), and the rows that cannot be
    billed are read again, with their reason, only when there are any (`_rejected`).
    The source file and row of a row are worked out from its position in the scan.
    """
    row_key = pl.when(_billable(known, month)).then(key).alias("_key")
    int32 = (-(2**31), 2**31 - 1)
    narrow = [name for name in USAGE_VALUES
              if (b := inputs.usage_bounds.get(name)) is not None
              and int32[0] <= b[0] and b[1] <= int32[1]]
    try:
        try:
            # Metrics the footers show to fit 32 bits are read so (`load/bounds.py`): the
            # scan is the largest frame of the run. A footer that lies fails the strict
            # cast, and the data is read again as declared.
            frame = inputs.usage.select(
                row_key, *[pl.col(n).cast(pl.Int32) if n in narrow else pl.col(n)
                           for n in USAGE_VALUES]).collect()
        except pl.exceptions.InvalidOperationError:
            if not narrow:
                raise
            frame = inputs.usage.select(row_key, *USAGE_VALUES).collect()
    except (pl.exceptions.PolarsError, OSError):
        # A usage file whose footer was fine but whose data pages are corrupt.
        unreadable = find_unreadable_usage(inputs)
        if unreadable is None:
            raise
        raise unreadable from None
    if frame.height != inputs.usage_rows:  # pragma: no cover - a reader bug, never input
        raise AssertionError(f"read {frame.height} usage rows, the files hold "
                             f"{inputs.usage_rows}")
    return frame


def _rejected(bad_rows: int, known: pl.Expr, month: Month, inputs: Inputs,
              files: pl.DataFrame) -> pl.DataFrame:
    """The rows that cannot be billed, with their reason and source, in `REJECTED_SCHEMA`.

    The scan kept no app or date for them: when there are any, the files are read
    again, keeping only those rows (about 0.6 s on the large month; none of it when
    every row is billable)."""
    if not bad_rows:
        return pl.DataFrame(schema=REJECTED_SCHEMA)
    rows = (
        inputs.usage.with_row_index("_position")
        .filter(~_billable(known, month))
        .select("_position", *USAGE_KEY, *USAGE_VALUES)
        .collect()
    )
    if rows.height != bad_rows:  # pragma: no cover - the same files, read twice
        raise AssertionError(f"{bad_rows} rows could not be billed, {rows.height} read again")
    return (
        rows.with_columns(_known=pl.when(known).then(pl.lit(True)))
        .with_columns(reason=_reject_reason(month))
        .hstack(_source_of(rows["_position"], inputs))
        .join(files, on="source_file_id", how="left")
        .select(list(REJECTED_SCHEMA))
        .cast(REJECTED_SCHEMA)  # type: ignore[arg-type]
        .sort("source_file", "source_row")
    )


def _repeated_rows(frame: pl.DataFrame, repeated_keys: pl.Series, decoded: list[pl.Expr],
                   inputs: Inputs) -> pl.DataFrame:
    """Every billable row of a repeated (app, day), with its key, source file and row."""
    positions = frame.select(pl.col("_key").is_in(repeated_keys.implode()).fill_null(False)
                             .arg_true())[:, 0] if repeated_keys.len() \
        else pl.Series(dtype=pl.get_index_type())
    return (
        frame.gather(positions).select(*decoded, *USAGE_VALUES, "_key")
        .hstack(_source_of(positions, inputs))
    )


def _per_repeated_day(repeated_rows: pl.DataFrame) -> pl.DataFrame:
    """Per repeated app and day: the row count and each metric's maximum; ``_agree`` when
    every copy has the same values (min == max, nulls alike): exact duplicates only."""
    live = pl.col("live_group_count")
    return repeated_rows.group_by(USAGE_KEY).agg(
        rows=pl.len(),
        dau=pl.col("dau").max(),
        group_count=pl.col("group_count").max(),
        live_group_count=live.max(),
        _agree=(pl.col("dau").min() == pl.col("dau").max())
        & (pl.col("group_count").min() == pl.col("group_count").max())
        & ((live.null_count() == pl.len())
           | ((live.null_count() == 0) & (live.min() == live.max()))),
    )


def _conflicts(per_day: pl.DataFrame, repeated_rows: pl.DataFrame, inputs: Inputs,
               files: pl.DataFrame, on_conflict: OnConflict) -> tuple[int, int]:
    """(duplicates, conflicts merged) among the repeated days; `ConflictError` when two
    rows of one app and day differ, unless ``on_conflict`` is ``max``."""
    agreeing = per_day.filter(pl.col("_agree"))
    duplicates = int(agreeing["rows"].sum()) - agreeing.height
    conflicting = per_day.filter(~pl.col("_agree")).select(USAGE_KEY)
    if not conflicting.height:
        return duplicates, 0
    # One key per row that orders rows by (file, row): the first copy of a duplicate is
    # named as the source. Bounds of the packed key: rows of one file and files both fit.
    assert max((f.rows or 0) for f in inputs.files) < 1 << 40
    assert len(inputs.usage_files) < 1 << 22
    source_key = pl.col("source_file_id").cast(pl.Int64) * (1 << 40) + pl.col("source_row")
    distinct = (
        repeated_rows.lazy().join(conflicting.lazy(), on=USAGE_KEY, how="semi")
        .group_by([*USAGE_KEY, *USAGE_VALUES])
        .agg(copies=pl.len(), source_key=source_key.min())
        .collect()
    )
    if on_conflict != "max":
        per_version = distinct.group_by(USAGE_KEY).agg(versions=pl.len())
        raise ConflictError(_conflict_message(distinct, per_version, files))
    duplicates += int(distinct["copies"].sum()) - distinct.height
    return duplicates, distinct.height - conflicting.height


def validate_usage(
    inputs: Inputs, month: Month, on_conflict: OnConflict = "error",
    errors: ErrorLog | None = None,
) -> ValidUsage:
    """Sort every usage row into billed, duplicate, merged or rejected (vectorised).

    A metric above `MAX_QUANTITY` is an input error; it is added to `errors` (which are
    then raised with the table checks' errors), or raised at once without a log.
    """
    errors = ErrorLog() if errors is None else errors
    known = pl.col("sdk_app_id").is_in(inputs.apps["sdk_app_id"].implode())
    # One integer key per app and day. The billable rows are sorted by it, once:
    # repeated days are then neighbours (far faster than hashing or grouping tens of
    # millions of rows), and every later stage reads the usage in (app, day) order,
    # which its per-app work relies on (plan of each day by an as-of join, the day-over-
    # day growth of the entitlements by a shift). Only the key and the metrics
    # are read and sorted; app and date are decoded from the key.
    key, decoded = _day_key(inputs.apps, month)
    frame = _scan(inputs, month, known, key)
    _check_ranges(frame, inputs, errors)
    errors.raise_if_any()
    files = pl.DataFrame({"source_file": list(inputs.usage_files)}).with_row_index(
        "source_file_id").with_columns(pl.col("source_file_id").cast(pl.Int32))
    bad_rows = frame["_key"].null_count()
    rejected = _rejected(bad_rows, known, month, inputs, files)
    # The unbillable rows have no key: they sort last and are cut off (no filtered copy
    # of the scan is made).
    good = frame.select("_key", *_narrowed(frame)).sort("_key", nulls_last=True) \
        .head(frame.height - bad_rows)
    repeated_keys = good.select(
        pl.col("_key").filter(pl.col("_key") == pl.col("_key").shift(1)).unique())["_key"]
    repeated_rows = _repeated_rows(frame, repeated_keys, decoded, inputs)
    # The scan goes before app and date are decoded from the key: the two largest frames
    # of the stage are never held at once.
    del frame
    good = good.select(*decoded, *USAGE_VALUES, "_key")
    per_day = _per_repeated_day(repeated_rows)
    duplicates, conflicts_merged = _conflicts(per_day, repeated_rows, inputs, files,
                                              on_conflict)
    # One row per app and day, still sorted: the first copy of each repeated day, which
    # holds the day's values when its copies agree; merged conflicts (--on-conflict
    # max) take the maximum of each metric instead.
    usage = good.filter(pl.col("_key") != pl.col("_key").shift(1).fill_null(-1)) \
        if repeated_keys.len() else good
    merged = per_day.filter(~pl.col("_agree"))
    if merged.height:
        # A merged live_group_count is null only when every copy had none.
        usage = usage.update(merged.select(*USAGE_VALUES, _key=key), on="_key", how="left",
                             maintain_order="left")
    counts = UsageCounts(rows_in=inputs.usage_rows, billed=usage.height, duplicates=duplicates,
                         conflicts_merged=conflicts_merged, rejected=rejected.height)
    if not counts.balanced():  # pragma: no cover - an accounting bug, never bad input
        raise AssertionError(f"usage rows do not balance: {counts}")
    return ValidUsage(usage=usage.drop("_key"), rejected=rejected, counts=counts)


def _conflict_message(
    distinct: pl.DataFrame, conflicting: pl.DataFrame, files: pl.DataFrame
) -> str:
    first = conflicting.sort(USAGE_KEY).row(0, named=True)
    rows = (
        distinct.filter((pl.col("sdk_app_id") == first["sdk_app_id"])
                        & (pl.col("date") == first["date"]))
        .with_columns(
            source_file_id=(pl.col("source_key") // (1 << 40)).cast(pl.Int32),
            source_row=pl.col("source_key") % (1 << 40),
        )
        .join(files, on="source_file_id", how="left")
        .sort("source_file", "source_row")
    )
    shown = "; ".join(
        f"{r['source_file']} row {r['source_row']}: dau={r['dau']} "
        f"group_count={r['group_count']} live_group_count={r['live_group_count']}"
        for r in rows.to_dicts()
    )
    more = conflicting.height - 1
    return (
        f"usage conflict: app {first['sdk_app_id']} on {first['date']} has different rows "
        f"({shown})" + (f"; {more} more app-days conflict" if more else "")
        + ". Fix the export, or rerun with --on-conflict max to bill the larger values."
    )

