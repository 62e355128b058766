"""Time and memory after each stage of the pricing path, for finding where they go.

    python -m benchmarks.stage_memory --input DIR [--month 2026-10] [--live]

Runs what `benchmarks.measure pricing` runs (`compute_month`, then both Parquet files
written) and prints, after each stage: its wall time, the process's peak RSS so far
(``ru_maxrss``) and its RSS now. The peak only grows, so the first stage that raises it
is where the memory went.

``--live`` runs the same in a child process whose Polars allocator (jemalloc) returns
freed pages at once (``_RJEM_MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0``): slower,
but its RSS is then close to the memory actually held, without the pages the allocator
keeps for reuse. BENCHMARKS.md calls it the decay-0 probe.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LIVE = "dirty_decay_ms:0,muzzy_decay_ms:0"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _now_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def report(input_dir: str, month: str) -> None:
    from invoicing.core import timing

    stage = timing.StageTimer.stage

    @contextmanager
    def reporting(self: timing.StageTimer, name: str) -> Iterator[None]:
        began = time.perf_counter()
        with stage(self, name):
            yield
        print(f"{name:14s} {time.perf_counter() - began:7.2f} s   peak {_peak_mib():7,.0f} MiB"
              f"   now {_now_mib():7,.0f} MiB", flush=True)

    timing.StageTimer.stage = reporting  # type: ignore[method-assign]
    from benchmarks.measure import measure_pricing
    from invoicing.storage import location

    print(f"{'start':14s} {'':9s}   peak {_peak_mib():7,.0f} MiB   now {_now_mib():7,.0f} MiB",
          flush=True)
    source = location(input_dir) if "://" in input_dir else Path(input_dir)
    measure_pricing(source, month)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="a month folder, or s3://bucket/prefix")
    parser.add_argument("--month", default="2026-10")
    parser.add_argument("--live", action="store_true",
                        help="return freed pages at once, to see the memory actually held")
    args = parser.parse_args(argv)
    if args.live and os.environ.get("_RJEM_MALLOC_CONF") != LIVE:
        # jemalloc reads its configuration once, when the process starts.
        env = {**os.environ, "_RJEM_MALLOC_CONF": LIVE}
        return subprocess.call([sys.executable, "-m", "benchmarks.stage_memory", "--input",
                                args.input, "--month", args.month], env=env)
    report(args.input, args.month)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
