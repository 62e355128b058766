"""Nothing of the batch is left in TMPDIR: not by a command, not by its render workers,
not by a command stopped with SIGTERM; what a SIGKILLed process left is removed by the
next one (core/scratch.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from invoicing.core import scratch
from tests.builders import INCOMPLETE_OK, MonthBuilder, d

REPO = Path(__file__).resolve().parents[2]


def month(folder: Path, dau: int, customers: int = 2) -> Path:
    b = MonthBuilder()
    for c in range(1, customers + 1):
        b.customer(f"c{c}", country="KR" if c % 2 else "US",
                   locale="ko_KR" if c % 2 else "en_US")
        b.app(c, f"c{c}", plan="flagship")
        b.day(c, d(1), dau=dau if c == 1 else 100)
    return b.write(folder)


@pytest.fixture
def tmp() -> Iterator[Path]:
    """An empty TMPDIR with a short path: the forkserver's socket must fit in AF_UNIX's
    108 bytes, which a folder under pytest's tmp_path does not."""
    folder = Path(tempfile.mkdtemp())
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def invoicing(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.run([sys.executable, "-m", "invoicing.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_no_command_leaves_anything_in_tmpdir(tmp_path: Path, tmp: Path) -> None:
    first, fixed = month(tmp_path / "in", 15_000), month(tmp_path / "fixed", 25_000)
    out, drafts = tmp_path / "out", tmp_path / "drafts"
    where = ["--month", "2026-10", "--out", str(out)]
    commands = [
        # Two render workers: the pool's processes clean up too.
        ["run", "--input", str(first), *where, "--workers", "2", INCOMPLETE_OK],
        ["preview", "--month", "2026-10", "--input", str(first), "--drafts", str(drafts),
         "--workers", "1", INCOMPLETE_OK],
        ["reissue", "--input", str(fixed), *where, "--reason", "fixed", "--workers", "1",
         INCOMPLETE_OK],
        ["verify", "--input", str(fixed), *where],
    ]
    for args in commands:
        result = invoicing(tmp, *args)
        assert result.returncode == 0, (args[0], result.stderr)
        assert sorted(p.name for p in tmp.iterdir()) == [], args[0]
    assert len(list(drafts.glob("*.pdf"))) == 2
    assert len(list((out / "2026-10/revisions/001").rglob("*.pdf"))) == 2  # credit + new


def test_sigterm_cleans_up_and_a_killed_processs_folder_goes_with_the_next_run(
        tmp_path: Path, tmp: Path) -> None:
    # What a SIGKILLed renderer left: its PID is gone. A live process's folder stays.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    left = tmp / f"{scratch.PREFIX}{int(gone.stdout)}-fonts-abc"
    left.mkdir()
    (left / "font").write_bytes(b"\0" * 1000)
    alive = tmp / f"{scratch.PREFIX}{os.getpid()}-fonts-xyz"
    alive.mkdir()
    inputs = month(tmp_path / "in", 15_000, customers=40)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoicing.cli", "run", "--month", "2026-10", "--input",
         str(inputs), "--out", str(out), "--workers", "2", INCOMPLETE_OK],
        cwd=REPO, env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        # Stopped once a render worker has its fonts folder (and the old one is swept).
        deadline = time.monotonic() + 60
        while not [p for p in tmp.glob(f"{scratch.PREFIX}*-fonts-*") if p != alive] \
                or left.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no renderer started"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The render workers end with the pool, or within a second of the command.
    deadline = time.monotonic() + 10
    while sorted(p.name for p in tmp.iterdir()) != [alive.name]:
        assert time.monotonic() < deadline, sorted(p.name for p in tmp.iterdir())
        time.sleep(0.05)
    assert not (out / "2026-10").exists()
    assert not list(out.glob(".2026-10.tmp-*"))


def test_sweep_removes_only_folders_whose_owner_is_gone(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = tmp_path / f"{scratch.PREFIX}{int(gone.stdout)}-fonts-1"
    live = tmp_path / f"{scratch.PREFIX}{os.getpid()}-fonts-2"
    other = tmp_path / "weasyprint-not-ours"
    for folder in (dead, live, other):
        folder.mkdir()
    assert scratch.sweep(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


@pytest.mark.parametrize("kind", ["fonts"])
def test_a_folder_is_removed_by_remove_and_named_after_its_process(kind: str) -> None:
    folder = scratch.make_folder(kind)
    assert folder.name.startswith(f"{scratch.PREFIX}{os.getpid()}-{kind}-")
    assert folder.is_dir()
    scratch.remove(folder)
    assert not folder.exists()
