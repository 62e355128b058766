"""Stage 1, load: find the month's input files, check their structure, read them.

A structural problem (missing file or column, wrong type, unreadable file) raises
`InputError` naming the file, the column and an example row, before anything is
written. Row-level problems in usage (nulls, negatives, unknown apps, dates outside
the month) are not decided here: `validate` turns them into rejected rows.

Tables may be Parquet or CSV (SPEC §2). Usage may be spread over any number of files
at any depth under ``usage/``; each usage row keeps the index of its file and its
1-based row number so a rejected row can be traced back to its source.

Columns beyond those of SPEC §2 are ignored (an export may carry more than we bill
on); only the listed columns are read, but a column name that appears twice (also after
trimming or case-folding) is an error in every table (`columns`). Which files are read,
refused or ignored is decided by `files`; CSV parsing is `csv_reader`'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from invoicing.core.errors import ErrorLog, InputError, Source
from invoicing.load.bounds import METRICS, Bounds, merge_bounds, parquet_bounds
from invoicing.load.columns import duplicate_columns, missing_column, misspelled_optional
from invoicing.load.csv_reader import decompress, read_csv, type_name
from invoicing.load.files import find_table, find_usage_files, kind_of
from invoicing.load.files import label as input_label
from invoicing.load.pricebook import MetricModel, PriceBook, load_pricebook
from invoicing.load.seller import DEFAULT_SELLER, Seller, load_seller
from invoicing.storage import readable, relative_name, scan_parquet, seekable

#: Expected column types per table; `None` marks an optional column.
USAGE_COLUMNS: dict[str, pl.DataType] = {
    "sdk_app_id": pl.Int64(),
    "date": pl.Date(),
    "dau": pl.Int64(),
    "group_count": pl.Int64(),
    "live_group_count": pl.Int64(),
}
USAGE_OPTIONAL = frozenset({"live_group_count"})
#: Optional `customers` columns (README, "E-invoices"): missing = null in every row.
CUSTOMERS_OPTIONAL = frozenset({"postcode", "city", "buyer_reference", "einvoice_format",
                                "peppol_scheme", "peppol_id", "mandate_reference"})
#: Columns that may be null in every row, and so may arrive with the Arrow type ``null``.
NULLABLE = frozenset({"live_group_count", "tax_id"}) | CUSTOMERS_OPTIONAL
APPS_COLUMNS: dict[str, pl.DataType] = {
    "sdk_app_id": pl.Int64(),
    "customer_id": pl.String(),
    "app_name": pl.String(),
}
CUSTOMERS_COLUMNS: dict[str, pl.DataType] = {
    name: pl.String()
    for name in ("customer_id", "name", "email", "address", "country", "currency", "locale",
                 "tax_id", *sorted(CUSTOMERS_OPTIONAL))
}
EVENTS_COLUMNS: dict[str, pl.DataType] = {
    "sdk_app_id": pl.Int64(),
    "effective_date": pl.Date(),
    "item": pl.String(),
    "value": pl.String(),
}

_ARROW_OK: dict[type[pl.DataType], tuple[pa.DataType, ...]] = {
    pl.Int64: (pa.int64(),),
    pl.Date: (pa.date32(),),
    pl.String: (pa.string(), pa.large_string(), pa.string_view()),
}


@dataclass(frozen=True)
class InputFile:
    """One input file as recorded in the manifest.

    Attributes:
      path: path relative to the input folder (POSIX separators); a price book given
        with ``--pricebook`` from outside the folder is ``@pricebook/<name>``, a seller
        file from outside it ``@seller/<name>``.
      sha256: hex digest of the file's bytes.
      rows: data rows in the file (None for the price book and the seller file).
    """

    path: str
    sha256: str
    rows: int | None


@dataclass(frozen=True)
class Inputs:
    """Everything read for one month, before validation.

    Attributes:
      input_dir: the ``--input`` folder.
      usage: lazy frame of all usage rows with ``source_file_id`` (index into
        `usage_files`) and ``source_row`` (1-based row in that file).
      usage_files: relative paths of the usage files, sorted; index = source_file_id.
      usage_rows: number of usage rows read, over all files.
      apps, customers, events: the small tables, eagerly read; ``events`` has a
        1-based ``source_row`` so a bad event can be named.
      files: every input file with its hash, sorted by path (for the manifest).
      pricebook: the parsed price book.
      table_paths: table name (``apps``, ``customers``, ``subscription_events``,
        ``pricebook``, ``seller``) -> the label of the file it was read from, for errors.
      seller: the seller file.
      ignored: files and folders under ``usage/`` ignored by the ``_``/``.`` rule.
      usage_bounds: each metric's lowest and highest value over the usage files, from
        the Parquet footers' statistics (None where unknown): lets validation read the
        metrics in a narrower type without a pass over the data.
    """

    input_dir: Path
    usage: pl.LazyFrame
    usage_files: tuple[str, ...]
    usage_rows: int
    apps: pl.DataFrame
    customers: pl.DataFrame
    events: pl.DataFrame
    files: tuple[InputFile, ...]
    pricebook: PriceBook
    table_paths: dict[str, str]
    seller: Seller
    ignored: tuple[str, ...] = ()
    usage_bounds: Bounds = field(default_factory=lambda: dict.fromkeys(METRICS))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _relative(path: Path, root: Path, kind: str = "pricebook") -> str:
    """The path relative to the input folder; a file outside it is named by its base name
    under ``@<kind>/`` so the inputs digest does not depend on where it was stored."""
    return relative_name(path, root) or f"@{kind}/{path.name}"


def _example(values: pl.Series, row: int) -> str:
    return f"row {row}: {values[row - 1]!r}"


def _check_parquet_schema(
    path: Path, label: str, columns: dict[str, pl.DataType], optional: frozenset[str]
) -> list[str]:
    """Check a Parquet file's columns and types from its footer; return the columns present.

    Every missing column and wrong type of the file is reported at once. A nullable
    column (`NULLABLE`) may have the Arrow type ``null``: pandas and Polars write a
    column that is null in every row that way.
    """
    try:
        with seekable(path) as source:  # the footer only, also on object storage
            schema = pq.read_schema(source)
    except (pa.ArrowInvalid, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(Source(label), f"not a readable Parquet file ({reason})") from None
    errors = ErrorLog()
    for duplicate in duplicate_columns(schema.names, label):
        errors.add_error(duplicate)
    errors.raise_if_any()
    present = [c for c in columns if c in schema.names]
    for name in columns:
        if name not in schema.names and name not in optional:
            errors.add_error(missing_column(label, name, schema.names))
        elif name in optional and (slip := misspelled_optional(label, name, schema.names)):
            errors.add_error(slip)
    for name in present:
        arrow_type = schema.field(name).type
        expected = columns[name]
        if arrow_type in _ARROW_OK[type(expected)] or (
                name in NULLABLE and arrow_type == pa.null()):
            continue
        example = ""
        try:
            col = pq.read_table(readable(path), columns=[name]).column(name)
            if len(col):
                example = f", row 1 has {col[0].as_py()!r}"
        except (pa.ArrowInvalid, OSError):
            pass
        errors.add(Source(label, name), f"expected {type_name(expected)}, found "
                   f"{arrow_type}{example}")
    errors.raise_if_any()
    return present


def _read_csv_file(path: Path, label: str, columns: dict[str, pl.DataType],
                   optional: frozenset[str]) -> pl.DataFrame:
    """A ``.csv`` or ``.csv.gz`` file, read whole and cast strictly."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(Source(label), f"not a readable CSV file ({exc})") from None
    if kind_of(path.name) == "csv.gz":
        data = decompress(data, label)
    return read_csv(data, label, columns, optional)


def _read_table(
    path: Path, label: str, columns: dict[str, pl.DataType], optional: frozenset[str] = frozenset()
) -> pl.DataFrame:
    if kind_of(path.name) != "parquet":
        return _read_csv_file(path, label, columns, optional)
    present = _check_parquet_schema(path, label, columns, optional)
    try:
        # A null-typed nullable column becomes the declared type; a missing optional one null.
        return pl.read_parquet(readable(path), columns=present).cast(
            {c: columns[c] for c in present}).with_columns(
            pl.lit(None, dtype=columns[c]).alias(c) for c in columns if c not in present)
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise InputError(Source(label), f"not a readable Parquet file ({exc})") from None


def _scan_usage_file(path: Path, label: str, file_id: int
                     ) -> tuple[pl.LazyFrame, int, Bounds]:
    """A lazy frame over one usage file, with its source columns, its row count and its
    metrics' bounds (`Bounds`)."""
    if kind_of(path.name) != "parquet":
        frame = _read_csv_file(path, label, USAGE_COLUMNS, USAGE_OPTIONAL)
        rows = frame.height
        lazy = frame.lazy()
        extremes = frame.select(*[pl.col(m).min().alias(f"{m}_min") for m in METRICS
                                  if m in frame.columns],
                                *[pl.col(m).max().alias(f"{m}_max") for m in METRICS
                                  if m in frame.columns]).row(0, named=True)
        bounds: Bounds = {m: (extremes.get(f"{m}_min") or 0, extremes.get(f"{m}_max") or 0)
                          for m in METRICS}
    else:
        present = _check_parquet_schema(path, label, USAGE_COLUMNS, USAGE_OPTIONAL)
        with seekable(path) as source:
            metadata = pq.ParquetFile(source).metadata
        rows = metadata.num_rows
        bounds = parquet_bounds(metadata, present)
        # Row group by row group, also from object storage: never the whole file at once.
        lazy = scan_parquet(path).select(present).cast(
            {c: USAGE_COLUMNS[c] for c in present})
    if "live_group_count" not in lazy.collect_schema().names():
        lazy = lazy.with_columns(live_group_count=pl.lit(None, dtype=pl.Int64))
    lazy = lazy.select(list(USAGE_COLUMNS)).with_row_index("source_row", offset=1).with_columns(
        source_file_id=pl.lit(file_id, dtype=pl.Int32),
        source_row=pl.col("source_row").cast(pl.Int64),
    )
    return lazy, rows, bounds


def find_unreadable_usage(inputs: Inputs) -> InputError | None:
    """The error naming the first usage file (and column) whose data cannot be decoded.

    `load_inputs` checks each Parquet footer, but a corrupt data page only shows when
    the lazy usage scan is collected, in `validate`. When that fails, this reads the
    files one column at a time to name the culprit; None if every file reads (the
    failure was something else).
    """
    for label in inputs.usage_files:
        path = inputs.input_dir / label
        if kind_of(path.name) != "parquet":
            continue
        names = pq.read_schema(readable(path)).names
        for column in (c for c in USAGE_COLUMNS if c in names):
            try:
                pl.scan_parquet(readable(path)).select(column).collect()
            except (pl.exceptions.PolarsError, OSError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return InputError(Source(label, column), "not a readable Parquet file: the "
                                  f"data cannot be decoded ({reason})")
    return None


def load_inputs(input_dir: Path, pricebook_path: Path | None = None,
                seller_path: Path | None = None, *,
                models: Mapping[str, MetricModel]) -> Inputs:
    """Read one month's inputs; raise `InputError` listing every structural problem.

    `seller_path`: the seller file (default ``templates/seller.toml``). `models`: the
    pricing models the price book's overage sections may name
    (`invoicing.pricing.models.MODELS`, handed in because pricing is a later stage).
    """
    if not input_dir.is_dir():
        raise InputError(Source(str(input_dir)), "input folder not found")
    # Every structural problem of every file is collected, so that one run lists them all.
    errors = ErrorLog()
    found = find_usage_files(input_dir, errors)
    files: list[InputFile] = []
    scans: list[pl.LazyFrame] = []
    usage_labels: list[str] = []
    usage_rows = 0
    bounds: list[Bounds] = []
    for path in found.read:
        name = input_label(path, input_dir)
        try:
            scan, rows, file_bounds = _scan_usage_file(path, name, len(usage_labels))
        except InputError as exc:
            errors.add_error(exc)
            continue
        bounds.append(file_bounds)
        scans.append(scan)
        usage_labels.append(name)
        usage_rows += rows
        files.append(InputFile(name, sha256_file(path), rows))

    tables: dict[str, pl.DataFrame] = {}
    table_paths: dict[str, str] = {}
    for table, columns in (("apps", APPS_COLUMNS), ("customers", CUSTOMERS_COLUMNS),
                           ("subscription_events", EVENTS_COLUMNS)):
        try:
            path = find_table(input_dir, table)
            name = input_label(path, input_dir)
            frame = _read_table(path, name, columns, CUSTOMERS_OPTIONAL & set(columns))
        except InputError as exc:
            errors.add_error(exc)
            continue
        tables[table] = frame
        table_paths[table] = name
        files.append(InputFile(name, sha256_file(path), frame.height))

    pb_path = pricebook_path if pricebook_path is not None else input_dir / "pricebook.toml"
    # Errors name the price book as the user typed it; the manifest names it relative to
    # the input folder (or as @pricebook/<name>), so the run id does not depend on where
    # it was stored. The seller file likewise (@seller/<name>).
    pb_label = _relative(pb_path, input_dir)
    table_paths["pricebook"] = str(pricebook_path) if pricebook_path is not None else pb_label
    try:
        pricebook = load_pricebook(pb_path, table_paths["pricebook"], models=models)
    except InputError as exc:
        errors.add_error(exc)
    seller_file = seller_path if seller_path is not None else DEFAULT_SELLER
    try:
        seller = load_seller(seller_file, None if seller_path is None else str(seller_path))
        table_paths["seller"] = seller.label
    except InputError as exc:
        errors.add_error(exc)
    errors.raise_if_any()
    files.append(InputFile(pb_label, pricebook.sha256, None))
    table_paths["seller_input"] = _relative(seller_file, input_dir, "seller")
    files.append(InputFile(table_paths["seller_input"], seller.sha256, None))

    return Inputs(
        input_dir=input_dir,
        usage=pl.concat(scans, how="vertical"),
        usage_files=tuple(usage_labels),
        usage_rows=usage_rows,
        usage_bounds=merge_bounds(bounds),
        apps=tables["apps"],
        customers=tables["customers"],
        events=tables["subscription_events"].with_row_index("source_row", offset=1).with_columns(
            pl.col("source_row").cast(pl.Int64)
        ),
        files=tuple(sorted(files, key=lambda f: f.path)),
        pricebook=pricebook,
        table_paths=table_paths,
        seller=seller,
        ignored=found.ignored,
    )
