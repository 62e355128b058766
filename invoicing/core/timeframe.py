"""The billing month and the dates derived from it (SPEC §1: postpaid by calendar month)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Month:
    """A calendar month being billed.

    Attributes:
      year, month: the month (``2026``, ``10``).
    """

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse exactly ``YYYY-MM`` (``2026-1`` or ``2026-10-01`` are refused: a cron line
        with a typo must not bill another month); raise ValueError otherwise."""
        match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", text)
        if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
            raise ValueError(f"{text!r} is not a month in the form YYYY-MM (for example 2026-10)")
        if int(match[1]) > 9998:  # its invoices are dated in the next month, which must exist
            raise ValueError(f"{text!r} is beyond the last month that can be billed (9998-12)")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def previous(cls, today: date) -> Month:
        """The month before `today`'s: what a cron job on the 1st bills."""
        last = today.replace(day=1) - timedelta(days=1)
        return cls(last.year, last.month)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def compact(self) -> str:
        return f"{self.year:04d}{self.month:02d}"

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]

    @property
    def start(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        return date(self.year, self.month, self.days)

    @property
    def issue_date(self) -> date:
        """The invoice date: the 1st of the next month."""
        return self.end + timedelta(days=1)

    @property
    def due_date(self) -> date:
        """Collection runs on the 1st-3rd of the next month; the due date is the 3rd."""
        return self.issue_date.replace(day=3)
