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


def _closest(name: str, present: Sequence[str], cutoff: float) -> str | None:
    folded = {fold(p): p for p in present}
    if fold(name) in folded:
        return folded[fold(name)]
    close = difflib.get_close_matches(name, list(present), n=1, cutoff=cutoff)
    return close[0] if close else None


def misspelled_optional(label: str, name: str, present: Sequence[str]) -> InputError | None:
    """An optional column `name` is absent but the file has a column that looks like it
    (``LIVE_GROUP_COUNT``, ``live_group_cont``): that column would be ignored and the
    optional one taken as empty, so it is refused; None when nothing looks like it."""
    if name in present:
        return None
    close = _closest(name, present, cutoff=0.85)
    if close is None:
        return None
    return InputError(Source(label, close), f"looks like the optional column {name!r}, which "
                      "is missing; rename it (a column of another name is ignored)")


def missing_column(label: str, name: str, present: Sequence[str]) -> InputError:
    """`name` is not among `present`: say what the file has, and the likely slip."""
    close = _closest(name, present, cutoff=0.75)
    hint = f"; did you mean {close!r}? (names are matched exactly)" if close else ""
    return InputError(Source(label, name), f"missing column (the file has: "
                      f"{', '.join(present) or 'no columns'}){hint}")
