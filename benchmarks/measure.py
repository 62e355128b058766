"""One measurement per process, so that peak RSS belongs to one thing only.

    python -m benchmarks.measure pricing --input DIR --month 2026-10 --json OUT
    python -m benchmarks.measure duckdb  --input DIR --month 2026-10 --json OUT

``pricing`` runs `invoicing.pipeline.compute_month` (load, validate, pricing,
entitlements, assemble) and writes ``line_items.parquet`` and ``invoices.parquet`` the way
`invoicing.publish` does (zstd), into a temporary folder: everything ``invoicing run``
does except the PDFs and the manifest. ``duckdb`` runs `benchmarks.duckdb_baseline`.

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
    from invoicing.pipeline import StageTimer, compute_month, totals_per_currency
    from invoicing.timeframe import Month

    imported = time.perf_counter()
    timer = StageTimer()
    computed = compute_month(input_dir, Month.parse(month_label), timer=timer)
    with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp, timer.stage("write"):
        for name, frame in (("line_items", computed.assembled.line_items),
                            ("invoices", computed.assembled.invoices)):
            frame.write_parquet(Path(tmp) / f"{name}.parquet", compression="zstd",
                                statistics=True)
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
    }


def measure_duckdb(input_dir: Path, month_label: str) -> dict[str, Any]:
    began = time.perf_counter()
    from benchmarks.duckdb_baseline import compute_totals
    from invoicing.timeframe import Month

    imported = time.perf_counter()
    result = compute_totals(input_dir, Month.parse(month_label))
    return {
        "seconds": time.perf_counter() - imported,
        "import_seconds": imported - began,
        "stages": {"query": result.seconds},
        "totals": result.totals,
        "counts": result.counts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark measurement.")
    parser.add_argument("what", choices=("pricing", "duckdb"))
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--month", required=True)
    parser.add_argument("--json", type=Path, required=True, help="where to write the result")
    args = parser.parse_args(argv)
    measure = measure_pricing if args.what == "pricing" else measure_duckdb
    result = measure(args.input, args.month)
    result["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
