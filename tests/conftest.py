"""Suite-wide settings.

Every command the tests run renders on one process unless a test asks for more with
``--workers`` (which overrides the variable): a pool of renderers per CLI call costs a
second or more of start-up each, and only tests/test_progress.py tests the pool itself.
Subprocesses the tests start inherit the variable. The slowest files start first.
"""

from __future__ import annotations

import os
import shutil
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


#: The slowest test files, longest first. Run on several workers (``make test``), each
#: file goes to one worker; starting the long ones first keeps one worker from being left
#: with a long file at the end while the other is idle.
SLOW_FILES = ("test_object_storage.py", "test_tamper.py", "test_tamper_s3.py",
              "test_crash_safety.py", "test_cluster.py", "test_properties.py",
              "test_reference_comparison.py", "test_render.py", "test_bad_inputs.py",
              "test_einvoice.py", "test_delivery.py", "test_delivery_storage.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOW_FILES.index(name) if name in SLOW_FILES else len(SLOW_FILES)

    items.sort(key=rank)  # stable: the order within a file is kept
