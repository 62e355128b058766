"""Properties of the charges on random small months (Hypothesis).

Each example is a month of 1-3 customers (US or KR), 1-2 apps each on a random plan
(or none) with an optional plan change and add-on in October, a few usage days, and
a price book with random quotas, block sizes, prices (some finer than a cent) and
tax rate, so the block arithmetic and the one rounding of R7 are hit at every size.
The month is written by `MonthBuilder` into a temporary folder and priced with
`compute_month` (load and validation included).

* R2/R3: for every overage line, ``blocks = ceil(max(0, peak - quota) / block)`` and
  ``amount = round_half_up(blocks × price)`` (= blocks × price for a price in cents),
  the peak being the highest value on a Pro/Flagship day, computed here independently;
* charges never decrease when one day's dau or group_count grows;
* per invoice, subtotal = sum of its lines, tax = round_half_up(subtotal × rate) and
  total = subtotal + tax;
* the same inputs, written to two different folders, give identical frames.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoicing.assemble.computed import Computed
from invoicing.core.money import round_half_up
from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month
from tests.builders import PRICEBOOK_USD, MonthBuilder, d

OCT = Month(2026, 10)
SETTINGS = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PAID = ("pro", "flagship")


@dataclass
class Scenario:
    """A drawn month and the facts the test needs to recompute charges by hand."""

    builder: MonthBuilder
    quota: dict[str, int]
    block: dict[str, int]
    price: dict[str, Decimal]
    tax_kr: Decimal
    #: app -> (plan from Jan 1 or None, (day, plan) of an October change or None)
    plans: dict[int, tuple[str | None, tuple[int, str] | None]] = field(default_factory=dict)

    def plan_on(self, app: int, day: date) -> str | None:
        initial, change = self.plans[app]
        if change is not None and day.day >= change[0]:
            return change[1]
        return initial


def pricebook_text(quota: dict[str, int], block: dict[str, int], price: dict[str, Decimal],
                   tax_kr: Decimal, policy: str) -> str:
    text = PRICEBOOK_USD.format(policy=policy)
    for section, default_quota in (("dau_overage", 10000), ("group_overage", 100000)):
        old = (f"[version.{section}]\nfree_quota = {default_quota}\nblock = {default_quota}\n"
               'price_per_block = "149.99"\n')
        new = (f"[version.{section}]\nfree_quota = {quota[section]}\nblock = {block[section]}\n"
               f'price_per_block = "{price[section]}"\n')
        assert old in text
        text = text.replace(old, new)
    return text.replace('KR = "0.10"', f'KR = "{tax_kr}"')


PRICES = st.sampled_from(["149.99", "0.01", "7", "12.345", "0.005", "1000"]).map(Decimal)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    quota = {"dau_overage": draw(st.integers(0, 100)),
             "group_overage": draw(st.integers(0, 1000))}
    block = {"dau_overage": draw(st.integers(1, 60)),
             "group_overage": draw(st.integers(1, 700))}
    price = {"dau_overage": draw(PRICES), "group_overage": draw(PRICES)}
    tax_kr = draw(st.sampled_from(["0.10", "0.075", "0"]).map(Decimal))
    policy = draw(st.sampled_from(["month_start", "prorate_daily"]))
    b = MonthBuilder(pricebook=pricebook_text(quota, block, price, tax_kr, policy))
    s = Scenario(b, quota, block, price, tax_kr)
    app = 1
    for c in range(1, draw(st.integers(1, 3)) + 1):
        customer = f"c{c}"
        b.customer(customer, country=draw(st.sampled_from(["US", "KR"])))
        for _ in range(draw(st.integers(1, 2))):
            initial = draw(st.sampled_from([None, "free", "pro", "flagship"]))
            b.app(app, customer, plan=initial)
            change = draw(st.none() | st.tuples(st.integers(2, 31),
                                                 st.sampled_from(["free", "pro", "flagship"])))
            if change is not None:
                b.event(app, d(change[0]), "plan", change[1])
            if draw(st.booleans()):
                b.event(app, d(draw(st.integers(1, 31))), "history_retention_days", "60")
            s.plans[app] = (initial, change)
            for day in draw(st.lists(st.integers(1, 31), max_size=4, unique=True)):
                b.day(app, d(day), dau=draw(st.integers(0, 400)),
                      groups=draw(st.integers(0, 4000)))
            app += 1
    return s


def compute(builder: MonthBuilder) -> Computed:
    with tempfile.TemporaryDirectory() as tmp:
        return compute_month(builder.write(Path(tmp) / "in"), OCT)


def totals(c: Computed) -> dict[str, Decimal]:
    return dict(c.assembled.invoices.select("customer_id", "total").iter_rows())


METRIC = {"dau_overage": 2, "group_overage": 3}  # position in a usage row


@given(scenarios())
@SETTINGS
def test_overage_is_whole_blocks_of_the_excess_over_the_peak(s: Scenario) -> None:
    c = compute(s.builder)
    lines = c.assembled.line_items.filter(pl.col("item").is_in(list(METRIC))).to_dicts()
    expected: dict[tuple[int, str], int] = {}
    for row in s.builder.usage:
        app, day = row[0], row[1]
        if s.plan_on(app, day) in PAID:
            for item, pos in METRIC.items():
                expected[(app, item)] = max(expected.get((app, item), 0), row[pos])
    assert {(ln["sdk_app_id"], ln["item"]): ln["peak_value"] for ln in lines} == expected
    for ln in lines:
        item = ln["item"]
        excess = max(0, ln["peak_value"] - s.quota[item])
        blocks = -(-excess // s.block[item])
        assert (ln["free_quota"], ln["block"]) == (s.quota[item], s.block[item])
        assert ln["quantity"] == blocks
        assert ln["unit_price"] == s.price[item]
        assert ln["amount"] == round_half_up(blocks * s.price[item], 2)
        if s.price[item] == s.price[item].quantize(Decimal("0.01")):
            assert ln["amount"] == blocks * s.price[item]


@st.composite
def growths(draw: st.DrawFn) -> tuple[Scenario, int, int, int]:
    s = draw(scenarios().filter(lambda s: s.builder.usage))
    row = draw(st.integers(0, len(s.builder.usage) - 1))
    pos = draw(st.sampled_from([2, 3]))
    delta = draw(st.integers(1, 2000) | st.sampled_from([1, s.block["dau_overage"]]))
    return s, row, pos, delta


@given(growths())
@SETTINGS
def test_charges_never_decrease_when_usage_grows(case: tuple[Scenario, int, int, int]) -> None:
    s, index, pos, delta = case
    before = totals(compute(s.builder))
    grown = list(s.builder.usage[index])
    grown[pos] += delta
    s.builder.usage[index] = tuple(grown)
    after = totals(compute(s.builder))
    assert after.keys() == before.keys()
    for customer, total in before.items():
        assert after[customer] >= total, (customer, index, pos, delta)


@given(scenarios())
@SETTINGS
def test_invoice_sums_its_lines_and_adds_tax(s: Scenario) -> None:
    c = compute(s.builder)
    countries = {r["customer_id"]: r["country"] for r in s.builder.customers}
    lines = c.assembled.line_items
    assert lines["amount"].to_list() == [round_half_up(a, 2) for a in lines["amount"]]
    for inv in c.assembled.invoices.to_dicts():
        own = lines.filter(pl.col("customer_id") == inv["customer_id"])
        assert inv["subtotal"] == sum(own["amount"].to_list(), Decimal(0))
        rate = s.tax_kr if countries[inv["customer_id"]] == "KR" else Decimal(0)
        assert inv["tax"] == round_half_up(inv["subtotal"] * rate, 2)
        assert inv["total"] == inv["subtotal"] + inv["tax"]
        assert (inv["invoice_number"] is None) == (inv["total"] == 0)
        assert own["invoice_number"].to_list() == [inv["invoice_number"]] * own.height


def frames(c: Computed) -> dict[str, Any]:
    return {
        "line_items": c.assembled.line_items,
        "invoices": c.assembled.invoices,
        "rejected": c.usage.rejected,
        "anomalies": c.anomalies,
        "plan_periods": c.plan_periods,
    }


@given(scenarios())
@SETTINGS
def test_same_inputs_give_identical_frames(s: Scenario) -> None:
    first, second = compute(s.builder), compute(s.builder)
    assert first.run_id == second.run_id
    assert first.usage.counts == second.usage.counts
    for name, frame in frames(first).items():
        assert frame.equals(frames(second)[name]), name
