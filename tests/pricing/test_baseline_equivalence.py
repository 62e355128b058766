"""The benchmark's DuckDB baseline writes the same outputs as the batch.

`benchmarks.duckdb_baseline.compute_outputs` is an independent SQL implementation (it
shares no pricing code with `invoicing`). The benchmark compares its time with ours, so
it must do the same work: these tests check that the two ``line_items.parquet`` and
``invoices.parquet`` files hold the same rows, columns, types and order, on the sample
month (hand-checked scenarios) and on a seeded synthetic month.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from benchmarks.duckdb_baseline import compute_outputs
from benchmarks.synth import SynthSpec, generate
from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month
from invoicing.storage import PARQUET_COMPRESSION, PARQUET_COMPRESSION_LEVEL

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "2026-10"
MONTH = Month.parse("2026-10")


def _assert_same_outputs(input_dir: Path, out: Path) -> None:
    computed = compute_month(input_dir, MONTH)
    compute_outputs(input_dir, MONTH, out, compression=PARQUET_COMPRESSION,
                    compression_level=PARQUET_COMPRESSION_LEVEL)
    for name, ours in (("line_items", computed.assembled.line_items),
                       ("invoices", computed.assembled.invoices)):
        theirs = pl.read_parquet(out / f"{name}.parquet")
        assert theirs.schema == ours.schema, name
        assert theirs.height == ours.height, name
        assert theirs.equals(ours), name


def test_sample_month(tmp_path: Path) -> None:
    _assert_same_outputs(SAMPLE, tmp_path)


@pytest.mark.parametrize("seed", [7, 20261031])
def test_synthetic_month(tmp_path: Path, seed: int) -> None:
    month_dir = tmp_path / "month"
    generate(SynthSpec(n_apps=3_000, n_customers=300, days=31, seed=seed, month=MONTH),
             month_dir)
    (tmp_path / "duckdb").mkdir()
    _assert_same_outputs(month_dir, tmp_path / "duckdb")
