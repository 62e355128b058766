"""Suite-wide settings.

Every command the tests run renders on one process unless a test asks for more with
``--workers`` (which overrides the variable): a pool of renderers per CLI call costs a
second or more of start-up each, and only tests/render/test_progress.py tests the pool itself.
Subprocesses the tests start inherit the variable. The slowest files start first.

The suite runs with its own TMPDIR and fails if anything but pytest's own folders is left
in it at the end (README, "Temporary files").
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

os.environ["INVOICING_WORKERS"] = "1"
# `make test` runs one test process per core; Polars' own thread pool in each would only
# make them compete for the same cores (set before anything imports Polars).
os.environ.setdefault("POLARS_MAX_THREADS", "1")

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "2026-10"


@pytest.fixture(scope="session")
def sample_published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The shipped sample month run once per test process: (``--out`` root, stdout, stderr).

    Read-only for the tests: one that changes files copies them first (`sample_copy`).
    The run id does not depend on where the inputs are stored, so a copy of the inputs
    elsewhere gives the same month.
    """
    from invoicing.cli import main

    out = tmp_path_factory.mktemp("sample") / "out"
    result = CliRunner().invoke(main, ["run", "--month", "2026-10", "--input", str(SAMPLE),
                                       "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    return out, result.stdout, result.stderr


def sample_copy(published: tuple[Path, str, str], root: Path) -> Path:
    """`root` with the sample inputs in ``in/`` and a copy of the published month in
    ``out/``, for a test that may change either."""
    shutil.copytree(SAMPLE, root / "in")
    shutil.copytree(published[0], root / "out")
    return root


#: The slowest test files, longest first. Starting the long ones first keeps one worker
#: from being left with a long file at the end while the other is idle (``make test``
#: hands out tests one by one, ``make test-e2e`` whole files, whose servers start once).
SLOW_FILES = (
    # tests/e2e/ (make test-e2e)
    "test_object_storage.py", "test_cluster.py", "test_tamper_s3.py", "test_crash_safety.py",
    "test_temp_files.py", "test_readme_walkthrough.py", "test_reference_comparison.py",
    "test_delivery_storage.py",
    # the rest (make test)
    "test_render.py", "test_tamper.py", "test_properties.py", "test_reprocessing.py",
    "test_bad_inputs.py", "test_einvoice.py", "test_delivery.py", "test_accounting.py",
    "test_render_engine.py", "test_audit.py", "test_slip_hunt.py", "test_input_slips.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOW_FILES.index(name) if name in SLOW_FILES else len(SLOW_FILES)

    items.sort(key=rank)  # stable: the order within a file is kept


#: The suite's TMPDIR, made by the main pytest process; xdist workers inherit it.
_SUITE_TMP: list[tuple[Path, str | None]] = []


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    folder = Path(tempfile.mkdtemp(prefix="invoicing-suite-"))
    _SUITE_TMP.append((folder, os.environ.get("TMPDIR")))
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = None  # recomputed from TMPDIR


def _left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("pytest-of-"))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the suite when a test, a command or a worker left files in TMPDIR."""
    if not _SUITE_TMP or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    from invoicing.core import scratch

    folder, _ = _SUITE_TMP[0]
    scratch.remove_all()  # this process's renderers, which atexit would remove next
    deadline = time.monotonic() + 15  # worker processes still exiting
    while _left_in(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _left_in(folder)
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"FAILED: the suite left {len(left)} file(s) in TMPDIR "
                                f"{folder}: {', '.join(left[:10])}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _SUITE_TMP or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    folder, previous = _SUITE_TMP.pop()
    shutil.rmtree(folder, ignore_errors=True)
    if previous is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = previous
    tempfile.tempdir = None
