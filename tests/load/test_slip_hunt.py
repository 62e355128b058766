"""Hunting slips: the sample month mutated one slip at a time.

Every price-book key and table name of the current USD version, and every column header
of every input table, is lower-cased, upper-cased, stripped of a letter and duplicated;
every usage file is renamed with an upper-case suffix, compressed to ``.csv.gz`` and
moved under a linked folder. Each mutated month must either stop with an input error
(exit 3) whose text names the slip, or bill exactly what the unmutated month bills
(every invoice's total and tax, and the anomalies). Pricing only (`compute_month`), so
the ~200 runs take a few seconds: most stop at the load stage.
"""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from invoicing.core.errors import InputError
from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month
from tests.conftest import SAMPLE

OCT = Month(2026, 10)
Mutation = tuple[str, Callable[[Path], str]]  # (id, mutate(folder) -> the slip's name)


def _variants(name: str) -> Iterator[tuple[str, str]]:
    """(kind, mutated name): lower, upper, a letter dropped; identities left out."""
    for kind, other in (("lower", name.lower()), ("upper", name.upper()),
                        ("drop", name[:len(name) // 2] + name[len(name) // 2 + 1:])):
        if other != name and other:
            yield kind, other


def outcome(folder: Path) -> tuple[list[tuple[object, ...]], int]:
    computed = compute_month(folder, OCT)
    invoices = computed.assembled.invoices.sort("customer_id")
    return invoices.select("customer_id", "subtotal", "tax", "total").rows(), \
        computed.anomalies.height


@pytest.fixture(scope="module")
def expected() -> tuple[list[tuple[object, ...]], int]:
    return outcome(SAMPLE)


# --- the price book ----------------------------------------------------------------------

_KEY = re.compile(r'^(?P<key>"?[A-Za-z0-9_]+"?)\s*=')
_TABLE = re.compile(r"^\[\[?(?P<key>[A-Za-z0-9_.]+)\]\]?\s*$")


def _first_version_lines() -> list[tuple[int, str, str]]:
    """(line index, name, kind) of every key and table header of the first version."""
    lines = (SAMPLE / "pricebook.toml").read_text(encoding="utf-8").splitlines()
    found: list[tuple[int, str, str]] = []
    versions = 0
    for i, line in enumerate(lines):
        versions += line.strip() == "[[version]]"
        if versions > 1:
            break
        if (m := _TABLE.match(line)) is not None:
            found.append((i, m["key"].split(".")[-1], "table"))
        elif (m := _KEY.match(line)) is not None:
            found.append((i, m["key"].strip('"'), "key"))
    return found


def _pricebook_mutations() -> Iterator[pytest.ParameterSet]:
    for index, name, kind in _first_version_lines():
        mutated = [(k, other) for k, other in _variants(name)] + [("duplicate", name)]
        for how, other in mutated:
            def mutate(folder: Path, index: int = index, name: str = name, how: str = how,
                       other: str = other) -> str:
                path = folder / "pricebook.toml"
                lines = path.read_text(encoding="utf-8").splitlines()
                if how == "duplicate":
                    lines.insert(index + 1, lines[index])
                    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
                    # TOML names the repeated line; a repeated [[version]] leaves an empty one
                    return f"line {index + 2}|{name}"
                head, _, tail = lines[index].partition(name)
                lines[index] = head + other + tail
                path.write_text("\n".join(lines) + "\n", encoding="utf-8")
                return other
            yield pytest.param(mutate, id=f"pricebook-{kind}-{name}-{how}")


# --- table headers -----------------------------------------------------------------------

TABLES = ("apps.parquet", "customers.csv", "subscription_events.parquet",
          "usage/region=us/2026-10-a.parquet")


def _rename(folder: Path, table: str, column: str, new: str | None) -> None:
    """Rename `column` to `new`, or (new None) add a second column of the same name."""
    path = folder / table
    if table.endswith(".csv"):
        header, _, rest = path.read_text(encoding="utf-8").partition("\n")
        names = header.split(",")
        if new is None:
            lines = [f"{header},{column}"]
            frame = pl.read_csv(path, infer_schema=False)
            body = frame.with_columns(pl.col(column).alias("_copy")).write_csv(
                include_header=False)
            path.write_text("\n".join(lines) + "\n" + body, encoding="utf-8")
            return
        names[names.index(column)] = new
        path.write_text(",".join(names) + "\n" + rest, encoding="utf-8")
        return
    table_ = pq.read_table(path)
    if new is None:
        table_ = pa.Table.from_arrays([*table_.columns, table_.column(column)],
                                      names=[*table_.column_names, column])
    else:
        table_ = table_.rename_columns([new if c == column else c for c in table_.column_names])
    pq.write_table(table_, path)


def _header_mutations() -> Iterator[pytest.ParameterSet]:
    for table in TABLES:
        path = SAMPLE / table
        columns = (path.read_text(encoding="utf-8").split("\n", 1)[0].split(",")
                   if table.endswith(".csv") else pq.read_schema(path).names)
        for column in columns:
            for how, other in [*_variants(column), ("duplicate", None)]:
                def mutate(folder: Path, table: str = table, column: str = column,
                           other: str | None = other) -> str:
                    _rename(folder, table, column, other)
                    return other or column
                yield pytest.param(mutate, id=f"header-{table}-{column}-{how}")


# --- usage files -------------------------------------------------------------------------


def _usage_files(folder: Path) -> list[Path]:
    return sorted((folder / "usage").rglob("*.parquet"))


def upper_suffixes(folder: Path) -> str:
    for path in _usage_files(folder):
        path.rename(path.with_suffix(".PARQUET"))
    return ""


def compressed(folder: Path) -> str:
    for path in _usage_files(folder):
        frame = pl.read_parquet(path)
        path.with_name(path.stem + ".csv.gz").write_bytes(gzip.compress(
            frame.write_csv().encode()))
        path.unlink()
    return ""


def linked_folders(folder: Path) -> str:
    """Each file moved into a folder outside the input, linked back from where it was."""
    for i, path in enumerate(_usage_files(folder)):
        outside = folder.parent / f"linked-{i}"
        outside.mkdir()
        shutil.move(path, outside / path.name)
        (path.parent / f"linked-{i}").symlink_to(outside, target_is_directory=True)
    return ""


USAGE = [pytest.param(upper_suffixes, id="usage-upper-suffix"),
         pytest.param(compressed, id="usage-csv-gz"),
         pytest.param(linked_folders, id="usage-linked-folders")]
MUTATIONS = [*_pricebook_mutations(), *_header_mutations(), *USAGE]


def test_the_hunt_covers_every_key_and_header() -> None:
    keys = {name for _, name, _ in _first_version_lines()}
    assert {"plan_fee_policy", "tax", "KR", "price_per_block", "av_call", "trial_days"} <= keys
    assert len(MUTATIONS) > 150


@pytest.mark.parametrize("mutate", MUTATIONS)
def test_a_slip_stops_naming_itself_or_bills_the_same(
        mutate: Callable[[Path], str], expected: tuple[list[tuple[object, ...]], int],
        tmp_path: Path) -> None:
    folder = tmp_path / "in"
    shutil.copytree(SAMPLE, folder)
    slip = mutate(folder)
    try:
        got = outcome(folder)
    except InputError as error:
        names = [s for s in slip.split("|") if s]
        assert any(n in str(error) for n in names), f"{slip!r} not named in: {error}"
        return
    assert got == expected
