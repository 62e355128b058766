"""Column names of an input table: no name twice, and a missing one named with its
likely slip.

A table whose header says ``country`` twice (or ``country`` and ``Country ``) is refused
(SPEC §8): whichever copy a reader picked, the other would be silently dropped. Column
names are matched exactly; a missing column is reported with the closest name the file
has (``COUNTRY`` for ``country``), so a slip reads as one.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from invoicing.core.errors import InputError, Source


def fold(name: str) -> str:
    """How two column names are compared for duplicates: trimmed, case-folded, no BOM."""
    return name.lstrip("\ufeff").strip().casefold()


def duplicate_columns(names: Sequence[str], label: str) -> list[InputError]:
    """One error per column name that appears more than once (after `fold`)."""
    first: dict[str, str] = {}
    errors: list[InputError] = []
    reported: set[str] = set()
    for name in names:
        key = fold(name)
        if key in first and key not in reported:
            reported.add(key)
            same = [repr(n) for n in names if fold(n) == key]
            errors.append(InputError(
                Source(label, first[key]),
                f"the column appears {len(same)} times ({', '.join(same)}); names are "
                "compared trimmed and case-insensitively, so keep one"))
        first.setdefault(key, name)
    return errors


def missing_column(label: str, name: str, present: Sequence[str]) -> InputError:
    """`name` is not among `present`: say what the file has, and the likely slip."""
    folded = {fold(p): p for p in present}
    close = ([folded[fold(name)]] if fold(name) in folded
             else difflib.get_close_matches(name, list(present), n=1, cutoff=0.75))
    hint = f"; did you mean {close[0]!r}? (names are matched exactly)" if close else ""
    return InputError(Source(label, name), f"missing column (the file has: "
                      f"{', '.join(present) or 'no columns'}){hint}")
