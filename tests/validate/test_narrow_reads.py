"""The usage metrics are read as 32-bit integers when the Parquet footers show they fit
(`load/bounds.py`), as declared otherwise, and the month is billed the same either way:
also when a footer has no statistics, and when one lies."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from invoicing.core.timeframe import Month
from invoicing.load.inputs import load_inputs
from invoicing.pipeline import compute_month
from invoicing.pricing.models import MODELS
from invoicing.validate import usage as validate_usage_module
from invoicing.validate.usage import validate_usage
from tests.builders import MonthBuilder, d

OCT = Month(2026, 10)


def month(top_dau: int) -> MonthBuilder:
    b = MonthBuilder().customer("c1").customer("c2").app(1, "c1").app(2, "c2", plan="flagship")
    b.day(1, d(1), dau=15_000, groups=7).day(1, d(2), dau=-3).day(2, d(1), dau=top_dau)
    return b


def test_the_footers_give_each_metrics_bounds(tmp_path: Path) -> None:
    inputs = load_inputs(month(25_000).write(tmp_path / "in"), models=MODELS)
    assert inputs.usage_bounds == {"dau": (-3, 25_000), "group_count": (7, 10),
                                   "live_group_count": (0, 0)}
    usage = validate_usage(inputs, OCT).usage
    assert usage.schema["dau"] == pl.Int32 and usage.schema["group_count"] == pl.Int32


def test_a_footer_without_statistics_leaves_the_bounds_unknown(tmp_path: Path) -> None:
    folder = month(25_000).write(tmp_path / "in")
    path = folder / "usage/part=0/usage.parquet"
    pq.write_table(pq.read_table(path), path, write_statistics=False)
    inputs = load_inputs(folder, models=MODELS)
    assert inputs.usage_bounds == {"dau": None, "group_count": None, "live_group_count": None}
    assert compute_month(folder, OCT).assembled.invoices.select("total").rows() == \
        compute_month(month(25_000).write(tmp_path / "again"), OCT).assembled.invoices.select(
            "total").rows()


def test_a_value_beyond_32_bits_is_read_and_billed_exactly(tmp_path: Path) -> None:
    folder = month(3_000_000_000).write(tmp_path / "in")
    inputs = load_inputs(folder, models=MODELS)
    assert inputs.usage_bounds["dau"] == (-3, 3_000_000_000)
    lines = compute_month(folder, OCT).assembled.line_items
    overage = lines.filter((pl.col("sdk_app_id") == 2) & (pl.col("item") == "dau_overage"))
    # 3,000,000,000 - 10,000 free = 2,999,990,000 -> 299,999 blocks of 10,000.
    assert overage.select("peak_value", "excess", "quantity").row(0) == (
        3_000_000_000, 2_999_990_000, Decimal(299_999))


@pytest.mark.parametrize("top_dau", [25_000, 3_000_000_000])
def test_a_footer_that_lies_is_read_again_as_declared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, top_dau: int) -> None:
    folder = month(top_dau).write(tmp_path / "in")
    honest = compute_month(folder, OCT)
    real = validate_usage_module.validate_usage

    def with_lying_footers(inputs, *args, **kwargs):  # type: ignore[no-untyped-def]
        lying = {m: (0, 10) for m in inputs.usage_bounds}
        return real(dataclasses.replace(inputs, usage_bounds=lying), *args, **kwargs)

    monkeypatch.setattr("invoicing.pipeline.validate_usage", with_lying_footers)
    lied = compute_month(folder, OCT)
    assert lied.assembled.line_items.equals(honest.assembled.line_items)
    assert lied.assembled.invoices["total"].to_list() == honest.assembled.invoices[
        "total"].to_list()
    assert honest.assembled.invoices["total"].sum() > Decimal(0)


def test_rows_that_cannot_be_billed_keep_the_values_read(tmp_path: Path) -> None:
    """The scan keeps only a narrow (app, day) key for the billable rows; the rows that
    cannot be billed are read again, and keep every value as the files hold it, also
    beyond 32 bits (the key and the metrics of the billable rows are 32-bit here)."""
    b = month(25_000)
    b.day(2**62, d(3), dau=5).day(1, d(4), dau=-3_000_000_000, groups=2**40)
    b.day(2, d(5), groups=-(2**35))
    folder = b.write(tmp_path / "in", usage_files=2)
    computed = compute_month(folder, OCT)
    rejected = computed.usage.rejected
    assert rejected.drop("live_group_count").rows() == [
        ("usage/part=0/usage.parquet", 3, 1, d(4), -3_000_000_000, 2**40, "negative dau"),
        ("usage/part=1/usage.parquet", 1, 1, d(2), -3, 10, "negative dau"),
        ("usage/part=1/usage.parquet", 2, 2**62, d(3), 5, 10, "unknown sdk_app_id"),
        ("usage/part=1/usage.parquet", 3, 2, d(5), 10, -(2**35), "negative group_count"),
    ]
    assert computed.usage.counts.rejected == 4 and computed.usage.counts.billed == 2
    assert computed.usage.counts.balanced()
    overage = computed.assembled.line_items.filter(pl.col("item") == "dau_overage")
    assert overage.select("sdk_app_id", "peak_value").rows() == [(1, 15_000), (2, 25_000)]
