"""The product against an independent, day-by-day calculation (`tests/reference_billing.py`).

Hypothesis draws small months: 1–4 customers in USD, EUR, CNY, KRW or JPY, with or
without tax; 1–3 apps each; plan, add-on and A/V-call events on any day (before the
month, on its first and last day, after it, several on one day in random file order);
usage around the block boundaries (quota ± 1, quota + k × block ± 1); price books with
several versions per currency (R8), either plan-fee policy and prices finer than the
currency's minor unit; 28-, 29-, 30- and 31-day months (2028-02 is a leap February).
`MonthBuilder` writes each month to a temporary folder, which both calculations read.
Every line (quantity, unit price, amount and its evidence) and every invoice (subtotal,
tax, total, number) must be equal, as Decimals.

The extreme-value tests put sdk_app_id at the ends of int64 and metrics at 10**15. The
reference itself is checked on hand-worked cases (SPEC's block example, an upgrade on the
15th under both policies, the end of an A/V trial, tax and numbering, a prorated fee on a
rounding tie), so that it cannot share a misreading with the product unnoticed.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month
from tests import reference_billing as ref
from tests.builders import PRICEBOOK_USD, MonthBuilder

# --- both calculations, in one comparable shape ----------------------------------------------

LineKey = tuple[str, int, str, str | None]


@dataclass(frozen=True)
class Outcome:
    """A month's result reduced to what both calculations must agree on.

    Attributes:
      lines: (customer_id, sdk_app_id, item, plan of a plan fee) -> (quantity, unit
        price, amount, plan evidence of an overage line, further evidence).
      invoices: customer_id -> (currency, price-book version, subtotal, tax, total,
        invoice number).
    """

    lines: dict[LineKey, tuple[Any, ...]]
    invoices: dict[str, tuple[Any, ...]]


EVIDENCE = {
    "dau_overage": ("peak_value", "peak_date"),
    "group_overage": ("peak_value", "peak_date"),
    "avchatroom_unlimited": ("tier",),
    "group_member_limit": ("tier",),
    "groups_per_user": ("tier",),
    "history_retention_days": ("tier",),
    "av_call": ("trial_end",),
}


def product_outcome(folder: Path, month: Month) -> Outcome:
    """What `invoicing` computes for the month (load, validation and pricing included)."""
    assembled = compute_month(folder, month).assembled
    lines: dict[LineKey, tuple[Any, ...]] = {}
    for r in assembled.line_items.to_dicts():
        item = r["item"]
        key = (r["customer_id"], r["sdk_app_id"], item, r["plan"] if item == "plan_fee" else None)
        assert key not in lines, f"two lines for {key}"
        evidence = tuple((name, r[name]) for name in EVIDENCE.get(item, ()))
        if r["bands"] is not None:  # the graduated model's breakdown
            evidence += (("bands", tuple(
                (b["first_block"], b["last_block"], b["blocks"], Decimal(b["price_per_block"]),
                 Decimal(b["amount"])) for b in json.loads(r["bands"]))),)
        overage_plan = r["plan"] if item in ("dau_overage", "group_overage") else None
        lines[key] = (r["quantity"], r["unit_price"], r["amount"], overage_plan, evidence)
    invoices = {
        r["customer_id"]: (r["currency"], r["pricebook_version"], r["subtotal"], r["tax"],
                           r["total"], r["invoice_number"])
        for r in assembled.invoices.to_dicts()
    }
    return Outcome(lines, invoices)


def reference_outcome(folder: Path, month: Month) -> Outcome:
    bill = ref.bill_month(ref.read_inputs(folder), month.year, month.month)
    lines: dict[LineKey, tuple[Any, ...]] = {}
    for ln in bill.lines:
        key = (ln.customer_id, ln.sdk_app_id, ln.item,
               ln.plan if ln.item == "plan_fee" else None)
        assert key not in lines, f"two reference lines for {key}"
        overage_plan = ln.plan if ln.item in ("dau_overage", "group_overage") else None
        lines[key] = (ln.quantity, ln.unit_price, ln.amount, overage_plan, ln.evidence)
    invoices = {
        i.customer_id: (i.currency, i.pricebook_version, i.subtotal, i.tax, i.total,
                        i.invoice_number)
        for i in bill.invoices
    }
    return Outcome(lines, invoices)


def differences(what: str, actual: dict[Any, Any], expected: dict[Any, Any]) -> list[str]:
    """One readable line per key where the product and the reference differ."""
    out = []
    for key in sorted(actual.keys() | expected.keys(), key=repr):
        if actual.get(key) != expected.get(key):
            out.append(f"{what} {key}: product {actual.get(key)!r}, "
                       f"reference {expected.get(key)!r}")
    return out


def assert_same_bill(builder: MonthBuilder, month: Month, usage_files: int = 1) -> None:
    """Write the month to a temporary folder; both calculations must agree on it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = builder.write(Path(tmp) / "in", usage_files)
        expected = reference_outcome(folder, month)
        actual = product_outcome(folder, month)
    diffs = (differences("line", actual.lines, expected.lines)
             + differences("invoice", actual.invoices, expected.invoices))
    assert not diffs, "\n".join(diffs)


# --- drawing a month ------------------------------------------------------------------------

MONTHS = [Month(2026, 10), Month(2026, 11), Month(2027, 2), Month(2028, 2), Month(2026, 12)]
CURRENCIES = ["USD", "EUR", "CNY", "KRW", "JPY"]
COUNTRIES = ["US", "KR", "DE", "CN", "JP"]
CUSTOMER_IDS = ["C1", "C10", "C2", "B7", "a1", "c0", "Z", "é1"]  # byte order != length order
#: Prices by the currency's minor unit: some finer than it, so the one rounding matters.
PRICES = {
    2: ["0", "0.01", "0.005", "0.125", "12.345", "149.99", "399.00", "1199", "2.999995",
        "0.000001"],
    0: ["0", "1", "0.5", "2.5", "77000.4", "199995", "550000", "0.499999"],
}
TAX_RATES = ["0", "0.1", "0.10", "0.075", "0.125", "0.19", "0.333333", "0.123456"]
#: Tiers a price book may list: some at or below what a plan includes (R5), some above.
TIERS = {
    "group_member_limit": [100, 200, 201, 2000, 2001, 3000, 6000],
    "groups_per_user": [40, 50, 51, 500, 501, 1000, 2000, 3000],
    "history_retention_days": [7, 8, 30, 31, 60, 90, 360],
}
PLANS = ["free", "pro", "flagship"]


@dataclass(frozen=True)
class Overage:
    """Overage terms: in blocks at `price`, or in graduated `bands` (limit, price) when
    there are any (the last band without a limit)."""

    quota: int
    block: int
    price: str
    bands: tuple[tuple[int | None, str], ...] = ()

    def toml(self, section: str) -> list[str]:
        head = [f"[version.{section}]", f"free_quota = {self.quota}", f"block = {self.block}"]
        if not self.bands:
            return [*head, f'price_per_block = "{self.price}"', ""]
        out = [*head, 'model = "graduated"', ""]
        for limit, price in self.bands:
            out += [f"[[version.{section}.band]]",
                    *([f"up_to_blocks = {limit}"] if limit is not None else []),
                    f'price_per_block = "{price}"', ""]
        return out


def _money(draw: st.DrawFn, currency: str) -> str:
    return draw(st.sampled_from(PRICES[ref.MINOR_UNITS[currency]]))


def _overage(draw: st.DrawFn, currency: str) -> Overage:
    quota = draw(st.integers(0, 30) | st.just(10000))
    block = draw(st.integers(1, 12) | st.just(10000))
    bands: tuple[tuple[int | None, str], ...] = ()
    if draw(st.booleans()):  # graduated: 1 to 3 bands with rising limits
        limits = sorted(draw(st.sets(st.integers(1, 4), max_size=2)))
        bands = tuple((limit, _money(draw, currency)) for limit in [*limits, None])
    return Overage(quota, block, _money(draw, currency), bands)


def version_toml(draw: st.DrawFn, currency: str, effective_from: date,
                 tiers: dict[str, list[int]]) -> tuple[str, dict[str, Overage]]:
    """One [[version]] of the price book with drawn figures and policy, and its
    overage terms."""
    policy = draw(st.sampled_from(["month_start", "prorate_daily"]))
    out = [
        "[[version]]", f"effective_from = {effective_from.isoformat()}",
        f'currency = "{currency}"', f'plan_fee_policy = "{policy}"', "",
        "[version.plan_fee]",
        f'free = "{draw(st.sampled_from(["0", "0", "5"]))}"',
        f'pro = "{_money(draw, currency)}"', f'flagship = "{_money(draw, currency)}"', "",
    ]
    overage = {}
    for section in ("dau_overage", "group_overage"):
        o = overage[section] = _overage(draw, currency)
        out += o.toml(section)
    out += ["[version.addon.avchatroom_unlimited]", f'price = "{_money(draw, currency)}"', ""]
    for addon, listed in tiers.items():
        out += [f"[version.addon.{addon}]"]
        out += [f'"{tier}" = "{_money(draw, currency)}"' for tier in listed]
        out += [""]
    trial_days = draw(st.sampled_from([1, 28, 29, 30, 31, 60]) | st.integers(1, 120))
    out += ["[version.addon.av_call]", f"trial_days = {trial_days}",
            f'price = "{_money(draw, currency)}"', ""]
    taxed = draw(st.dictionaries(st.sampled_from(COUNTRIES), st.sampled_from(TAX_RATES),
                                 max_size=3))
    if taxed:
        out += ["[version.tax]", *(f'{c} = "{r}"' for c, r in sorted(taxed.items())), ""]
    return "\n".join(out) + "\n", overage


@dataclass(frozen=True)
class Terms:
    """What usage and events of a currency are drawn from: the tiers its versions list
    and the overage terms of the version in force."""

    tiers: dict[str, list[int]]
    overage: dict[str, Overage]


def pricebook_for(draw: st.DrawFn, currencies: list[str], month: Month
                  ) -> tuple[str, dict[str, Terms]]:
    """Per currency: the version in force on the 1st (effective on the 1st or before),
    maybe an older one and one from after the 1st that R8 must ignore."""
    parts = []
    terms = {}
    for currency in currencies:
        tiers = {addon: sorted(draw(st.sets(st.sampled_from(listed), min_size=1, max_size=4)))
                 for addon, listed in TIERS.items()}
        in_force = month.start - timedelta(days=draw(st.sampled_from([0, 1, 31, 400])))
        dates = [in_force]
        if draw(st.booleans()):
            dates.append(in_force - timedelta(days=draw(st.integers(1, 300))))
        if draw(st.booleans()):
            dates.append(month.start + timedelta(days=draw(st.sampled_from([1, 15, 40]))))
        for effective_from in draw(st.permutations(dates)):
            text, overage = version_toml(draw, currency, effective_from, tiers)
            parts.append(text)
            if effective_from == in_force:
                terms[currency] = Terms(tiers, overage)
    return "\n".join(parts), terms


def _day(draw: st.DrawFn, month: Month) -> date:
    """A day near the month: before it (trials reach back 60 days and more), its first
    and last days, inside it, or after it (ignored). Few distinct days, so several
    events often fall on one day."""
    offsets = [-400, -61, -60, -59, -30, -1, 0, 1, 14, month.days - 1, month.days]
    offset = draw(st.sampled_from(offsets) | st.integers(-120, month.days + 2))
    return month.start + timedelta(days=offset)


def _metric(draw: st.DrawFn, o: Overage) -> int:
    """Mostly a value next to a block boundary (quota + k × block ± 1), else anywhere."""
    near = o.quota + draw(st.integers(0, 3)) * o.block + draw(st.sampled_from([-1, 0, 1]))
    return draw(st.just(max(0, near)) | st.integers(0, 200))


def _app_events(draw: st.DrawFn, app: int, month: Month, tiers: dict[str, list[int]]
                ) -> list[tuple[Any, ...]]:
    events = [(app, _day(draw, month), "plan", draw(st.sampled_from(PLANS)))
              for _ in range(draw(st.integers(0, 4)))]
    for _ in range(draw(st.integers(0, 3))):
        addon = draw(st.sampled_from(["avchatroom_unlimited", *TIERS]))
        values = ["on", "off"] if addon == "avchatroom_unlimited" else [
            "off", *map(str, tiers[addon])]
        events.append((app, _day(draw, month), addon, draw(st.sampled_from(values))))
    for _ in range(draw(st.integers(0, 3))):
        events.append((app, _day(draw, month), "av_call", draw(st.sampled_from(["on", "off"]))))
    return events


@dataclass(frozen=True)
class DrawnMonth:
    """A drawn input month, how many usage files it is written to, and the month billed."""

    builder: MonthBuilder
    usage_files: int
    month: Month


def _usage(draw: st.DrawFn, b: MonthBuilder, app: int, month: Month, terms: Terms) -> None:
    for day in draw(st.lists(st.integers(1, month.days), max_size=6, unique=True)):
        b.day(app, month.start.replace(day=day),
              dau=_metric(draw, terms.overage["dau_overage"]),
              groups=_metric(draw, terms.overage["group_overage"]))


@st.composite
def months(draw: st.DrawFn) -> DrawnMonth:
    month = draw(st.sampled_from(MONTHS))
    customer_ids = draw(st.lists(st.sampled_from(CUSTOMER_IDS), min_size=1, max_size=4,
                                 unique=True))
    currency_of = {c: draw(st.sampled_from(CURRENCIES)) for c in customer_ids}
    pricebook, terms = pricebook_for(draw, sorted(set(currency_of.values())), month)
    b = MonthBuilder(pricebook=pricebook)
    app_ids = iter(draw(st.lists(st.integers(-1000, 2**40), min_size=12, max_size=12,
                                 unique=True)))
    events = []
    for customer in customer_ids:
        b.customer(customer, currency=currency_of[customer],
                   country=draw(st.sampled_from(COUNTRIES)))
        for _ in range(draw(st.integers(1, 3))):
            app = next(app_ids)
            b.app(app, customer, plan=None)
            events += _app_events(draw, app, month, terms[currency_of[customer]].tiers)
            _usage(draw, b, app, month, terms[currency_of[customer]])
    duplicate = draw(st.booleans())
    if duplicate and b.usage:  # an exact duplicate row, which the product collapses
        b.usage.append(draw(st.sampled_from(b.usage)))
    b.usage = draw(st.permutations(b.usage))
    b.events = draw(st.permutations(events))  # the file order decides same-day events
    return DrawnMonth(b, draw(st.integers(1, 3)), month)


SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@given(months())
@SETTINGS
def test_product_agrees_with_the_reference_on_random_months(drawn: DrawnMonth) -> None:
    assert_same_bill(drawn.builder, drawn.month, drawn.usage_files)


# --- extreme values -------------------------------------------------------------------------

OCT = Month(2026, 10)


def usd_pricebook(policy: str = "month_start", quota: int = 10000, block: int = 10000) -> str:
    """`PRICEBOOK_USD` with both overage metrics at the given quota and block."""
    text = PRICEBOOK_USD.format(policy=policy)
    for default in ("10000", "100000"):
        old = f"free_quota = {default}\nblock = {default}\n"
        assert old in text
        text = text.replace(old, f"free_quota = {quota}\nblock = {block}\n")
    return text


def busy_app(b: MonthBuilder, app: int, customer: str, dau: int = 25_000,
             groups: int = 250_001) -> MonthBuilder:
    """An app with every kind of line: a plan change, overage, a tiered add-on, live
    groups, and an A/V call whose trial ended in the month."""
    b.app(app, customer, plan="pro", since=date(2026, 1, 1))
    b.event(app, date(2026, 10, 20), "plan", "flagship")
    b.event(app, date(2026, 10, 10), "group_member_limit", "3000")
    b.event(app, date(2026, 10, 3), "avchatroom_unlimited", "on")
    b.event(app, date(2026, 8, 15), "av_call", "on")
    for day, scale in ((2, 1), (12, 3), (25, 2)):
        b.day(app, date(2026, 10, day), dau=dau * scale // 3, groups=groups * scale // 3)
    return b


@pytest.mark.parametrize("policy", ["month_start", "prorate_daily"])
@pytest.mark.parametrize("app_id", [2**62, 2**63 - 1, 2**57, -5, -(2**57), -(2**63)])
def test_an_app_id_anywhere_in_int64_is_billed_exactly(app_id: int, policy: str) -> None:
    b = MonthBuilder(pricebook=usd_pricebook(policy)).customer("C1").customer("C2", country="KR")
    busy_app(b, app_id, "C1")
    busy_app(b, 7, "C2", dau=10_001, groups=100_000)
    assert_same_bill(b, OCT)


def test_neighbouring_ids_at_both_ends_of_int64_stay_apart() -> None:
    b = MonthBuilder(pricebook=usd_pricebook()).customer("C1").customer("C2")
    for n, app_id in enumerate([2**63 - 1, 2**63 - 2, -(2**63), -(2**63) + 1, 0]):
        busy_app(b, app_id, "C1" if n % 2 else "C2", dau=10_000 * (n + 1) + 1)
    assert_same_bill(b, OCT)


@pytest.mark.parametrize(("quota", "block", "value"), [
    (0, 1, 10**15),
    (0, 1, 10**15 - 1),
    (10**15 - 1, 1, 10**15),
    (0, 10**15, 10**15),
    (1, 10**15, 10**15),
    (10000, 10000, 10**15),
])
def test_metrics_up_to_10_15_are_priced_exactly(quota: int, block: int, value: int) -> None:
    b = MonthBuilder(pricebook=usd_pricebook(quota=quota, block=block)).customer("C1")
    b.app(1, "C1", plan="flagship")
    b.day(1, date(2026, 10, 5), dau=value, groups=value)
    b.day(1, date(2026, 10, 6), dau=value - 1, groups=value)  # the peak is the first day
    b.app(2, "C1", plan="pro")
    b.day(2, date(2026, 10, 31), dau=value, groups=0)
    assert_same_bill(b, OCT)


@pytest.mark.parametrize("value", [0, 1, 2, 3])
def test_quota_0_and_blocks_of_1_bill_every_unit(value: int) -> None:
    b = MonthBuilder(pricebook=usd_pricebook(quota=0, block=1)).customer("C1")
    b.app(1, "C1", plan="pro")
    b.day(1, date(2026, 10, 1), dau=value, groups=value)
    assert_same_bill(b, OCT)


# --- the reference itself on hand-worked cases -----------------------------------------------


def reference_bill(builder: MonthBuilder, month: Month = OCT) -> ref.Bill:
    with tempfile.TemporaryDirectory() as tmp:
        return ref.bill_month(ref.read_inputs(builder.write(Path(tmp) / "in")),
                              month.year, month.month)


def amounts(bill: ref.Bill) -> dict[tuple[int, str, str | None], Decimal]:
    return {(ln.sdk_app_id, ln.item, ln.plan): ln.amount for ln in bill.lines}


def test_reference_blocks_follow_the_spec_example() -> None:
    """R2: quota 10,000, block 10,000: peak 10,000 -> 0 blocks; 10,001 -> 1; 20,000 -> 1;
    20,001 -> 2 (at 149.99 a block)."""
    b = MonthBuilder().customer("C1")
    for app, peak in enumerate([10_000, 10_001, 20_000, 20_001], start=1):
        b.app(app, "C1", plan="pro").day(app, date(2026, 10, 9), dau=peak, groups=0)
    blocks = {ln.sdk_app_id: ln.quantity for ln in reference_bill(b).lines
              if ln.item == "dau_overage"}
    assert blocks == {1: 0, 2: 1, 3: 1, 4: 2}
    assert amounts(reference_bill(b))[(4, "dau_overage", "pro")] == Decimal("299.98")


@pytest.mark.parametrize(("policy", "expected"), [
    ("month_start", {(1, "plan_fee", "pro"): Decimal("399.00")}),
    # 399.00 × 14 / 31 = 180.1935… and 1199.00 × 17 / 31 = 657.5161…
    ("prorate_daily", {(1, "plan_fee", "pro"): Decimal("180.19"),
                       (1, "plan_fee", "flagship"): Decimal("657.52")}),
])
def test_reference_charges_an_upgrade_on_the_15th_by_the_policy(
        policy: str, expected: dict[tuple[int, str, str | None], Decimal]) -> None:
    b = MonthBuilder(pricebook=usd_pricebook(policy)).customer("C1")
    b.app(1, "C1", plan="pro").event(1, date(2026, 10, 15), "plan", "flagship")
    assert amounts(reference_bill(b)) == expected


def test_reference_ends_the_av_call_trial_after_trial_days() -> None:
    """Switched on on Aug 15 with a 60-day trial: free until Oct 13. September is
    inside the trial (a zero line), October has active days after it (59.00)."""
    b = MonthBuilder().customer("C1").app(1, "C1", plan="free")
    b.event(1, date(2026, 8, 15), "av_call", "on")
    sept = [ln for ln in reference_bill(b, Month(2026, 9)).lines if ln.item == "av_call"]
    octo = [ln for ln in reference_bill(b, OCT).lines if ln.item == "av_call"]
    assert [(ln.quantity, ln.amount, ln.evidence) for ln in sept] == [
        (0, Decimal("0.00"), (("trial_end", date(2026, 10, 13)),))]
    assert [(ln.quantity, ln.amount) for ln in octo] == [(1, Decimal("59.00"))]


def test_reference_taxes_the_subtotal_and_numbers_by_byte_order() -> None:
    """KR pays 10 % of the subtotal; numbers go to non-zero totals in byte order of the
    customer id ("C10" < "C9" < "c1"); the Free-only customer "B" has none."""
    b = MonthBuilder()
    for customer in ("c1", "C9", "C10", "B"):
        b.customer(customer, country="KR" if customer == "C9" else "US")
    b.app(1, "c1").app(2, "C9").app(3, "C10").app(4, "B", plan="free")
    invoices = {i.customer_id: (i.subtotal, i.tax, i.total, i.invoice_number)
                for i in reference_bill(b).invoices}
    assert invoices == {
        "B": (Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), None),
        "C10": (Decimal("399.00"), Decimal("0.00"), Decimal("399.00"), "IM-202610-000001"),
        "C9": (Decimal("399.00"), Decimal("39.90"), Decimal("438.90"), "IM-202610-000002"),
        "c1": (Decimal("399.00"), Decimal("0.00"), Decimal("399.00"), "IM-202610-000003"),
    }


@pytest.mark.parametrize(("fee", "expected"), [
    ("399.01", Decimal("199.51")),  # 399.01 × 15 / 30 = 199.505 exactly: a tie, rounded up
    ("0.01", Decimal("0.01")),      # 0.01 × 15 / 30 = 0.005
])
def test_a_prorated_fee_is_rounded_once_on_a_tie(fee: str, expected: Decimal) -> None:
    """R1 and R7: fee × days / days_in_month, rounded once. Rounding a daily rate first
    (399.01 / 30 = 13.300333… -> 13.300333, × 15 = 199.504995) would give 199.50."""
    book = usd_pricebook("prorate_daily").replace('pro = "399.00"', f'pro = "{fee}"')
    b = MonthBuilder(pricebook=book).customer("C1")
    b.app(1, "C1", plan="free", since=date(2026, 1, 1)).event(1, date(2026, 11, 16), "plan", "pro")
    nov = Month(2026, 11)
    assert amounts(reference_bill(b, nov))[(1, "plan_fee", "pro")] == expected
    assert_same_bill(b, nov)
