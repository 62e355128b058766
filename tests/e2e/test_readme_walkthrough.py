"""The README's reprocessing walk-through runs as written from a clone.

The repository's files (what `git ls-files` lists: nothing built, nothing from outside
the repository) are copied into an empty folder, and every ``$ command`` of the README's
"Reprocessing a month" block runs there, in order, as a subprocess. Each command's
standard output must be exactly the lines the README prints under it. ``.venv/bin/`` is
the virtualenv running the tests; ``PYTHONPATH`` points at the copy, so the package,
its templates and the sample data all come from the copy. A head's SHA-256 depends on the
software version and a reissue's time, so the README shows it as ``…``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Reprocessing a month"


def walkthrough() -> list[tuple[str, str]]:
    """(command, expected stdout) for each ``$`` line of the section's ``sh`` block."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    block = section[section.index("```sh\n") + len("```sh\n"):]
    block = block[:block.index("```\n")]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return [(cmd, "\n".join(out).strip("\n") + "\n") for cmd, out in steps]


def repository_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    return [name for name in listed if name and (REPO / name).is_file()]


def clone(into: Path) -> Path:
    for name in repository_files():
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, into / name)
    return into


def test_the_walkthrough_runs_as_written_from_a_clone(tmp_path: Path) -> None:
    root = clone(tmp_path / "clone")
    assert not (root / "sample_data/2026-10-fixed").exists()
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PYTHONPATH": str(root), "INVOICING_OPERATOR": "finance@example.com"}
    steps = walkthrough()
    assert [shlex.split(cmd)[:2] for cmd, _ in steps] == [
        [".venv/bin/python", "sample_data/correct_export.py"],
        [".venv/bin/invoicing", "run"],
        [".venv/bin/invoicing", "diff"],
        [".venv/bin/invoicing", "reissue"],
        [".venv/bin/invoicing", "verify"],
    ]
    for cmd, expected in steps:
        argv = shlex.split(cmd)
        argv[0] = str(venv_bin / argv[0].removeprefix(".venv/bin/"))
        done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, (cmd, done.stderr)
        stdout = re.sub(r"^(head: .* sha256 )[0-9a-f]{64}$", r"\1…", done.stdout, flags=re.M)
        assert stdout == expected, cmd
    # The walk-through stays in its own output folder: `make run`'s out/ is untouched.
    assert not (root / "out").exists()
    assert (root / "out-reprocess/2026-10/revisions/001").is_dir()
