"""The price book (SPEC §5): versions per currency, chosen per month by R8.

The TOML is read with the standard library's `tomllib`, then checked key by key so
that a mistake is reported as one line naming the file and the key. Every price is
a quoted decimal string (a TOML float would already have lost exactness).
"""

from __future__ import annotations

import functools
import hashlib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol, TypeVar

import polars as pl

from invoicing.core.catalogue import ADDONS, ON_OFF_ADDONS, PLANS
from invoicing.core.errors import ErrorLog, InputError, Source
from invoicing.core.money import MONEY, RATE, minor_units, to_decimal

T = TypeVar("T")

PlanFeePolicy = Literal["month_start", "prorate_daily"]
POLICIES: tuple[PlanFeePolicy, ...] = ("month_start", "prorate_daily")


#: The overage metrics (R2, R3): each price-book section names its pricing model.
OVERAGE_SECTIONS = ("dau_overage", "group_overage")
#: The model of a section without a ``model`` key: whole blocks at one price (R2).
DEFAULT_MODEL = "blocks"


@dataclass(frozen=True)
class MetricPricing:
    """How one version prices one overage metric.

    Attributes:
      model: the pricing model's name (``blocks``, ``graduated``; see
        `invoicing.pricing.models`).
      terms: the model's own record of its price-book section (what its ``read_terms``
        returned).
    """

    model: str
    terms: Any


class MetricModel(Protocol):
    """What the reader needs of a pricing model. The models live in
    `invoicing.pricing.models`, a later stage: the caller hands them in (`load_pricebook`)."""

    keys: frozenset[str]

    def read_terms(self, r: MetricReader, section: str) -> Any: ...


@dataclass(frozen=True)
class PriceBookVersion:
    """One version of the price book, for one currency.

    Attributes:
      version_id: ``<currency>@<effective_from>``, printed on invoices and in line items.
      effective_from: first day the version applies (R8).
      currency: ISO 4217 code of every figure in the version.
      plan_fee_policy: ``month_start`` (R1 default) or ``prorate_daily``.
      plan_fee: monthly fee per plan (``free``, ``pro``, ``flagship``).
      overage: section (``dau_overage``, ``group_overage``) -> its model and terms (R2,
        R3).
      addon_prices: add-on -> tier -> monthly price; on/off add-ons use the tier ``on``;
        a tier is written in its canonical form (``"600"``, never ``"0600"``). An add-on
        the version does not sell has no entry.
      av_call_trial_days: length of the `av_call` free trial (R6); None when the version
        does not sell ``av_call``.
      tax: customer country -> rate; a country not listed pays no tax.
    """

    version_id: str
    effective_from: date
    currency: str
    plan_fee_policy: PlanFeePolicy
    plan_fee: dict[str, Decimal]
    overage: dict[str, MetricPricing]
    addon_prices: dict[str, dict[str, Decimal]]
    av_call_trial_days: int | None
    tax: dict[str, Decimal]


@dataclass(frozen=True)
class PriceBook:
    """All versions of the price book file.

    Attributes:
      path: where it was read from.
      sha256: hex digest of the file's bytes (recorded in the manifest).
      versions: every version, sorted by currency then effective_from.
    """

    path: Path
    sha256: str
    versions: tuple[PriceBookVersion, ...]

    def select(self, currency: str, month_start: date) -> PriceBookVersion | None:
        """R8: the version in `currency` with the latest effective_from <= the 1st of M."""
        candidates = [
            v for v in self.versions if v.currency == currency and v.effective_from <= month_start
        ]
        return max(candidates, key=lambda v: v.effective_from, default=None)


#: The largest price the batch accepts (exclusive): every product of a price and a block
#: count up to `MAX_QUANTITY` then stays exact in the pricing scale (`money.WORK`).
MAX_PRICE = Decimal(10) ** 9
#: Quotas, blocks and tiers up to this value are accepted (the usage metrics' limit too).
MAX_QUANTITY = 10**15
#: Price-book figures keep at most this many decimals: the scale of `money.MONEY`.
MAX_DECIMALS = 6


def load_pricebook(path: Path, label: str | None = None, *,
                   models: Mapping[str, MetricModel]) -> PriceBook:
    """Read and check a price book file; raise `InputError` naming the bad key.

    `label` is how errors name the file (as the user typed it); default: the path.
    `models`: the pricing models by name (`invoicing.pricing.models.MODELS`), which read
    the overage sections. Every bad key of every version is reported at once
    (`InputErrors`).
    """
    label = label or str(path)
    if not path.is_file():
        raise InputError(Source(label), "price book not found")
    raw = path.read_bytes()
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(Source(label), f"not valid TOML: {exc}") from None
    versions_raw = doc.get("version")
    if not isinstance(versions_raw, list) or not versions_raw:
        raise InputError(Source(label), "no [[version]] tables")
    errors = ErrorLog()
    parsed = []
    for i, table in enumerate(versions_raw, start=1):
        reader = _Reader(label, i, table, errors)
        version = reader.attempt(functools.partial(_parse_version, reader, models))
        if version is not None and not reader.failed:
            parsed.append(version)
    versions = tuple(sorted(parsed, key=lambda v: (v.currency, v.effective_from)))
    seen: set[tuple[str, date]] = set()
    for v in versions:
        if (v.currency, v.effective_from) in seen:
            errors.add(Source(label),
                       f"two versions for {v.currency} with effective_from {v.effective_from}")
        seen.add((v.currency, v.effective_from))
    errors.raise_if_any()
    return PriceBook(path=path, sha256=hashlib.sha256(raw).hexdigest(), versions=versions)


class _KeyFailed(Exception):
    """One key of a version is bad (already recorded); the reader skips to the next."""


class _Reader:
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
        raise _KeyFailed

    def attempt(self, read: Callable[[], T]) -> T | None:
        """`read()`, or None when it failed (the error is recorded)."""
        try:
            return read()
        except _KeyFailed:
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


#: The reader a pricing model reads its section with (`MetricModel.read_terms`).
MetricReader = _Reader


def _overage(r: _Reader, section: str, models: Mapping[str, MetricModel]) -> MetricPricing:
    """An overage section: its ``model`` (default `DEFAULT_MODEL`) reads the rest."""
    table = r.table_at(section)
    name = table.get("model", DEFAULT_MODEL)
    if not isinstance(name, str) or name not in models:
        r.fail(f"{section}.model", f"unknown pricing model {name!r}; the known models are "
               f"{', '.join(sorted(models))}")
    model = models[name]
    terms = model.read_terms(r, section)
    unknown = sorted(set(table) - model.keys - {"model"})
    if unknown:
        r.fail(f"{section}.{unknown[0]}", f"not a key of model {name!r} (its keys: "
               f"model, {', '.join(sorted(model.keys))})")
    return MetricPricing(model=name, terms=terms)


def parse_tier(text: str) -> int | None:
    """A tier key or event value as a number (``"0600"`` and ``"600"`` are one tier);
    None when it is not a whole number in range."""
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= MAX_QUANTITY else None


def _tiers(r: _Reader, name: str) -> dict[str, Decimal]:
    """Tier -> price, keyed by the tier's canonical text (``"600"``)."""
    tiers = r.table_at(f"addon.{name}")
    if not tiers:
        r.fail(f"addon.{name}", "must list at least one tier")
    prices: dict[str, Decimal] = {}
    written: dict[int, str] = {}
    for key, price in tiers.items():
        number = parse_tier(key)
        if number is None:
            r.fail(f"addon.{name}.{key}", "a tier must be a whole number such as \"3000\" "
                   f"(up to {MAX_QUANTITY:,})")
        if number in written:
            r.fail(f"addon.{name}.{key}", f"the same tier as {written[number]!r}")
        written[number] = key
        prices[str(number)] = r.decimal(f"addon.{name}.{key}", price)
    return prices


def _on_off(r: _Reader, key: str) -> dict[str, Decimal]:
    return {"on": r.decimal(f"{key}.price")}


def _addon_prices(r: _Reader) -> tuple[dict[str, dict[str, Decimal]], int | None]:
    """Prices of the add-ons the version sells, and the A/V trial length (None if it does
    not sell ``av_call``). An add-on it does not sell has no entry: an event in force
    that needs its price is refused by `validate.check_events`."""
    addon_tables = r.table_at("addon", optional=True)
    unknown = set(addon_tables) - set(ADDONS)
    if unknown:
        r.fail("addon", f"unknown add-on {sorted(unknown)[0]!r}")
    prices: dict[str, dict[str, Decimal]] = {}
    for name in ADDONS:
        if name not in addon_tables:
            continue
        key = f"addon.{name}"
        tiers = r.attempt(functools.partial(_on_off, r, key) if name in ON_OFF_ADDONS
                          else functools.partial(_tiers, r, name))
        if tiers is not None:
            prices[name] = tiers
    trial_days = None
    if "av_call" in addon_tables:
        trial_days = r.attempt(lambda: r.positive_int("addon.av_call.trial_days"))
    return prices, trial_days


def _parse_version(r: _Reader, models: Mapping[str, MetricModel]) -> PriceBookVersion:
    effective_from = r.get("effective_from")
    if not isinstance(effective_from, date) or hasattr(effective_from, "hour"):
        r.fail("effective_from", "must be a TOML date such as 2026-01-01")
    currency = r.get("currency")
    if not isinstance(currency, str):
        r.fail("currency", "must be a string")
    try:
        minor_units(currency)
    except ValueError as exc:
        r.fail("currency", str(exc))
    policy = r.table.get("plan_fee_policy", "month_start")
    if policy not in POLICIES:
        r.attempt(lambda: r.fail("plan_fee_policy",
                                 f"must be one of {', '.join(POLICIES)}, got {policy!r}"))

    fees = {plan: r.attempt(functools.partial(r.decimal, f"plan_fee.{plan}")) for plan in PLANS}
    extra = set(r.attempt(lambda: r.table_at("plan_fee")) or {}) - set(PLANS)
    if extra:
        r.attempt(lambda: r.fail("plan_fee", f"unknown plan {sorted(extra)[0]!r}"))

    overage = {section: r.attempt(functools.partial(_overage, r, section, models))
               for section in OVERAGE_SECTIONS}
    prices, trial_days = _addon_prices(r)
    # Rates are fractions: "0.10" is 10 %. A rate of 1 or more is a typo for a percentage.
    tax = {
        country: r.attempt(functools.partial(r.decimal, f"tax.{country}", rate, limit=Decimal(1)))
        for country, rate in (r.attempt(lambda: r.table_at("tax", optional=True)) or {}).items()
    }
    if r.failed:
        raise _KeyFailed
    return PriceBookVersion(
        version_id=f"{currency}@{effective_from.isoformat()}",
        effective_from=effective_from,
        currency=currency,
        plan_fee_policy=policy,
        plan_fee={plan: fee for plan, fee in fees.items() if fee is not None},
        overage={section: pricing for section, pricing in overage.items()
                 if pricing is not None},
        addon_prices=prices,
        av_call_trial_days=trial_days,
        tax={country: rate for country, rate in tax.items() if rate is not None},
    )


# --- frames for the pricing stage ------------------------------------------------------------


def versions_frame(versions: list[PriceBookVersion]) -> pl.DataFrame:
    """One row per selected version: the scalar prices the pricing expressions join on
    (the overage models bring their own terms: `pricing.models`)."""
    return pl.DataFrame(
        {
            "pricebook_version": [v.version_id for v in versions],
            "currency": [v.currency for v in versions],
            "minor_units": [minor_units(v.currency) for v in versions],
            "plan_fee_policy": [v.plan_fee_policy for v in versions],
            **{f"fee_{plan}": [v.plan_fee[plan] for v in versions] for plan in PLANS},
            "av_trial_days": [v.av_call_trial_days for v in versions],
        },
        schema={
            "pricebook_version": pl.String,
            "currency": pl.String,
            "minor_units": pl.Int32,
            "plan_fee_policy": pl.String,
            **{f"fee_{plan}": MONEY for plan in PLANS},
            "av_trial_days": pl.Int32,
        },
    )


def addon_prices_frame(versions: list[PriceBookVersion]) -> pl.DataFrame:
    """One row per (version, add-on, tier) with its monthly price."""
    rows = [
        (v.version_id, item, tier, price)
        for v in versions
        for item, tiers in v.addon_prices.items()
        for tier, price in tiers.items()
    ]
    return pl.DataFrame(
        rows,
        schema={
            "pricebook_version": pl.String,
            "item": pl.String,
            "tier": pl.String,
            "unit_price": MONEY,
        },
        orient="row",
    )


def tax_frame(versions: list[PriceBookVersion]) -> pl.DataFrame:
    """One row per (version, country) with its tax rate."""
    rows = [(v.version_id, c, rate) for v in versions for c, rate in v.tax.items()]
    return pl.DataFrame(
        rows,
        schema={"pricebook_version": pl.String, "country": pl.String, "tax_rate": RATE},
        orient="row",
    )
