"""A second, independent calculation of the billing rules R1–R8 and R10, for the tests.

This module recomputes a month's charges the slow, obvious way: for every app and every
day of the month it looks up the plan and each add-on in force, then applies the rules
of the README ("Decisions") to those days. It shares no code with `invoicing`: it reads
the input folder with pyarrow and the price book with `tomllib`, and computes with the
standard library only (`decimal`, `datetime`, `calendar`). It is written to be read by
an auditor next to the rules; it is not fast and does not need to be.

What it covers: plan fees under both policies (R1), DAU and group overage (R2, R3) in
blocks or in graduated bands,
add-ons (R4, R5), audio/video calls with their trial (R6), rounding and tax (R7), the
choice of the price-book version (R8) and invoice numbers (R10). What it does not do:
input validation (it expects a month the product accepts), R9 anomalies, documents.

Rules as the README settles them where SPEC is silent:

* the state of an item on a day is its latest event dated on or before that day; two
  events of one app and item on the same day resolve to the later row of the file;
* before an app's first plan event it has no plan: no plan fee, no overage, and for
  add-on entitlements such a day counts as Free;
* every app with usage on at least one Pro or Flagship day gets a DAU and a group line,
  even at 0 blocks; the peak day is the first day with the maximum, and the line's plan
  is the plan on that day;
* an add-on is charged, once, at the price of the highest tier among its counting days
  (active, and above what that day's plan includes), also on a Free app;
* the A/V-call trial starts on the first day `av_call` is ever on; its last free day is
  that day + trial_days − 1.

Usage rows the product rejects (unknown app, date outside the month, null or negative
metric) are skipped here too; several rows for one app and day count at their maximum.
"""

from __future__ import annotations

import calendar
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

#: Digits after the decimal point of each currency the tests use (ISO 4217).
MINOR_UNITS = {"USD": 2, "EUR": 2, "CNY": 2, "KRW": 0, "JPY": 0}

PAID_PLANS = ("pro", "flagship")

#: What each plan already includes, per tiered add-on (SPEC plan-limit table).
INCLUDED = {
    "group_member_limit": {"free": 20, "pro": 200, "flagship": 2000},
    "groups_per_user": {"free": 50, "pro": 500, "flagship": 1000},
    "history_retention_days": {"free": 7, "pro": 7, "flagship": 30},
}
TIERED_ADDONS = tuple(INCLUDED)


# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One row of subscription_events, in file order."""

    app: int
    day: date
    item: str
    value: str


@dataclass(frozen=True)
class Inputs:
    """A month's input folder, read without the product's loader.

    Attributes:
      customers: customer_id -> {"currency": ..., "country": ...}.
      app_owner: sdk_app_id -> customer_id.
      events: every subscription event, in file order.
      usage: (sdk_app_id, day) -> (dau, group_count), the maximum of the rows for that day.
      pricebook: the parsed TOML document.
    """

    customers: dict[str, dict[str, str]]
    app_owner: dict[int, str]
    events: list[Event]
    usage: dict[tuple[int, date], tuple[int, int]]
    pricebook: dict[str, Any]


def read_inputs(folder: Path) -> Inputs:
    """Read an input folder written as Parquet (as `tests.builders.MonthBuilder` does)."""
    customers = {
        row["customer_id"]: {"currency": row["currency"], "country": row["country"]}
        for row in pq.read_table(folder / "customers.parquet").to_pylist()
    }
    app_owner = {row["sdk_app_id"]: row["customer_id"]
                 for row in pq.read_table(folder / "apps.parquet").to_pylist()}
    events = [Event(r["sdk_app_id"], r["effective_date"], r["item"], r["value"])
              for r in pq.read_table(folder / "subscription_events.parquet").to_pylist()]
    usage: dict[tuple[int, date], tuple[int, int]] = {}
    for path in sorted((folder / "usage").rglob("*.parquet")):
        for r in pq.read_table(path, columns=["sdk_app_id", "date", "dau",
                                              "group_count"]).to_pylist():
            if r["sdk_app_id"] not in app_owner or r["date"] is None:
                continue
            if r["dau"] is None or r["group_count"] is None:
                continue
            if r["dau"] < 0 or r["group_count"] < 0:
                continue
            key = (r["sdk_app_id"], r["date"])
            old_dau, old_groups = usage.get(key, (0, 0))
            usage[key] = (max(old_dau, r["dau"]), max(old_groups, r["group_count"]))
    pricebook = tomllib.loads((folder / "pricebook.toml").read_text(encoding="utf-8"))
    return Inputs(customers, app_owner, events, usage, pricebook)


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One charge. `plan` is set for plan fees (the plan charged) and overage (the plan
    on the peak day); `evidence` holds what else the line claims (peak, tier, trial end)."""

    customer_id: str
    sdk_app_id: int
    item: str
    plan: str | None
    quantity: int | Decimal
    unit_price: Decimal
    amount: Decimal
    evidence: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Invoice:
    customer_id: str
    currency: str
    pricebook_version: str
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    invoice_number: str | None


@dataclass(frozen=True)
class Bill:
    lines: list[Line]
    invoices: list[Invoice]


# --- the rules ------------------------------------------------------------------------------


def round_half_up(value: Decimal, currency: str) -> Decimal:
    """R7: round once, half-up (ties away from zero), to the currency's minor unit."""
    return value.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]), rounding=ROUND_HALF_UP)


def days_of(year: int, month: int) -> list[date]:
    return [date(year, month, n) for n in range(1, calendar.monthrange(year, month)[1] + 1)]


def state_on(events: list[Event], app: int, item: str, day: date) -> str | None:
    """The value of `item` for `app` in force on `day`: the latest event dated on or
    before it, the later file row winning on the same day; None before any event."""
    value: str | None = None
    latest: date | None = None
    for e in events:  # file order, so on the same day the later row wins
        if e.app == app and e.item == item and e.day <= day and (latest is None
                                                                  or e.day >= latest):
            value, latest = e.value, e.day
    return value


def choose_version(pricebook: dict[str, Any], currency: str, first_day: date
                   ) -> dict[str, Any]:
    """R8: the version in `currency` with the latest effective_from on or before the 1st."""
    candidates = [v for v in pricebook["version"]
                  if v["currency"] == currency and v["effective_from"] <= first_day]
    if not candidates:
        raise ValueError(f"no {currency} version effective on {first_day}")
    return max(candidates, key=lambda v: v["effective_from"])


def plan_fee_lines(app: int, customer: str, currency: str, version: dict[str, Any],
                   plans: dict[date, str | None]) -> list[Line]:
    """R1. `month_start`: the plan in force on the 1st, in full (no plan on the 1st: no
    line; Free: a zero line). `prorate_daily`: one line per plan held during the month,
    fee × days on it / days in the month, rounded once."""
    fees = version["plan_fee"]
    if version.get("plan_fee_policy", "month_start") == "month_start":
        plan = plans[min(plans)]  # the plan on the 1st
        if plan is None:
            return []
        fee = Decimal(fees[plan])
        return [Line(customer, app, "plan_fee", plan, 1, fee, round_half_up(fee, currency))]
    lines = []
    for plan in ("free", "pro", "flagship"):
        held = sum(1 for p in plans.values() if p == plan)
        if held:
            fee = Decimal(fees[plan])
            amount = round_half_up(fee * held / len(plans), currency)
            # The README's quantity of a prorated fee: the share of the month, rounded up
            # at 21 decimals, at the monthly fee.
            share = (Decimal(held) / len(plans)).quantize(Decimal("1e-21"), ROUND_CEILING)
            lines.append(Line(customer, app, "plan_fee", plan, share, fee, amount))
    return lines


def overage_lines(app: int, customer: str, currency: str, version: dict[str, Any],
                  plans: dict[date, str | None],
                  usage: dict[tuple[int, date], tuple[int, int]]) -> list[Line]:
    """R2 and R3: the peak over the app's Pro/Flagship days with usage, billed in whole
    blocks of the excess over the free quota."""
    paid_days = [d for d, plan in plans.items() if plan in PAID_PLANS and (app, d) in usage]
    if not paid_days:
        return []
    lines = []
    for item, position in (("dau_overage", 0), ("group_overage", 1)):
        terms = version[item]
        quota, block = int(terms["free_quota"]), int(terms["block"])
        peak = max(usage[(app, d)][position] for d in paid_days)
        peak_day = min(d for d in paid_days if usage[(app, d)][position] == peak)
        excess = max(0, peak - quota)
        blocks = (excess + block - 1) // block  # a partial block counts whole
        evidence: tuple[tuple[str, Any], ...] = (("peak_value", peak), ("peak_date", peak_day))
        if terms.get("model", "blocks") == "graduated":
            bands = graduated_bands(blocks, terms["band"])
            total = sum((amount for *_, amount in bands), start=Decimal(0))
            lines.append(Line(customer, app, item, plans[peak_day], 1 if blocks else 0, total,
                              round_half_up(total, currency),
                              (*evidence, ("bands", tuple(bands)))))
            continue
        price = Decimal(terms["price_per_block"])
        lines.append(Line(customer, app, item, plans[peak_day], blocks, price,
                          round_half_up(price * blocks, currency), evidence))
    return lines


def graduated_bands(blocks: int, bands: list[dict[str, Any]]
                    ) -> list[tuple[int, int, int, Decimal, Decimal]]:
    """The graduated model: the blocks counted one band after the other, each band at its
    own price: (first block, last block, blocks, price, exact amount) per band used."""
    used = []
    first = 1
    for band in bands:
        last = min(blocks, band.get("up_to_blocks", blocks))
        if last >= first:
            price = Decimal(band["price_per_block"])
            used.append((first, last, last - first + 1, price, price * (last - first + 1)))
        first = band.get("up_to_blocks", blocks) + 1
    return used


def tier_of(value: str | None) -> int | None:
    """An add-on's tier as a number: ``on`` is 1, ``off`` or no state is inactive."""
    if value is None or value == "off":
        return None
    return 1 if value == "on" else int(value)


def included_in(plan: str, addon: str) -> float:
    """The tier `plan` already includes; a day without a plan counts as Free.
    Live-broadcast groups: Free and Pro have a limit (tier 0 of the add-on), Flagship
    includes them without limit."""
    if addon == "avchatroom_unlimited":
        return float("inf") if plan == "flagship" else 0
    return INCLUDED[addon][plan]


def addon_lines(app: int, customer: str, currency: str, version: dict[str, Any],
                plans: dict[date, str | None], events: list[Event]) -> list[Line]:
    """R4 and R5: the full monthly price of the highest tier among the counting days."""
    lines = []
    for addon in ("avchatroom_unlimited", *TIERED_ADDONS):
        counting_tiers = []
        for day, plan in plans.items():
            tier = tier_of(state_on(events, app, addon, day))
            if tier is not None and tier > included_in(plan or "free", addon):
                counting_tiers.append(tier)
        if not counting_tiers:
            continue
        prices = version["addon"][addon]
        if addon == "avchatroom_unlimited":
            tier_name, price = "on", Decimal(prices["price"])
        else:
            tier = max(counting_tiers)
            by_number = {int(key): Decimal(p) for key, p in prices.items()}
            tier_name, price = str(tier), by_number[tier]
        lines.append(Line(customer, app, addon, None, 1, price, round_half_up(price, currency),
                          (("tier", tier_name),)))
    return lines


def av_call_line(app: int, customer: str, currency: str, version: dict[str, Any],
                 month_days: list[date], events: list[Event]) -> list[Line]:
    """R6: free for trial_days from the first day the add-on is ever on; a month with an
    active day after the trial pays the price; a trial-only month has a zero line."""
    active = [d for d in month_days if state_on(events, app, "av_call", d) == "on"]
    if not active:
        return []
    day = min(e.day for e in events if e.app == app and e.item == "av_call")
    while state_on(events, app, "av_call", day) != "on":  # some day <= active[0] is on
        day += timedelta(days=1)
    terms = version["addon"]["av_call"]
    trial_end = day + timedelta(days=int(terms["trial_days"]) - 1)
    price = Decimal(terms["price"])
    quantity = 1 if any(d > trial_end for d in active) else 0
    return [Line(customer, app, "av_call", None, quantity, price,
                 round_half_up(price * quantity, currency), (("trial_end", trial_end),))]


def bill_month(inputs: Inputs, year: int, month: int) -> Bill:
    """Every line and invoice of the month, computed day by day.

    Decimal arithmetic runs at 60 significant digits: every product of price-book
    figures and counts is then exact, and the one inexact step (a prorated fee divided
    by the days of the month) is far closer to its true value than to any rounding tie.
    """
    with localcontext() as context:
        context.prec = 60
        return _bill_month(inputs, year, month)


def _bill_month(inputs: Inputs, year: int, month: int) -> Bill:
    month_days = days_of(year, month)
    first_day = month_days[0]
    versions = {cid: choose_version(inputs.pricebook, c["currency"], first_day)
                for cid, c in inputs.customers.items()}
    lines: list[Line] = []
    for app, customer in inputs.app_owner.items():
        currency = inputs.customers[customer]["currency"]
        version = versions[customer]
        plans = {d: state_on(inputs.events, app, "plan", d) for d in month_days}
        lines += plan_fee_lines(app, customer, currency, version, plans)
        lines += overage_lines(app, customer, currency, version, plans, inputs.usage)
        lines += addon_lines(app, customer, currency, version, plans, inputs.events)
        lines += av_call_line(app, customer, currency, version, month_days, inputs.events)
    return Bill(lines, invoices(inputs, versions, lines, year, month))


def invoices(inputs: Inputs, versions: dict[str, dict[str, Any]], lines: list[Line],
             year: int, month: int) -> list[Invoice]:
    """R7 totals and tax, R10 numbers: 1..n over the customers with a non-zero total, in
    ascending byte order of customer_id; a zero total gets no number."""
    result = []
    sequence = 0
    for customer in sorted(inputs.customers, key=lambda c: c.encode("utf-8")):
        currency = inputs.customers[customer]["currency"]
        version = versions[customer]
        subtotal = sum((ln.amount for ln in lines if ln.customer_id == customer),
                       start=Decimal(0))
        rate = Decimal(version.get("tax", {}).get(inputs.customers[customer]["country"], "0"))
        tax = round_half_up(subtotal * rate, currency)
        total = subtotal + tax
        number = None
        if total != 0:
            sequence += 1
            number = f"IM-{year:04d}{month:02d}-{sequence:06d}"
        label = f"{currency}@{version['effective_from'].isoformat()}"
        result.append(Invoice(customer, currency, label, subtotal, tax, total, number))
    return result
