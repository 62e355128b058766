"""Progress output and `--workers`: what a person or a log file sees, never timings."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from invoicing.cli import main
from invoicing.render.progress import Progress
from tests.builders import INCOMPLETE_OK, MonthBuilder, d


def five_customers(root: Path) -> Path:
    b = MonthBuilder()
    for i in range(1, 6):
        b.customer(f"c{i}").app(i, f"c{i}").day(i, d(i), dau=9_000 + i)
    return b.write(root / "in")


def run(root: Path, out: str, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["run", "--month", "2026-10", "--input", str(root / "in"),
                                       "--out", str(root / out), INCOMPLETE_OK, *extra])
    return result.exit_code, result.stdout, result.stderr


def hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_log_lines_when_not_a_terminal(tmp_path: Path) -> None:
    five_customers(tmp_path)
    code, stdout, stderr = run(tmp_path, "out", "--workers", "1")
    assert code == 0, stdout + stderr
    assert stderr.splitlines() == [f"rendering: {i}/5 ({20 * i}%)" for i in range(1, 6)]
    assert stdout.startswith("2026-10: published")


def test_workers_give_the_same_bytes_as_one_process(tmp_path: Path) -> None:
    five_customers(tmp_path)
    one = run(tmp_path, "one", "--workers", "1")
    two = run(tmp_path, "two", "--workers", "2")
    assert (one[0], two[0]) == (0, 0)
    assert two[2] == one[2]  # the same progress lines, in order
    assert hashes(tmp_path / "one/2026-10") == hashes(tmp_path / "two/2026-10")


def test_workers_must_be_positive(tmp_path: Path) -> None:
    five_customers(tmp_path)
    code, _, stderr = run(tmp_path, "out", "--workers", "0")
    assert code == 2
    assert "Invalid value for '--workers': 0 is not in the range x>=1." in stderr


def test_about_ten_lines_for_a_long_run() -> None:
    stream = io.StringIO()
    progress = Progress("rendering", 95, stream=stream, tty=False)
    for _ in range(95):
        progress.advance()
    progress.close()
    assert stream.getvalue().splitlines() == [
        "rendering: 10/95 (10%)", "rendering: 20/95 (21%)", "rendering: 30/95 (31%)",
        "rendering: 40/95 (42%)", "rendering: 50/95 (52%)", "rendering: 60/95 (63%)",
        "rendering: 70/95 (73%)", "rendering: 80/95 (84%)", "rendering: 90/95 (94%)",
        "rendering: 95/95 (100%)",
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal() -> None:
    stream = Terminal()
    progress = Progress("rendering", 4, stream=stream)
    for _ in range(4):
        progress.advance()
    progress.close()
    text = stream.getvalue()
    assert "rendering" in text and "4/4" in text and "#" in text
    assert "(100%)" not in text  # the bar, not the log lines


def test_workers_come_from_the_environment(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    five_customers(tmp_path)
    monkeypatch.setenv("INVOICING_WORKERS", "0")
    code, _, stderr = run(tmp_path, "out")
    assert code == 2
    assert "Invalid value for '--workers': 0 is not in the range x>=1." in stderr
