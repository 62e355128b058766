"""Write the corrected October export that the README's reprocessing walk-through uses.

The story: after October was invoiced, the US usage collector reported that on
2026-10-01 it had counted the logins of only one of its two login regions for app
1400000202 ("Bluebird Events", customer C1002). The corrected daily active users of
that day are 45,000 instead of 6,303. Everything else in the export is unchanged.

    python sample_data/correct_export.py                 # writes sample_data/2026-10-fixed/
    python sample_data/correct_export.py --out DIR       # writes elsewhere

The folder is a copy of ``sample_data/2026-10`` with that one value changed in
``usage/region=us/2026-10-a.parquet`` (same schema, same row order), so ``diff`` shows
exactly one changed input and one changed charge. It is generated rather than committed:
it follows the sample month whenever ``generate.py`` changes.
"""

from __future__ import annotations

import argparse
import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "2026-10"
DEFAULT_OUT = HERE / "2026-10-fixed"
CORRECTED_FILE = "usage/region=us/2026-10-a.parquet"
APP, DAY, WRONG_DAU, CORRECT_DAU = 1400000202, date(2026, 10, 1), 6_303, 45_000


def correct(out: Path) -> None:
    """Copy the sample month to `out` and apply the one correction."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(SOURCE, out)
    path = out / CORRECTED_FILE
    table = pq.read_table(path)
    row = pc.and_(pc.equal(table["sdk_app_id"], APP), pc.equal(table["date"], pa.scalar(DAY)))
    matches = pc.sum(row).as_py() or 0
    old = pc.max(pc.filter(table["dau"], row)).as_py() if matches else None
    if matches != 1 or old != WRONG_DAU:
        raise SystemExit(f"{path}: expected one row of app {APP} on {DAY} with dau "
                         f"{WRONG_DAU}, found {matches} (dau {old}); was the sample regenerated?")
    dau = pc.if_else(row, pa.scalar(CORRECT_DAU, pa.int64()), table["dau"])
    table = table.set_column(table.schema.get_field_index("dau"), "dau", dau)
    pq.write_table(table, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder to write (replaced if it exists)")
    args = parser.parse_args()
    correct(args.out)
    out = args.out.resolve()
    shown = out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out
    print(f"wrote {shown}: app {APP} on {DAY.isoformat()}, dau {WRONG_DAU} -> {CORRECT_DAU} "
          f"({CORRECTED_FILE})")


if __name__ == "__main__":
    main()
