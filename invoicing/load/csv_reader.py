"""Reading a CSV input table (SPEC §2): UTF-8 (a byte-order mark is allowed),
comma-separated, RFC 4180 quoting (a quoted field may hold a newline), optionally
gzip-compressed (``.csv.gz``). The text is read as strings, then each column is cast
strictly, so a bad value is reported with its row; row numbers count data rows, not
lines or the header.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib

import polars as pl

from invoicing.core.errors import MAX_REPORTED_ERRORS, ErrorLog, InputError, Source
from invoicing.load.columns import duplicate_columns, missing_column, misspelled_optional


def type_name(dtype: pl.DataType) -> str:
    return {pl.Int64: "int64", pl.Date: "date", pl.String: "string"}[type(dtype)]


def decompress(data: bytes, label: str) -> bytes:
    """The CSV text of a ``.csv.gz`` file."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(Source(label), f"not a readable gzip file ({exc})") from None


def read_csv(
    data: bytes, label: str, columns: dict[str, pl.DataType], optional: frozenset[str]
) -> pl.DataFrame:
    """Read a CSV as text, then cast each column strictly, naming every bad row."""
    header = _check_csv_text(data, label)
    duplicates = duplicate_columns(header, label)
    if duplicates:
        log = ErrorLog()
        for error in duplicates:
            log.add_error(error)
        log.raise_if_any()
    try:
        raw = pl.read_csv(data, infer_schema=False, encoding="utf8", raise_if_empty=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        reason = str(exc).splitlines()[0]
        raise InputError(Source(label), f"not a readable CSV file ({reason})") from None
    # An export with a byte-order mark must not hide its first column.
    raw = raw.rename({c: c.lstrip("\ufeff").strip() for c in raw.columns})
    for name in columns:
        if name not in raw.columns and name not in optional:
            raise missing_column(label, name, raw.columns)
        if name in optional and (slip := misspelled_optional(label, name, raw.columns)):
            raise slip
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
                       f"expected {type_name(dtype)}, found {text[position]!r}")
        out[name] = cast
    errors.raise_if_any()
    return pl.DataFrame(out)


_DELIMITERS = {";": "';'", "\t": "a tab", "|": "'|'"}


def _check_csv_text(data: bytes, label: str) -> list[str]:
    """Refuse a CSV that is not UTF-8 or not comma-separated, before parsing it.

    Parsed blindly, a ``;``-separated export fails deep in the CSV reader (or, with
    quoted newlines, reports a row count mismatch) without saying why; a CP949 or
    Latin-1 export fails without saying where. Returns the header's column names as
    written (Polars would rename a repeated one, hiding it).
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
    # The header alone (a quoted name may hold a newline, so the csv module splits it).
    return next(csv.reader(io.StringIO(text.lstrip("\ufeff")[:1 << 16])), [])
