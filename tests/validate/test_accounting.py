"""Every usage row read is accounted for (SPEC §2: bad input never disappears):

    usage_rows_in = usage_rows_billed + usage_duplicates_collapsed
                    + usage_conflicts_merged + usage_rows_rejected

read from ``manifest.json``'s ``counts``, on generated months that mix good,
duplicate, conflicting and bad rows over several usage files, and on the sample month
``sample_data/2026-10``. Each count is also checked against an independent source:
the generator's own bookkeeping, the rows physically present in the usage files, and
the rows of ``rejected_rows.parquet``.
"""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from invoicing.cli import main
from tests.builders import INCOMPLETE_OK, MonthBuilder, d

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "2026-10"
COUNT_KEYS = ("usage_rows_in", "usage_rows_billed", "usage_duplicates_collapsed",
              "usage_conflicts_merged", "usage_rows_rejected")


def run(input_dir: Path, out: Path, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["run", "--month", "2026-10", "--input", str(input_dir),
                                       "--out", str(out), "--workers", "1", INCOMPLETE_OK,
                                       *extra])
    assert result.exit_code == 0, result.output
    manifest: dict[str, Any] = json.loads((out / "2026-10/manifest.json").read_text("utf-8"))
    return manifest


def assert_balanced(counts: dict[str, int]) -> None:
    assert counts["usage_rows_in"] == (
        counts["usage_rows_billed"] + counts["usage_duplicates_collapsed"]
        + counts["usage_conflicts_merged"] + counts["usage_rows_rejected"]
    ), counts


def rows_in_usage_files(input_dir: Path) -> int:
    """Rows physically present in the usage files, counted without the invoicing code."""
    total = 0
    for path in (input_dir / "usage").rglob("*"):
        if path.is_file() and not path.name.startswith((".", "_")):
            if path.suffix == ".parquet":
                total += pq.read_metadata(path).num_rows
            elif path.suffix == ".csv":
                total += pl.read_csv(path, infer_schema=False).height
    return total


def generated_month(seed: int, with_conflicts: bool) -> tuple[MonthBuilder, dict[str, int]]:
    """A month with good, duplicate, (conflicting) and bad rows, in random order, and the
    counts it must produce."""
    rng = random.Random(seed)
    b = MonthBuilder().customer("c1").customer("c2", country="KR", locale="ko_KR")
    apps = [101, 102, 103, 201, 202]
    for app in apps:
        b.app(app, "c1" if app < 200 else "c2", plan=rng.choice(["free", "pro", "flagship"]))

    good: dict[tuple[int, date], tuple[Any, ...]] = {}
    for app in apps:
        for day in rng.sample(range(1, 32), rng.randint(5, 25)):
            good[(app, d(day))] = (app, d(day), rng.randint(0, 25_000), rng.randint(0, 250_000),
                                   rng.choice([None, rng.randint(0, 80)]))
    rows = list(good.values())
    duplicates = rng.randint(3, 15)
    rows += [rng.choice(list(good.values())) for _ in range(duplicates)]
    conflicts = 0
    if with_conflicts:
        # Distinct other versions of some app-days, one of them copied (a duplicate too).
        keys = rng.sample(sorted(good), 4)
        for i, key in enumerate(keys):
            app, day, dau, groups, live = good[key]
            for k in range(1 + i % 2):
                rows.append((app, day, dau + 1 + k, groups, live))
                conflicts += 1
        rows.append(rows[-1])
        duplicates += 1
    bad = [
        (999, d(3), 10, 10, None),  # unknown app
        (999, d(3), 10, 10, None),  # the same bad row again: rejected twice, not collapsed
        (101, d(30, 9), 10, 10, None),  # before the month
        (102, d(1, 11), 10, 10, None),  # after the month
        (103, d(4), None, 10, None),  # null dau
        (201, d(5), 10, -1, None),  # negative group_count
        (202, None, 10, 10, None),  # null date
        (None, d(6), 10, 10, None),  # null app
        (101, d(7), 10, 10, -3),  # negative live_group_count
    ][: rng.randint(3, 9)]
    rows += bad
    rng.shuffle(rows)
    b.usage = rows
    expected = {
        "usage_rows_in": len(rows),
        "usage_rows_billed": len(good),
        "usage_duplicates_collapsed": duplicates,
        "usage_conflicts_merged": conflicts,
        "usage_rows_rejected": len(bad),
    }
    return b, expected


@pytest.mark.parametrize("with_conflicts", [False, True], ids=["no-conflicts", "on-conflict-max"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_month_accounts_for_every_row(seed: int, with_conflicts: bool,
                                                tmp_path: Path) -> None:
    b, expected = generated_month(seed, with_conflicts)
    folder = b.write(tmp_path / "in", usage_files=3)
    extra = ("--on-conflict", "max") if with_conflicts else ()
    manifest = run(folder, tmp_path / "out", *extra)
    counts = {k: manifest["counts"][k] for k in COUNT_KEYS}
    assert counts == expected
    assert_balanced(counts)
    assert counts["usage_rows_in"] == rows_in_usage_files(folder)
    rejected = pl.read_parquet(tmp_path / "out/2026-10/rejected_rows.parquet")
    assert rejected.height == counts["usage_rows_rejected"]
    assert rejected["reason"].null_count() == 0
    assert rejected["source_file"].null_count() == 0


def test_sample_month_accounts_for_every_row(tmp_path: Path) -> None:
    if not (SAMPLE / "usage").is_dir():
        pytest.skip(f"{SAMPLE} is absent: the sample month is built separately "
                    "(sample_data/generate.py); nothing to account for")
    manifest = run(SAMPLE, tmp_path / "out")
    counts = {k: manifest["counts"][k] for k in COUNT_KEYS}
    assert_balanced(counts)
    assert counts["usage_rows_in"] == rows_in_usage_files(SAMPLE)
    usage_inputs = [f for f in manifest["inputs"] if f["path"].startswith("usage/")]
    assert counts["usage_rows_in"] == sum(f["rows"] for f in usage_inputs)
    rejected = pl.read_parquet(tmp_path / "out/2026-10/rejected_rows.parquet")
    assert rejected.height == counts["usage_rows_rejected"]
    # The sample is built to exercise both: bad rows and exact duplicates.
    assert counts["usage_rows_rejected"] > 0
    assert counts["usage_duplicates_collapsed"] > 0
