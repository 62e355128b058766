"""`make setup` on a fresh Debian: the Python version is checked with a clear message, and
a `python3 -m venv` that fails for want of python3.X-venv installs it and tries again."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def scripts_with_stub_installer(tmp_path: Path) -> Path:
    """A copy of make-venv.sh beside an install-system-deps.sh that only records its
    arguments (the tests do not run apt-get)."""
    folder = tmp_path / "scripts"
    folder.mkdir()
    shutil.copy(SCRIPTS / "make-venv.sh", folder)
    stub = folder / "install-system-deps.sh"
    stub.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "installed"}\n')
    stub.chmod(0o755)
    return folder / "make-venv.sh"


def fake_python(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_an_old_python_is_refused_with_a_clear_line(tmp_path: Path) -> None:
    script = scripts_with_stub_installer(tmp_path)
    old = fake_python(tmp_path, 'echo "Python 3.9.2"; exit 1')
    result = subprocess.run([str(script), str(old), str(tmp_path / "venv")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == ("error: Python 3.9.2 is too old: invoicing needs Python 3.11 or "
                             "newer (run make with PYTHON=/path/to/python3.11 or newer)\n")
    assert not (tmp_path / "venv").exists()


def test_a_missing_venv_package_is_installed_and_the_venv_made(tmp_path: Path) -> None:
    script = scripts_with_stub_installer(tmp_path)
    marker = tmp_path / "failed-once"
    python = fake_python(tmp_path, f"""\
if [ "$1" = "-m" ] && [ "$2" = "venv" ] && [ ! -e {marker} ]; then
  touch {marker}; echo "ensurepip is not available" >&2; exit 1
fi
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then  # as the real one would, minus pip (fast)
  exec {sys.executable} -m venv --without-pip "$3" "$4"
fi
exec {sys.executable} "$@\"""")
    result = subprocess.run([str(script), str(python), str(tmp_path / "venv")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert result.stdout.endswith(f"failed (ensurepip is not available); installing "
                                  f"python{version}-venv\n")
    assert (tmp_path / "installed").read_text() == f"python{version}-venv\n"
    assert (tmp_path / "venv" / "bin" / "python").exists()
