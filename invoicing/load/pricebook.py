"""The price book (SPEC §5): versions per currency, chosen per month by R8.

The TOML is read with the standard library's `tomllib`, then checked key by key so
that a mistake is reported as one line naming the file and the key. Every price is
a quoted decimal string (a TOML float would already have lost exactness).

The schema is closed (SPEC §8): every table and key is known, and anything else (a
misspelled ``plan_fee_polcy``, a ``[version.Tax]`` table, a tax key ``kr``) is an
error naming the key and, when there is one, the known key it is closest to. A slip
can therefore never fall back silently to a default. An overage section's keys are its
pricing model's (`invoicing.pricing.models`).
"""

from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import polars as pl

from invoicing.core.catalogue import ADDONS, ON_OFF_ADDONS, PLANS
from invoicing.core.errors import ErrorLog, InputError, Source
from invoicing.core.money import MONEY, RATE, minor_units
from invoicing.load.toml_keys import (
    MAX_DECIMALS,
    MAX_PRICE,
    MAX_QUANTITY,
    KeyFailed,
    KeyReader,
    suggestion,
)

# Re-exported: the limits are read from here by validate, pricing and the models.
__all__ = ["MAX_DECIMALS", "MAX_PRICE", "MAX_QUANTITY"]

PlanFeePolicy = Literal["month_start", "prorate_daily"]
POLICIES: tuple[PlanFeePolicy, ...] = ("month_start", "prorate_daily")

#: The keys a ``[[version]]`` table may hold; any other key is an error.
VERSION_KEYS: tuple[str, ...] = ("effective_from", "currency", "plan_fee_policy", "plan_fee",
                                 "dau_overage", "group_overage", "addon", "tax")
#: The keys of an on/off add-on's table (``av_call`` also has its trial length).
ON_OFF_KEYS: dict[str, tuple[str, ...]] = {"avchatroom_unlimited": ("price",),
                                           "av_call": ("trial_days", "price")}
#: A tax key: an ISO 3166 alpha-2 code written as the customers table writes it.
TAX_KEY = re.compile(r"[A-Z]{2}")
#: A table header line and its top-level name (``[[version]]``, ``[version.tax]``).
_HEADER = re.compile(r"^\s*\[\[?\s*(?P<top>[^\].\s]+)")


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
    doc = _parse_toml(raw, label)
    errors = ErrorLog()
    for key in doc:
        if key != "version":
            errors.add(Source(label), f"key {key!r}: unknown table; the price book holds only "
                       "[[version]] tables")
    versions_raw = doc.get("version")
    if not isinstance(versions_raw, list) or not versions_raw:
        errors.add(Source(label), "no [[version]] tables")
        versions_raw = []  # reported with any other error of the file below
    parsed = []
    for i, table in enumerate(versions_raw, start=1):
        reader = KeyReader(label, i, table, errors)
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


def _parse_toml(raw: bytes, label: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise InputError(Source(label), f"not valid TOML: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        # A misspelled [[version]] header makes TOML fail elsewhere; name it first.
        errors = ErrorLog()
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header is not None and header["top"] != "version":
                errors.add(Source(label), f"line {number}: table {header['top']!r}: unknown "
                           "table; the price book holds only [[version]] tables")
        errors.add(Source(label), f"not valid TOML: {exc}")
        errors.raise_if_any()
        raise  # pragma: no cover - raise_if_any raised


#: The reader a pricing model reads its section with (`MetricModel.read_terms`).
MetricReader = KeyReader


def _overage(r: KeyReader, section: str, models: Mapping[str, MetricModel]) -> MetricPricing:
    """An overage section: its ``model`` (default `DEFAULT_MODEL`) reads the rest."""
    table = r.table_at(section)
    name = table.get("model", DEFAULT_MODEL)
    if not isinstance(name, str) or name not in models:
        r.fail(f"{section}.model", f"unknown pricing model {name!r}; the known models are "
               f"{', '.join(sorted(models))}")
    model = models[name]
    # Unknown keys first, each with the closest key of the model: a misspelled `blok`
    # is named as such, not only as a missing `block`.
    keys = ("model", *sorted(model.keys))
    for key in sorted(set(table) - set(keys)):
        close = suggestion(key, keys)
        r.attempt(functools.partial(
            r.fail, f"{section}.{key}", f"not a key of model {name!r} (its keys: "
            f"{', '.join(keys)})" + (f"; did you mean {close!r}?" if close else "")))
    terms = model.read_terms(r, section)
    return MetricPricing(model=name, terms=terms)


def parse_tier(text: str) -> int | None:
    """A tier key or event value as a number (``"0600"`` and ``"600"`` are one tier);
    None when it is not a whole number in range."""
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= MAX_QUANTITY else None


def _tiers(r: KeyReader, name: str) -> dict[str, Decimal]:
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


def _on_off(r: KeyReader, name: str) -> dict[str, Decimal]:
    key = f"addon.{name}"
    r.closed(key, r.table_at(key), ON_OFF_KEYS[name])
    return {"on": r.decimal(f"{key}.price")}


def _addon_prices(r: KeyReader) -> tuple[dict[str, dict[str, Decimal]], int | None]:
    """Prices of the add-ons the version sells, and the A/V trial length (None if it does
    not sell ``av_call``). An add-on it does not sell has no entry: an event in force
    that needs its price is refused by `validate.check_events`."""
    addon_tables = r.table_at("addon", optional=True)
    r.closed("addon", addon_tables, ADDONS, "add-on")
    prices: dict[str, dict[str, Decimal]] = {}
    for name in ADDONS:
        if name not in addon_tables:
            continue
        tiers = r.attempt(functools.partial(_on_off, r, name) if name in ON_OFF_ADDONS
                          else functools.partial(_tiers, r, name))
        if tiers is not None:
            prices[name] = tiers
    trial_days = None
    if "av_call" in addon_tables:
        trial_days = r.attempt(lambda: r.positive_int("addon.av_call.trial_days"))
    return prices, trial_days


def _tax(r: KeyReader) -> dict[str, Decimal | None]:
    """Country -> rate; a key that is not an upper-case ISO 3166 alpha-2 code (``kr``,
    ``Korea``) would never match a customer, so it is refused."""
    table = r.attempt(lambda: r.table_at("tax", optional=True)) or {}
    rates: dict[str, Decimal | None] = {}
    for country, rate in table.items():
        if not TAX_KEY.fullmatch(country):
            hint = (f"; did you mean {country.upper()!r}?"
                    if TAX_KEY.fullmatch(country.upper()) else "")
            r.attempt(functools.partial(
                r.fail, f"tax.{country}", "a tax key is a country code as the customers table "
                f"writes it: two upper-case letters (ISO 3166 alpha-2){hint}"))
            continue
        # Rates are fractions: "0.10" is 10 %. A rate of 1 or more is a typo for a percentage.
        rates[country] = r.attempt(functools.partial(r.decimal, f"tax.{country}", rate,
                                                     limit=Decimal(1)))
    return rates


def _parse_version(r: KeyReader, models: Mapping[str, MetricModel]) -> PriceBookVersion:
    r.closed("", r.table, VERSION_KEYS)
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
    r.closed("plan_fee", r.attempt(lambda: r.table_at("plan_fee")) or {}, PLANS, "plan")

    overage = {section: r.attempt(functools.partial(_overage, r, section, models))
               for section in OVERAGE_SECTIONS}
    prices, trial_days = _addon_prices(r)
    tax = _tax(r)
    if r.failed:
        raise KeyFailed
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
