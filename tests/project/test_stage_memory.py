"""`benchmarks.stage_memory`, the probe BENCHMARKS.md's per-stage figures come from, runs
on the sample month and reports every stage of the pricing path in order."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_stage_probe_reports_each_stage_in_order() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.stage_memory", "--input", "sample_data/2026-10",
         "--live"], cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "start", "load", "validate", "pricing", "entitlements", "pricing", "assemble", "write"]
    row = re.compile(r"^\w+ +\d+\.\d\d s   peak +[\d,]+ MiB   now +[\d,]+ MiB$")
    assert all(row.match(line) for line in lines[1:]), lines
