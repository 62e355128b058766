"""The price book (SPEC §5): versions per currency, chosen per month by R8.

The TOML is read with the standard library's `tomllib`, then checked key by key so
that a mistake is reported as one line naming the file and the key. Every price is
a quoted decimal string (a TOML float would already have lost exactness).
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import polars as pl

from invoicing.catalogue import ADDONS, ON_OFF_ADDONS, PLANS, TIERED_ADDONS
from invoicing.errors import InputError, Source
from invoicing.money import MONEY, RATE, minor_units, to_decimal

PlanFeePolicy = Literal["month_start", "prorate_daily"]
POLICIES: tuple[PlanFeePolicy, ...] = ("month_start", "prorate_daily")


@dataclass(frozen=True)
class Overage:
    """Overage pricing of one metric (R2, R3).

    Attributes:
      free_quota: units included in Pro and Flagship each day.
      block: size of one billed block; a partial block counts whole.
      price_per_block: price of one block.
    """

    free_quota: int
    block: int
    price_per_block: Decimal


@dataclass(frozen=True)
class PriceBookVersion:
    """One version of the price book, for one currency.

    Attributes:
      version_id: ``<currency>@<effective_from>``, printed on invoices and in line items.
      effective_from: first day the version applies (R8).
      currency: ISO 4217 code of every figure in the version.
      plan_fee_policy: ``month_start`` (R1 default) or ``prorate_daily``.
      plan_fee: monthly fee per plan (``free``, ``pro``, ``flagship``).
      dau_overage: R2 pricing.
      group_overage: R3 pricing.
      addon_prices: add-on -> tier -> monthly price; on/off add-ons use the tier ``on``.
      av_call_trial_days: length of the `av_call` free trial (R6).
      tax: customer country -> rate; a country not listed pays no tax.
    """

    version_id: str
    effective_from: date
    currency: str
    plan_fee_policy: PlanFeePolicy
    plan_fee: dict[str, Decimal]
    dau_overage: Overage
    group_overage: Overage
    addon_prices: dict[str, dict[str, Decimal]]
    av_call_trial_days: int
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


def load_pricebook(path: Path, label: str | None = None) -> PriceBook:
    """Read and check a price book file; raise `InputError` naming the bad key.

    `label` is how errors name the file (the input-relative path); default: the path.
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
    versions = tuple(
        sorted(
            (_parse_version(label, i, v) for i, v in enumerate(versions_raw, start=1)),
            key=lambda v: (v.currency, v.effective_from),
        )
    )
    seen: set[tuple[str, date]] = set()
    for v in versions:
        if (v.currency, v.effective_from) in seen:
            raise InputError(
                Source(label),
                f"two versions for {v.currency} with effective_from {v.effective_from}",
            )
        seen.add((v.currency, v.effective_from))
    return PriceBook(path=path, sha256=hashlib.sha256(raw).hexdigest(), versions=versions)


class _Reader:
    """Typed access to one [[version]] table that names the key on every error."""

    def __init__(self, label: str, index: int, table: Any):
        self.label = label
        self.index = index
        if not isinstance(table, dict):
            self.fail("version", "must be a table")
        self.table: dict[str, Any] = table

    def fail(self, key: str, message: str) -> None:
        raise InputError(Source(self.label), f"version #{self.index}, key {key!r}: {message}")

    def get(self, key: str) -> Any:
        node: Any = self.table
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                self.fail(key, "missing")
            node = node[part]
        return node

    def table_at(self, key: str, optional: bool = False) -> dict[str, Any]:
        if optional:
            try:
                value = self.get(key)
            except InputError:
                return {}
        else:
            value = self.get(key)
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
        return value

    def money(self, key: str, value: Any = None) -> Decimal:
        value = self.get(key) if value is None else value
        if not isinstance(value, str | int) or isinstance(value, bool):
            self.fail(key, f"must be a quoted decimal string such as \"399.00\", got {value!r}")
        try:
            amount = to_decimal(value, key)
        except ValueError as exc:
            self.fail(key, str(exc))
        if amount < 0:
            self.fail(key, f"must not be negative, got {value!r}")
        return amount

    def positive_int(self, key: str, allow_zero: bool = False) -> int:
        value = self.get(key)
        lowest = 0 if allow_zero else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            self.fail(key, f"must be a {'non-negative' if allow_zero else 'positive'} integer")
        return int(value)


def _parse_version(label: str, index: int, table: Any) -> PriceBookVersion:
    r = _Reader(label, index, table)
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
        r.fail("plan_fee_policy", f"must be one of {', '.join(POLICIES)}, got {policy!r}")

    fees = {plan: r.money(f"plan_fee.{plan}") for plan in PLANS}
    extra = set(r.table_at("plan_fee")) - set(PLANS)
    if extra:
        r.fail("plan_fee", f"unknown plan {sorted(extra)[0]!r}")

    def overage(key: str) -> Overage:
        return Overage(
            free_quota=r.positive_int(f"{key}.free_quota", allow_zero=True),
            block=r.positive_int(f"{key}.block"),
            price_per_block=r.money(f"{key}.price_per_block"),
        )

    addon_tables = r.table_at("addon")
    unknown = set(addon_tables) - set(ADDONS)
    if unknown:
        r.fail("addon", f"unknown add-on {sorted(unknown)[0]!r}")
    prices: dict[str, dict[str, Decimal]] = {}
    for name in ON_OFF_ADDONS:
        prices[name] = {"on": r.money(f"addon.{name}.price")}
    for name in TIERED_ADDONS:
        tiers = r.table_at(f"addon.{name}")
        if not tiers:
            r.fail(f"addon.{name}", "must list at least one tier")
        for tier in tiers:
            if not tier.isdigit():
                r.fail(f"addon.{name}.{tier}", "a tier must be a whole number such as \"3000\"")
        prices[name] = {tier: r.money(f"addon.{name}.{tier}", tiers[tier]) for tier in tiers}
    tax = {
        country: r.money(f"tax.{country}", rate)
        for country, rate in r.table_at("tax", optional=True).items()
    }
    return PriceBookVersion(
        version_id=f"{currency}@{effective_from.isoformat()}",
        effective_from=effective_from,
        currency=currency,
        plan_fee_policy=policy,
        plan_fee=fees,
        dau_overage=overage("dau_overage"),
        group_overage=overage("group_overage"),
        addon_prices=prices,
        av_call_trial_days=r.positive_int("addon.av_call.trial_days"),
        tax=tax,
    )


# --- frames for the pricing stage ------------------------------------------------------------


def versions_frame(versions: list[PriceBookVersion]) -> pl.DataFrame:
    """One row per selected version: the scalar prices the pricing expressions join on."""
    return pl.DataFrame(
        {
            "pricebook_version": [v.version_id for v in versions],
            "currency": [v.currency for v in versions],
            "minor_units": [minor_units(v.currency) for v in versions],
            "plan_fee_policy": [v.plan_fee_policy for v in versions],
            "fee_free": [v.plan_fee["free"] for v in versions],
            "fee_pro": [v.plan_fee["pro"] for v in versions],
            "fee_flagship": [v.plan_fee["flagship"] for v in versions],
            "dau_free_quota": [v.dau_overage.free_quota for v in versions],
            "dau_block": [v.dau_overage.block for v in versions],
            "dau_price": [v.dau_overage.price_per_block for v in versions],
            "group_free_quota": [v.group_overage.free_quota for v in versions],
            "group_block": [v.group_overage.block for v in versions],
            "group_price": [v.group_overage.price_per_block for v in versions],
            "av_trial_days": [v.av_call_trial_days for v in versions],
        },
        schema={
            "pricebook_version": pl.String,
            "currency": pl.String,
            "minor_units": pl.Int32,
            "plan_fee_policy": pl.String,
            "fee_free": MONEY,
            "fee_pro": MONEY,
            "fee_flagship": MONEY,
            "dau_free_quota": pl.Int64,
            "dau_block": pl.Int64,
            "dau_price": MONEY,
            "group_free_quota": pl.Int64,
            "group_block": pl.Int64,
            "group_price": MONEY,
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
