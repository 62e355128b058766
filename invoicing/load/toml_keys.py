"""Typed, closed access to the tables of a TOML file, naming the key on every error.

The price book is read through `KeyReader`: a bad key is recorded in a shared `ErrorLog`
and ends only the `attempt` that read it, so every bad key of the file is reported in
one run; `closed` refuses every key the schema does not define, with the known key it
is closest to.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

from invoicing.core.errors import ErrorLog, Source
from invoicing.core.money import to_decimal

T = TypeVar("T")

#: The largest price the batch accepts (exclusive): every product of a price and a block
#: count up to `MAX_QUANTITY` then stays exact in the pricing scale (`money.WORK`).
MAX_PRICE = Decimal(10) ** 9
#: Quotas, blocks and tiers up to this value are accepted (the usage metrics' limit too).
MAX_QUANTITY = 10**15
#: Price-book figures keep at most this many decimals: the scale of `money.MONEY`.
MAX_DECIMALS = 6


def suggestion(key: str, known: tuple[str, ...] | list[str]) -> str | None:
    """The known key closest to `key`: a case-insensitive match first, then difflib's."""
    folded = {k.casefold(): k for k in known}
    if key.casefold() in folded:
        return folded[key.casefold()]
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_key_message(key: str, known: tuple[str, ...] | list[str], what: str = "key") -> str:
    """``unknown key; did you mean 'y'?`` with the known key closest to `key`
    (a case-insensitive match first, then difflib's), or the list of known keys."""
    close = suggestion(key, known)
    hint = f"; did you mean {close!r}?" if close else f" (known: {', '.join(known)})"
    return f"unknown {what}{hint}"


class KeyFailed(Exception):
    """One key of a version is bad (already recorded); the reader skips to the next."""


class KeyReader:
    """Typed access to one [[version]] table that names the key on every error.

    A bad key is recorded in the shared `ErrorLog` and ends only the `attempt` that
    read it, so that every bad key of the file is reported in one run.
    """

    def __init__(self, label: str, index: int, table: Any, errors: ErrorLog):
        self.label = label
        self.index = index
        self.errors = errors
        self.failed = False
        self.table: dict[str, Any] = table if isinstance(table, dict) else {}
        if not isinstance(table, dict):
            self.fail("version", "must be a table")

    def fail(self, key: str, message: str) -> NoReturn:
        self.failed = True
        self.errors.add(Source(self.label), f"version #{self.index}, key {key!r}: {message}")
        raise KeyFailed

    def attempt(self, read: Callable[[], T]) -> T | None:
        """`read()`, or None when it failed (the error is recorded)."""
        try:
            return read()
        except KeyFailed:
            return None

    _MISSING = object()

    def _lookup(self, key: str) -> Any:
        """The value at a dotted key, or `_MISSING`."""
        node: Any = self.table
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return self._MISSING
            node = node[part]
        return node

    def has(self, key: str) -> bool:
        return self._lookup(key) is not self._MISSING

    def get(self, key: str) -> Any:
        value = self._lookup(key)
        if value is self._MISSING:
            self.fail(key, "missing")
        return value

    def closed(self, key: str, table: dict[str, Any], known: tuple[str, ...],
               what: str = "key") -> None:
        """Record every key of `table` (at dotted `key`, "" for the version) not in `known`."""
        for name in table:
            if name not in known:
                dotted = f"{key}.{name}" if key else name
                self.attempt(functools.partial(self.fail, dotted,
                                               unknown_key_message(name, known, what)))

    def table_at(self, key: str, optional: bool = False) -> dict[str, Any]:
        if optional and not self.has(key):
            return {}
        value = self.get(key)
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
        return value

    def decimal(self, key: str, value: Any = None, *, limit: Decimal = MAX_PRICE) -> Decimal:
        """A figure written as a quoted decimal, kept exactly or refused (never rounded)."""
        value = self.get(key) if value is None else value
        if not isinstance(value, str | int) or isinstance(value, bool):
            self.fail(key, f"must be a quoted decimal string such as \"399.00\", got {value!r}")
        try:
            amount = to_decimal(value, key)
        except ValueError as exc:
            self.fail(key, str(exc))
        if amount < 0:
            self.fail(key, f"must not be negative, got {value!r}")
        exponent = amount.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
            self.fail(key, f"{value!r} has more than {MAX_DECIMALS} decimals; the batch keeps "
                      "price-book figures exactly and does not round them")
        if amount >= limit:
            self.fail(key, f"{value!r} is too large (the batch accepts figures below {limit:,})")
        return amount

    def positive_int(self, key: str, allow_zero: bool = False, value: Any = None) -> int:
        value = self.get(key) if value is None else value
        lowest = 0 if allow_zero else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            self.fail(key, f"must be a {'non-negative' if allow_zero else 'positive'} integer")
        if value > MAX_QUANTITY:
            self.fail(key, f"{value} is too large (the batch accepts up to {MAX_QUANTITY:,})")
        return int(value)
