"""Checks of command-line values that Click's own types cannot express; each refusal is
one line with the exit code of a bad command line (2), before anything is read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from invoicing import storage
from invoicing.core.errors import UsageError
from invoicing.core.timeframe import Month


def outside_input(input_dir: Path, out: Path | None, option: str) -> None:
    """Refuse an output folder inside the input folder: a later run would read what was
    published there as input (exit 2)."""
    if out is None:
        return
    if storage.is_remote(input_dir) or storage.is_remote(out):
        inside = str(out).rstrip("/").startswith(str(input_dir).rstrip("/") + "/") or \
            str(out).rstrip("/") == str(input_dir).rstrip("/")
    else:
        inside = out.resolve().is_relative_to(input_dir.resolve())
    if inside:
        raise UsageError(f"{option} {out} is inside --input {input_dir}: what is written there "
                         "would be read back as input; choose a folder outside it")


#: An issue date more than this long after the billed month is refused as a slip.
ISSUE_DATE_LIMIT = timedelta(days=3 * 366)


def checked_issue_date(month: Month, value: datetime | None) -> date | None:
    """``--issue-date``: not before the 1st after the billed month (a document for October
    cannot be dated in October), not in the future, and not years after the month."""
    if value is None:
        return None
    day = value.date()
    today = datetime.now(UTC).date()
    if day < month.issue_date:
        raise UsageError(f"--issue-date {day} is before the end of the billed month "
                         f"{month.label}: documents for it are dated {month.issue_date} or later")
    if day > today + timedelta(days=1):  # a day's grace for the time zones east of UTC
        raise UsageError(f"--issue-date {day} is in the future (today is {today} UTC); a "
                         "document is dated when it is issued")
    if day - month.end > ISSUE_DATE_LIMIT:
        raise UsageError(f"--issue-date {day} is more than three years after the billed month "
                         f"{month.label}; check the date (or the --month)")
    return day
