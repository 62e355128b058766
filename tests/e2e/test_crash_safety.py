"""A crash leaves either the previous complete output or none (SPEC §4).

`invoicing run` is started as a real process on a month of 30 customers (rendering
their PDFs takes a few seconds) and killed with SIGKILL, which no handler can
intercept, at several points: while starting up, while computing, while rendering
(as soon as a PDF appears in the ``.2026-10.tmp-*`` staging folder, and again several
PDFs later) and while publishing (best effort: as soon as a Parquet file appears in
staging; if the run wins the race, the check still applies). After each kill the
output root must hold no ``2026-10`` folder at all or a complete one; the next normal
run must succeed and leave no staging folder behind.

A complete month: ``manifest.json`` present, and the files in the folder exactly the
manifest's ``outputs`` plus the manifest, each with the SHA-256 the manifest records.

The same kills during a re-run over an already published month (identical inputs,
and changed inputs that are refused) must leave the published month byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from invoicing.core.errors import ExitCode
from tests.builders import MonthBuilder, d

REPO = Path(__file__).resolve().parents[2]
MONTH = "2026-10"
CUSTOMERS = 20


def big_month(folder: Path, changed: bool = False) -> Path:
    b = MonthBuilder()
    for c in range(1, CUSTOMERS + 1):
        customer = f"c{c:03d}"
        korean = c % 3 == 0
        b.customer(customer, country="KR" if korean else "US",
                   locale="ko_KR" if korean else "en_US")
        app = 1000 + c
        b.app(app, customer, plan=("pro", "flagship")[c % 2])
        for day in range(1, 32):
            b.day(app, d(day), dau=9000 + (37 * c * day) % 4000, groups=1000 + day)
    if changed:
        b.usage[0] = (1001, d(1), 9999, 1001, None)
    return b.write(folder, usage_files=3)


def command(input_dir: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "invoicing.cli", "run", "--month", MONTH,
            "--input", str(input_dir), "--out", str(out)]


Condition = Callable[[set[Path]], bool]


def staged(out: Path, pattern: str, stale: set[Path] | None = None) -> list[Path]:
    """Files matching `pattern` in staging folders, except those of earlier killed runs."""
    return [p for folder in out.glob(f".{MONTH}.tmp-*") if folder not in (stale or set())
            for p in folder.glob(pattern)]


def run_and_kill(input_dir: Path, out: Path, when: Condition, timeout: float = 30) -> bool:
    """Start a run, SIGKILL it as soon as `when(stale staging folders)` holds; True if it
    was still running when killed."""
    stale = set(out.glob(f".{MONTH}.tmp-*"))
    start = time.monotonic()
    proc = subprocess.Popen(command(input_dir, out), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and not when(stale):
            if time.monotonic() - start > timeout:
                raise AssertionError("the kill condition never held")
            time.sleep(0.005)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        return killed
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def after(seconds: float) -> Condition:
    start: list[float] = []

    def due(stale: set[Path]) -> bool:
        if not start:
            start.append(time.monotonic())
        return time.monotonic() - start[0] >= seconds

    return due


def pdfs_staged(count: int, out: Path) -> Condition:
    return lambda stale: len(staged(out, "invoices/*.pdf", stale)) >= count


def parquet_staged(out: Path) -> Condition:
    return lambda stale: bool(staged(out, "*.parquet", stale))


def month_files(out: Path) -> dict[str, bytes]:
    month = out / MONTH
    return {p.relative_to(month).as_posix(): p.read_bytes()
            for p in sorted(month.rglob("*")) if p.is_file()}


def assert_none_or_complete(out: Path) -> bool:
    """The month is absent or complete; True if complete."""
    if not (out / MONTH).exists():
        return False
    files = month_files(out)
    assert "manifest.json" in files, sorted(files)
    outputs = json.loads(files["manifest.json"])["outputs"]
    assert set(files) == {*outputs, "manifest.json"}
    for name, digest in outputs.items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name
    return True


def run_normally(input_dir: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(input_dir, out), cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_month(tmp_path_factory.mktemp("crash") / "in")


@pytest.fixture(scope="module")
def published(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("published") / "out"
    done = run_normally(inputs, out)
    assert done.returncode == 0, done.stderr
    assert assert_none_or_complete(out)
    return out


def test_kill_at_any_point_leaves_nothing_then_the_next_run_succeeds(inputs: Path,
                                                                      tmp_path: Path) -> None:
    out = tmp_path / "out"
    kill_points: list[tuple[str, Condition]] = [
        ("after 0.3 s", after(0.3)),
        ("after 1 s", after(1.0)),
        ("first PDF staged", pdfs_staged(1, out)),
        ("ten PDFs staged", pdfs_staged(10, out)),
        ("publish", parquet_staged(out)),
    ]
    for name, when in kill_points:
        killed = run_and_kill(inputs, out, when)
        if name != "publish":  # the others cannot lose the race against a 20-PDF run
            assert killed, f"the run finished before the kill point {name!r}"
        complete = assert_none_or_complete(out)
        assert complete == (not killed), name
        if complete:  # the publish race was lost: start over from nothing
            break
    else:
        # A render kill leaves its staging folder behind; the next run removes it.
        assert staged(out, "invoices")
    done = run_normally(inputs, out)
    assert done.returncode == 0, done.stderr
    assert assert_none_or_complete(out)
    assert not list(out.glob(f".{MONTH}.tmp-*"))
    assert len(month_files(out)) == CUSTOMERS + 5  # PDFs, 4 Parquet files, the manifest


@pytest.mark.parametrize("changed", [False, True], ids=["identical-inputs", "changed-inputs"])
def test_kill_during_rerun_leaves_the_published_month_identical(
    changed: bool, inputs: Path, published: Path, tmp_path: Path
) -> None:
    rerun_inputs = big_month(tmp_path / "in", changed=True) if changed else inputs
    before = month_files(published)
    kills = 0
    for seconds in (0.1, 0.2, 0.25, 0.3, 0.4):
        kills += run_and_kill(rerun_inputs, published, after(seconds))
        assert month_files(published) == before, seconds
        assert not list(published.glob(f".{MONTH}.tmp-*"))
    assert kills >= 2
    done = run_normally(rerun_inputs, published)
    expected = ExitCode.ALREADY_PUBLISHED if changed else ExitCode.OK
    assert done.returncode == expected, done.stderr
    assert month_files(published) == before
