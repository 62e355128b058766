"""Where a month's input files are: the tables in ``--input`` and every usage file under
``usage/``.

No file is skipped silently (SPEC §8). Every regular file under ``usage/`` is either read
or refused with its name:

* ``.parquet``, ``.csv`` and gzip-compressed ``.csv.gz`` are read, whatever the case of
  the suffix (``part-0.PARQUET``);
* a file or folder whose name starts with ``_`` or ``.`` (Spark's ``_SUCCESS``, Hadoop's
  ``.crc`` files, ``.DS_Store``) is ignored by that one documented rule, and listed in
  the manifest as ignored;
* anything else (``notes.txt``, ``part-0.json``, a broken symbolic link, a pipe) is an
  input error naming the file.

Symbolic links to folders are followed; a folder reached twice (a link back to a parent,
or two links to one folder) is an input error rather than a loop or a double count.
Object storage has no links: its keys are listed as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from invoicing.core.errors import ErrorLog, InputError, Source
from invoicing.storage import is_remote, relative_name

#: The usage and table formats, by lower-cased suffix, longest first.
KINDS: tuple[tuple[str, str], ...] = (
    (".csv.gz", "csv.gz"),
    (".parquet", "parquet"),
    (".csv", "csv"),
)
#: Names starting with one of these are ignored (and listed in the manifest).
IGNORED_PREFIXES = ("_", ".")


def kind_of(name: str) -> str | None:
    """``parquet``, ``csv`` or ``csv.gz`` by the file's suffix in any case; None otherwise."""
    lowered = name.lower()
    for suffix, kind in KINDS:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return kind
    return None


def label(path: Path, input_dir: Path) -> str:
    """How the manifest and errors name an input: relative to ``--input``, wherever it is.

    A local path is taken as written (not resolved), so a file reached through a linked
    folder is named by the link, as the user sees it.
    """
    if is_remote(path):
        return relative_name(path, input_dir) or str(path)
    return path.relative_to(input_dir).as_posix()


def find_table(input_dir: Path, name: str) -> Path:
    """`<name>.parquet`, `<name>.csv` or `<name>.csv.gz` (suffix in any case) in the input
    folder; exactly one must exist."""
    wanted = {f"{name}{suffix}" for suffix, _ in KINDS}
    if is_remote(input_dir):
        candidates = [input_dir / n for n in sorted(wanted)]
        found = [p for p in candidates if p.is_file()]
    else:
        found = [p for p in input_dir.iterdir() if p.name.lower() in wanted and p.is_file()]
    # Parquet first, then CSV, then compressed CSV: the order of KINDS' formats.
    found.sort(key=lambda p: (("parquet", "csv", "csv.gz").index(kind_of(p.name) or "csv"),
                              p.name))
    if not found:
        raise InputError(Source(f"{name}.parquet"), f"missing: neither {name}.parquet nor "
                         f"{name}.csv is in {input_dir}")
    if len(found) > 1:
        names = [p.name for p in found]
        listed = (f"both {names[0]} and {names[1]}" if len(names) == 2
                  else f"{', '.join(names[:-1])} and {names[-1]} all")
        raise InputError(Source(names[-1]), f"{listed} exist; keep only one")
    return found[0]


@dataclass(frozen=True)
class UsageFiles:
    """The files under ``usage/``.

    Attributes:
      read: the files to read, sorted by label.
      ignored: labels of the files and folders ignored by the ``_``/``.`` rule, sorted
        (a folder ends with ``/``; what is inside it is not listed).
    """

    read: tuple[Path, ...]
    ignored: tuple[str, ...]


def find_usage_files(input_dir: Path, errors: ErrorLog) -> UsageFiles:
    """Every usage file under ``<input>/usage``; a file that is neither read nor ignored
    is recorded in `errors`."""
    usage_dir = input_dir / "usage"
    if not usage_dir.is_dir():
        raise InputError(Source("usage/"), f"missing: no usage folder in {input_dir}")
    read: list[Path] = []
    ignored: list[str] = []
    if is_remote(usage_dir):
        _list_remote(usage_dir, input_dir, read, ignored, errors)
    else:
        _walk_local(usage_dir, input_dir, read, ignored, errors, {})
    if not read and not errors:
        raise InputError(Source("usage/"), "no usage files (*.parquet, *.csv or *.csv.gz) "
                         "found; an export that produced nothing is refused rather than "
                         "billed as idle")
    return UsageFiles(tuple(sorted(read, key=lambda p: label(p, input_dir))),
                      tuple(sorted(ignored)))


def _refuse(name: str, errors: ErrorLog, shown: str) -> None:
    errors.add(Source(shown), f"not a usage file: only .parquet, .csv and .csv.gz files are "
               f"read under usage/ (suffixes in any case), and names starting with '_' or '.' "
               f"are ignored; move {name!r} out of the usage folder")


def _walk_local(folder: Path, input_dir: Path, read: list[Path], ignored: list[str],
                errors: ErrorLog, seen: dict[tuple[int, int], str]) -> None:
    """Walk `folder`, following linked folders; a folder reached twice is an error."""
    where = label(folder, input_dir)
    try:
        status = folder.stat()
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        errors.add(Source(f"{where}/"), f"cannot read the folder ({exc.strerror or exc})")
        return
    key = (status.st_dev, status.st_ino)
    if key in seen:
        errors.add(Source(f"{where}/"), f"the same folder as {seen[key]}/ (a symbolic link "
                   "loop or a second link to one folder): its files would be read twice")
        return
    seen[key] = where
    for entry in entries:
        path = folder / entry.name
        shown = label(path, input_dir)
        if entry.name.startswith(IGNORED_PREFIXES):
            ignored.append(shown + ("/" if entry.is_dir() else ""))
        elif entry.is_dir():  # follows a link to a folder
            _walk_local(path, input_dir, read, ignored, errors, seen)
        elif entry.is_symlink() and not entry.is_file():
            errors.add(Source(shown), f"a broken symbolic link (to {os.readlink(path)!r})")
        elif not entry.is_file():
            errors.add(Source(shown), "not a regular file (a pipe, socket or device)")
        elif kind_of(entry.name) is None:
            _refuse(entry.name, errors, shown)
        else:
            read.append(path)


def _list_remote(usage_dir: Path, input_dir: Path, read: list[Path], ignored: list[str],
                 errors: ErrorLog) -> None:
    """The same rules over an object-storage listing (no links there)."""
    dropped: set[str] = set()
    for path in sorted(usage_dir.rglob("*"), key=str):
        shown = label(path, input_dir)
        parts = (relative_name(path, usage_dir) or path.name).split("/")
        hidden = next((i for i, p in enumerate(parts) if p.startswith(IGNORED_PREFIXES)), None)
        if hidden is not None:
            top = "/".join(shown.split("/")[:len(shown.split("/")) - len(parts) + hidden + 1])
            if hidden < len(parts) - 1:
                top += "/"
            if top not in dropped:
                dropped.add(top)
                ignored.append(top)
            continue
        if not path.is_file():
            continue
        if kind_of(path.name) is None:
            _refuse(path.name, errors, shown)
        else:
            read.append(path)
