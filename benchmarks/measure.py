"""One measurement per process, so that peak RSS belongs to one thing only.

    python -m benchmarks.measure pricing --input DIR --month 2026-10 --json OUT
    python -m benchmarks.measure duckdb  --input DIR --month 2026-10 --json OUT
    python -m benchmarks.measure duckdb-totals --input DIR --month 2026-10 --json OUT

``pricing`` runs `invoicing.pipeline.compute_month` (load, validate, pricing,
entitlements, assemble) and writes ``line_items.parquet`` and ``invoices.parquet`` the way
`invoicing.publish.staging` does, into a temporary folder: everything ``invoicing run`` does
except the PDFs and the manifest. ``duckdb`` runs the equivalent in
`benchmarks.duckdb_baseline` (`compute_outputs`: the same line items with their
evidence, invoice numbers, both files written with ``COPY ... TO`` and the same Parquet
codec); ``duckdb-totals`` runs its totals-only form (`compute_totals`: charges summed per
customer, nothing materialised per line, nothing written).

Each writes a JSON object: ``seconds`` (the measured work, imports excluded),
``import_seconds``, ``stages`` (per-stage seconds), ``totals`` per currency, ``counts``
and ``max_rss_bytes`` of the process itself. `benchmarks.run` starts these as children
and also records their wall time and peak RSS from the outside (``os.wait4``).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any


def measure_pricing(input_dir: Path, month_label: str) -> dict[str, Any]:
    began = time.perf_counter()
    from invoicing.core.timeframe import Month
    from invoicing.core.timing import StageTimer
    from invoicing.pipeline import compute_month
    from invoicing.publish.manifest import totals_per_currency
    from invoicing.storage import write_parquet

    imported = time.perf_counter()
    timer = StageTimer()
    computed = compute_month(input_dir, Month.parse(month_label), timer=timer)
    with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp, timer.stage("write"):
        for name, frame in (("line_items", computed.assembled.line_items),
                            ("invoices", computed.assembled.invoices)):
            write_parquet(frame, Path(tmp) / f"{name}.parquet")
    done = time.perf_counter()
    counts = computed.usage.counts
    return {
        "seconds": done - imported,
        "import_seconds": imported - began,
        "stages": dict(timer.seconds),
        "totals": totals_per_currency(computed.assembled.invoices),
        "counts": {
            "rows_in": counts.rows_in,
            "billed": counts.billed,
            "duplicates": counts.duplicates,
            "conflicts_merged": counts.conflicts_merged,
            "rejected": counts.rejected,
            "line_items": computed.assembled.line_items.height,
            "customers": computed.assembled.invoices.height,
            "anomalies": computed.anomalies.height,
        },
        "item_sums": item_sums(computed.assembled.line_items),
    }


def item_sums(line_items: Any) -> dict[str, dict[str, Any]]:
    """``"<currency>/<item>"`` -> number of lines and the sum of their amounts."""
    import polars as pl

    from invoicing.publish.manifest import plain_decimal

    sums = line_items.group_by("currency", "item").agg(
        lines=pl.len(), amount=pl.col("amount").sum()).sort("currency", "item")
    return {f"{r['currency']}/{r['item']}": {"lines": r["lines"],
                                             "amount": plain_decimal(r["amount"])}
            for r in sums.to_dicts()}


def measure_duckdb(input_dir: Path, month_label: str) -> dict[str, Any]:
    """The baseline with outputs, written with the batch's Parquet codec."""
    began = time.perf_counter()
    from benchmarks.duckdb_baseline import compute_outputs
    from invoicing.core.timeframe import Month
    from invoicing.storage import PARQUET_COMPRESSION, PARQUET_COMPRESSION_LEVEL

    imported = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-duckdb-out-") as tmp:
        result = compute_outputs(input_dir, Month.parse(month_label), Path(tmp),
                                 compression=PARQUET_COMPRESSION,
                                 compression_level=PARQUET_COMPRESSION_LEVEL)
    return {
        "seconds": result.seconds,
        "import_seconds": imported - began,
        "stages": {"query and write": result.seconds},
        "totals": result.totals,
        "counts": result.counts,
        "item_sums": result.item_sums,
    }


def measure_duckdb_totals(input_dir: Path, month_label: str) -> dict[str, Any]:
    """The totals-only baseline: no line evidence, nothing written."""
    began = time.perf_counter()
    from benchmarks.duckdb_baseline import compute_totals
    from invoicing.core.timeframe import Month

    imported = time.perf_counter()
    result = compute_totals(input_dir, Month.parse(month_label))
    return {
        "seconds": time.perf_counter() - imported,
        "import_seconds": imported - began,
        "stages": {"query": result.seconds},
        "totals": result.totals,
        "counts": result.counts,
    }


MEASURES = {"pricing": measure_pricing, "duckdb": measure_duckdb,
            "duckdb-totals": measure_duckdb_totals}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark measurement.")
    parser.add_argument("what", choices=tuple(MEASURES))
    parser.add_argument("--input", required=True, help="a folder, or s3://bucket/prefix "
                        "for pricing")
    parser.add_argument("--month", required=True)
    parser.add_argument("--json", type=Path, required=True, help="where to write the result")
    args = parser.parse_args(argv)
    if args.what == "pricing":
        from invoicing.storage import location

        input_dir = location(args.input)
    else:
        input_dir = Path(args.input)
    result = MEASURES[args.what](input_dir, args.month)
    result["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
