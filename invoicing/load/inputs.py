"""Stage 1, load: find the month's input files, check their structure, read them.

A structural problem (missing file or column, wrong type, unreadable file) raises
`InputError` naming the file, the column and an example row, before anything is
written. Row-level problems in usage (nulls, negatives, unknown apps, dates outside
the month) are not decided here: `validate` turns them into rejected rows.

Tables may be Parquet or CSV (SPEC §2). Usage may be spread over any number of files
at any depth under ``usage/``; each usage row keeps the index of its file and its
1-based row number so a rejected row can be traced back to its source.

Columns beyond those of SPEC §2 are ignored (an export may carry more than we bill
on); only the listed columns are read. CSV tables must be UTF-8 (a byte-order mark is
allowed) and comma-separated, with RFC 4180 quoting, so a quoted field may hold a
newline; row numbers count data rows, not lines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from invoicing.core.errors import MAX_REPORTED_ERRORS, ErrorLog, InputError, Source
from invoicing.load.pricebook import MetricModel, PriceBook, load_pricebook
from invoicing.storage import is_remote, readable, relative_name, scan_parquet, seekable

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
        with ``--pricebook`` from outside the folder is ``@pricebook/<name>``.
      sha256: hex digest of the file's bytes.
      rows: data rows in the file (None for the price book).
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
        ``pricebook``) -> the label of the file it was read from, for error messages.
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _relative(path: Path, root: Path) -> str:
    """The path relative to the input folder; a file outside it is named by its base name
    under ``@pricebook/`` so the inputs digest does not depend on where it was stored."""
    return relative_name(path, root) or f"@pricebook/{path.name}"


def _label(path: Path, input_dir: Path) -> str:
    """How the manifest and errors name an input: relative to ``--input``, wherever it is."""
    if is_remote(path):
        return relative_name(path, input_dir) or str(path)
    return path.relative_to(input_dir).as_posix()


def find_table(input_dir: Path, name: str) -> Path:
    """`<name>.parquet` or `<name>.csv` in the input folder; exactly one must exist."""
    found = [p for p in (input_dir / f"{name}.parquet", input_dir / f"{name}.csv") if p.is_file()]
    if not found:
        raise InputError(Source(f"{name}.parquet"), f"missing: neither {name}.parquet nor "
                         f"{name}.csv is in {input_dir}")
    if len(found) > 1:
        raise InputError(Source(f"{name}.csv"), f"both {name}.parquet and {name}.csv exist; "
                         "keep only one")
    return found[0]


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
    present = [c for c in columns if c in schema.names]
    for name in columns:
        if name not in schema.names and name not in optional:
            errors.add(Source(label, name), f"missing column (the file has: "
                       f"{', '.join(schema.names) or 'no columns'})")
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
        errors.add(Source(label, name), f"expected {_type_name(expected)}, found "
                   f"{arrow_type}{example}")
    errors.raise_if_any()
    return present


def _type_name(dtype: pl.DataType) -> str:
    return {pl.Int64: "int64", pl.Date: "date", pl.String: "string"}[type(dtype)]


def _read_csv(
    path: Path, label: str, columns: dict[str, pl.DataType], optional: frozenset[str]
) -> pl.DataFrame:
    """Read a CSV as text, then cast each column strictly, naming the first bad row."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(Source(label), f"not a readable CSV file ({exc})") from None
    _check_csv_text(data, label)
    try:
        raw = pl.read_csv(data, infer_schema=False, encoding="utf8", raise_if_empty=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        reason = str(exc).splitlines()[0]
        raise InputError(Source(label), f"not a readable CSV file ({reason})") from None
    # An export with a byte-order mark must not hide its first column.
    raw = raw.rename({c: c.lstrip("\ufeff").strip() for c in raw.columns})
    for name in columns:
        if name not in raw.columns and name not in optional:
            raise InputError(Source(label, name), f"missing column (the file has: "
                             f"{', '.join(raw.columns) or 'no columns'})")
    out = {}
    errors = ErrorLog()  # every bad value of the file, not only the first
    for name, dtype in columns.items():
        if name not in raw.columns:  # optional: null in every row
            out[name] = pl.repeat(None, raw.height, dtype=dtype, eager=True).alias(name)
            continue
        text = raw[name].str.strip_chars()
        text = pl.Series(name, text).replace("", None)
        if isinstance(dtype, pl.String):
            out[name] = raw[name]
            continue
        if isinstance(dtype, pl.Date):
            cast = text.str.to_date("%Y-%m-%d", strict=False)
        else:
            cast = text.cast(dtype, strict=False)
        bad = (cast.is_null() & text.is_not_null()).arg_true()
        errors.count_more(bad.len() - MAX_REPORTED_ERRORS)
        for position in bad.head(MAX_REPORTED_ERRORS).to_list():
            errors.add(Source(label, name, position + 1),
                       f"expected {_type_name(dtype)}, found {text[position]!r}")
        out[name] = cast
    errors.raise_if_any()
    return pl.DataFrame(out)


_DELIMITERS = {";": "';'", "\t": "a tab", "|": "'|'"}


def _check_csv_text(data: bytes, label: str) -> None:
    """Refuse a CSV that is not UTF-8 or not comma-separated, before parsing it.

    Parsed blindly, a ``;``-separated export fails deep in the CSV reader (or, with
    quoted newlines, reports a row count mismatch) without saying why; a CP949 or
    Latin-1 export fails without saying where.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(Source(label), f"not UTF-8: byte 0x{data[exc.start]:02x} on line "
                         f"{line} cannot be decoded; export the table as UTF-8") from None
    if text.count('"') % 2:
        # Quotes pair up in RFC 4180 (an escaped quote is doubled), so the last one opens
        # a field that never closes; the reader would only say it could not parse it.
        line = text.count("\n", 0, text.rfind('"')) + 1
        raise InputError(Source(label), f"a quoted field opened on line {line} is never "
                         "closed (unbalanced '\"')")
    header = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    if "," not in header:
        for delimiter, name in _DELIMITERS.items():
            if delimiter in header:
                raise InputError(Source(label), f"the header is separated by {name}, not ','; "
                                 f"export the table as comma-separated CSV (header: {header!r})")


def _read_table(
    path: Path, label: str, columns: dict[str, pl.DataType], optional: frozenset[str] = frozenset()
) -> pl.DataFrame:
    if path.suffix == ".csv":
        return _read_csv(path, label, columns, optional)
    present = _check_parquet_schema(path, label, columns, optional)
    try:
        # A null-typed nullable column becomes the declared type; a missing optional one null.
        return pl.read_parquet(readable(path), columns=present).cast(
            {c: columns[c] for c in present}).with_columns(
            pl.lit(None, dtype=columns[c]).alias(c) for c in columns if c not in present)
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise InputError(Source(label), f"not a readable Parquet file ({exc})") from None


def _scan_usage_file(path: Path, label: str, file_id: int) -> tuple[pl.LazyFrame, int]:
    """A lazy frame over one usage file, with its source columns, and its row count."""
    if path.suffix == ".csv":
        frame = _read_csv(path, label, USAGE_COLUMNS, USAGE_OPTIONAL)
        rows = frame.height
        lazy = frame.lazy()
    else:
        present = _check_parquet_schema(path, label, USAGE_COLUMNS, USAGE_OPTIONAL)
        with seekable(path) as source:
            rows = pq.ParquetFile(source).metadata.num_rows
        # Row group by row group, also from object storage: never the whole file at once.
        lazy = scan_parquet(path).select(present).cast(
            {c: USAGE_COLUMNS[c] for c in present})
    if "live_group_count" not in lazy.collect_schema().names():
        lazy = lazy.with_columns(live_group_count=pl.lit(None, dtype=pl.Int64))
    lazy = lazy.select(list(USAGE_COLUMNS)).with_row_index("source_row", offset=1).with_columns(
        source_file_id=pl.lit(file_id, dtype=pl.Int32),
        source_row=pl.col("source_row").cast(pl.Int64),
    )
    return lazy, rows


def find_unreadable_usage(inputs: Inputs) -> InputError | None:
    """The error naming the first usage file (and column) whose data cannot be decoded.

    `load_inputs` checks each Parquet footer, but a corrupt data page only shows when
    the lazy usage scan is collected, in `validate`. When that fails, this reads the
    files one column at a time to name the culprit; None if every file reads (the
    failure was something else).
    """
    for label in inputs.usage_files:
        path = inputs.input_dir / label
        if path.suffix != ".parquet":
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


def load_inputs(input_dir: Path, pricebook_path: Path | None = None, *,
                models: Mapping[str, MetricModel]) -> Inputs:
    """Read one month's inputs; raise `InputError` on the first structural problem.

    `models`: the pricing models the price book's overage sections may name
    (`invoicing.pricing.models.MODELS`, handed in because pricing is a later stage).
    """
    if not input_dir.is_dir():
        raise InputError(Source(str(input_dir)), "input folder not found")
    usage_dir = input_dir / "usage"
    if not usage_dir.is_dir():
        raise InputError(Source("usage/"), f"missing: no usage folder in {input_dir}")
    usage_paths = sorted(
        (p for p in usage_dir.rglob("*") if p.is_file() and p.suffix in (".parquet", ".csv")
         and not p.name.startswith((".", "_"))),
        key=lambda p: _label(p, input_dir),
    )
    if not usage_paths:
        raise InputError(Source("usage/"), "no usage files (*.parquet or *.csv) found; "
                         "an export that produced nothing is refused rather than billed as idle")

    # Every structural problem of every file is collected, so that one run lists them all.
    errors = ErrorLog()
    files: list[InputFile] = []
    scans: list[pl.LazyFrame] = []
    usage_labels: list[str] = []
    usage_rows = 0
    for file_id, path in enumerate(usage_paths):
        label = _label(path, input_dir)
        try:
            scan, rows = _scan_usage_file(path, label, file_id)
        except InputError as exc:
            errors.add_error(exc)
            continue
        scans.append(scan)
        usage_labels.append(label)
        usage_rows += rows
        files.append(InputFile(label, sha256_file(path), rows))

    tables: dict[str, pl.DataFrame] = {}
    table_paths: dict[str, str] = {}
    for name, columns in (("apps", APPS_COLUMNS), ("customers", CUSTOMERS_COLUMNS),
                          ("subscription_events", EVENTS_COLUMNS)):
        try:
            path = find_table(input_dir, name)
            label = _label(path, input_dir)
            frame = _read_table(path, label, columns, CUSTOMERS_OPTIONAL & set(columns))
        except InputError as exc:
            errors.add_error(exc)
            continue
        tables[name] = frame
        table_paths[name] = label
        files.append(InputFile(label, sha256_file(path), frame.height))

    pb_path = pricebook_path if pricebook_path is not None else input_dir / "pricebook.toml"
    # Errors name the price book as the user typed it; the manifest names it relative to
    # the input folder (or as @pricebook/<name>), so the run id does not depend on where
    # it was stored.
    pb_label = _relative(pb_path, input_dir)
    table_paths["pricebook"] = str(pricebook_path) if pricebook_path is not None else pb_label
    try:
        pricebook = load_pricebook(pb_path, table_paths["pricebook"], models=models)
    except InputError as exc:
        errors.add_error(exc)
    errors.raise_if_any()
    files.append(InputFile(pb_label, pricebook.sha256, None))

    return Inputs(
        input_dir=input_dir,
        usage=pl.concat(scans, how="vertical"),
        usage_files=tuple(usage_labels),
        usage_rows=usage_rows,
        apps=tables["apps"],
        customers=tables["customers"],
        events=tables["subscription_events"].with_row_index("source_row", offset=1).with_columns(
            pl.col("source_row").cast(pl.Int64)
        ),
        files=tuple(sorted(files, key=lambda f: f.path)),
        pricebook=pricebook,
        table_paths=table_paths,
    )
