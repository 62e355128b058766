"""Each billing rule R1-R10 on a tiny month, with exact amounts.

The months are written with `MonthBuilder` and priced through `compute_month`, so
every rule is exercised through loading and validation exactly as a real run would.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from invoicing.assemble.computed import Computed
from invoicing.core.errors import InputError
from invoicing.core.timeframe import Month
from invoicing.pipeline import compute_month
from tests.builders import PRICEBOOK_KRW, PRICEBOOK_USD, MonthBuilder, d

OCT = Month(2026, 10)


def compute(b: MonthBuilder, tmp_path: Path, month: Month = OCT, **kw: Any) -> Computed:
    return compute_month(b.write(tmp_path / "in"), month, **kw)


def lines(c: Computed, app: int | None = None, item: str | None = None) -> list[dict[str, Any]]:
    frame = c.assembled.line_items
    if app is not None:
        frame = frame.filter(pl.col("sdk_app_id") == app)
    if item is not None:
        frame = frame.filter(pl.col("item") == item)
    return frame.to_dicts()


def amounts(c: Computed, app: int) -> dict[str, Decimal]:
    return {r["item"]: r["amount"] for r in lines(c, app)}


def invoice(c: Computed, customer: str) -> dict[str, Any]:
    return c.assembled.invoices.filter(pl.col("customer_id") == customer).to_dicts()[0]


# --- R1 plan fee -------------------------------------------------------------------------


def test_r1_month_start_charges_the_plan_in_force_on_the_first(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1")
    b.app(1, "c1", plan="free").event(1, d(15), "plan", "pro")  # upgrade: charged from Nov
    b.app(2, "c1", plan="flagship").event(2, d(15), "plan", "pro")  # downgrade: old plan
    b.app(3, "c1", plan="pro", since=d(10))  # created mid-month: no plan fee
    b.app(4, "c1", plan="pro", since=d(1))  # created on the 1st: full fee
    c = compute(b, tmp_path)
    fee = {r["sdk_app_id"]: (r["plan"], r["amount"]) for r in lines(c, item="plan_fee")}
    assert fee == {
        1: ("free", Decimal("0")),
        2: ("flagship", Decimal("1199.00")),
        4: ("pro", Decimal("399.00")),
    }


def test_r1_prorate_daily_charges_days_on_each_plan(tmp_path: Path) -> None:
    b = MonthBuilder(pricebook=PRICEBOOK_USD.format(policy="prorate_daily")).customer("c1")
    b.app(1, "c1", plan="pro").event(1, d(15), "plan", "flagship")
    b.app(2, "c1", plan="pro", since=d(10))  # 22 days
    c = compute(b, tmp_path)
    got = {(r["sdk_app_id"], r["plan"]): (r["days_on_plan"], r["amount"])
           for r in lines(c, item="plan_fee")}
    # 399 × 14 / 31 = 180.193548… → 180.19; 1199 × 17 / 31 = 657.516129… → 657.52
    # 399 × 22 / 31 = 283.161290… → 283.16
    assert got == {
        (1, "pro"): (14, Decimal("180.19")),
        (1, "flagship"): (17, Decimal("657.52")),
        (2, "pro"): (22, Decimal("283.16")),
    }
    assert all(r["days_in_month"] == 31 for r in lines(c, item="plan_fee"))


def test_r1_same_day_events_resolve_to_the_later_row(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1").app(1, "c1", plan="pro", since=d(1))
    b.event(1, d(1), "plan", "flagship")
    c = compute(b, tmp_path)
    assert lines(c, 1, "plan_fee")[0]["plan"] == "flagship"


# --- R2 / R3 overage -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peak", "blocks", "amount"),
    [(10_000, 0, "0"), (10_001, 1, "149.99"), (20_000, 1, "149.99"), (20_001, 2, "299.98")],
)
def test_r2_dau_blocks_at_the_boundaries(tmp_path: Path, peak: int, blocks: int, amount: str
                                         ) -> None:
    b = MonthBuilder().customer("c1").app(1, "c1", plan="pro")
    b.day(1, d(3), dau=peak - 5000).day(1, d(7), dau=peak).day(1, d(9), dau=peak)
    line = lines(compute(b, tmp_path), 1, "dau_overage")[0]
    assert (line["quantity"], line["amount"]) == (blocks, Decimal(amount))
    assert line["peak_value"] == peak
    assert line["peak_date"] == d(7)  # the first day of the peak
    assert (line["free_quota"], line["block"], line["excess"]) == (10_000, 10_000,
                                                                   max(0, peak - 10_000))
    assert line["unit_price"] == Decimal("149.99")


def test_r2_days_on_free_never_bill_dau(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1").app(1, "c1", plan="free").event(1, d(15), "plan", "pro")
    b.day(1, d(2), dau=90_000).day(1, d(20), dau=10_001)
    line = lines(compute(b, tmp_path), 1, "dau_overage")[0]
    assert (line["peak_value"], line["peak_date"], line["quantity"]) == (10_001, d(20), 1)


def test_r2_downgrade_keeps_counting_paid_days(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1").app(1, "c1", plan="flagship").event(1, d(15), "plan", "pro")
    b.day(1, d(5), dau=30_001).day(1, d(20), dau=15_000)
    line = lines(compute(b, tmp_path), 1, "dau_overage")[0]
    assert (line["plan"], line["quantity"], line["amount"]) == ("flagship", 3, Decimal("449.97"))


def test_r3_group_overage(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1").app(1, "c1", plan="flagship")
    b.day(1, d(1), groups=100_000).day(1, d(2), groups=100_001).day(1, d(3), groups=200_001)
    line = lines(compute(b, tmp_path), 1, "group_overage")[0]
    assert (line["peak_value"], line["peak_date"], line["quantity"], line["amount"]) == (
        200_001, d(3), 2, Decimal("299.98"))


# --- R4 / R5 add-ons -------------------------------------------------------------------------


def test_r4_addons_full_price_highest_tier_and_included(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1")
    b.app(1, "c1", plan="pro")
    b.event(1, d(1, 9), "group_member_limit", "3000").event(1, d(12), "group_member_limit", "6000")
    b.event(1, d(20), "history_retention_days", "60")  # one day is enough: full price
    b.event(1, d(31), "avchatroom_unlimited", "on")
    b.event(1, d(1, 8), "groups_per_user", "2000").event(1, d(1, 9), "groups_per_user", "off")
    b.app(2, "c1", plan="flagship").event(2, d(1, 9), "avchatroom_unlimited", "on")
    c = compute(b, tmp_path)
    assert amounts(c, 1) == {
        "plan_fee": Decimal("399.00"),
        "avchatroom_unlimited": Decimal("99.00"),
        "group_member_limit": Decimal("99.00"),
        "history_retention_days": Decimal("29.00"),
    }
    gml = lines(c, 1, "group_member_limit")[0]
    assert (gml["tier"], gml["active_days"], gml["first_active"], gml["last_active"]) == (
        "6000", 31, d(1), d(31))
    hist = lines(c, 1, "history_retention_days")[0]
    assert (hist["tier"], hist["active_days"], hist["first_active"]) == ("60", 12, d(20))
    # Flagship includes unlimited live-broadcast groups: not charged.
    assert amounts(c, 2) == {"plan_fee": Decimal("1199.00")}


def test_r4_addon_counts_only_on_days_it_exceeds_the_plan(tmp_path: Path) -> None:
    # avchatroom_unlimited is included on Flagship; on the Pro days it is charged.
    b = MonthBuilder().customer("c1").app(1, "c1", plan="flagship")
    b.event(1, d(20), "plan", "pro").event(1, d(1, 9), "avchatroom_unlimited", "on")
    c = compute(b, tmp_path)
    line = lines(c, 1, "avchatroom_unlimited")[0]
    assert (line["amount"], line["plan"]) == (Decimal("99.00"), "pro")


# --- R6 av_call ------------------------------------------------------------------------------


def test_r6_av_call_trial(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1")
    b.app(1, "c1", plan="pro").event(1, d(1, 9), "av_call", "on")  # trial ends Oct 30
    b.app(2, "c1", plan="pro").event(2, d(5), "av_call", "on")  # trial ends Dec 3
    b.app(3, "c1", plan="free").event(3, d(1, 8), "av_call", "on")  # Free: still billable
    b.app(4, "c1", plan="pro").event(4, d(1, 8), "av_call", "on").event(4, d(1, 9), "av_call",
                                                                          "off")
    b.event(4, d(1), "av_call", "on")  # back on: the trial does not restart
    c = compute(b, tmp_path)
    one, two, three, four = (lines(c, a, "av_call")[0] for a in (1, 2, 3, 4))
    assert (one["amount"], one["trial_end"]) == (Decimal("59.00"), d(30))
    assert (two["amount"], two["quantity"], two["trial_end"]) == (Decimal("0"), 0, d(3, 12))
    assert "free trial until 2026-12-03" in two["description"]
    assert (three["amount"], three["trial_end"]) == (Decimal("59.00"), d(29, 9))  # Aug 1 + 59
    assert four["amount"] == Decimal("59.00")


# --- R7 money --------------------------------------------------------------------------------


def test_r7_krw_rounds_half_up_to_whole_won(tmp_path: Path) -> None:
    b = MonthBuilder(pricebook=PRICEBOOK_KRW.format(policy="month_start"))
    b.customer("k1", currency="KRW", country="KR", locale="ko_KR")
    b.app(1, "k1", plan="pro").event(1, d(1), "history_retention_days", "60")
    inv = invoice(compute(b, tmp_path), "k1")
    # 549,000 + 39,905 = 588,905; tax 58,890.5 → 58,891 (half-up, 0 decimals)
    assert (inv["subtotal"], inv["tax"], inv["total"]) == (
        Decimal("588905"), Decimal("58891"), Decimal("647796"))


def test_r7_krw_prorated_line_rounds_once(tmp_path: Path) -> None:
    b = MonthBuilder(pricebook=PRICEBOOK_KRW.format(policy="prorate_daily"))
    b.customer("k1", currency="KRW", country="KR", locale="ko_KR")
    b.app(1, "k1", plan="pro", since=d(15))  # 17 days: 549,000 × 17 / 31 = 301,064.51… → 301,065
    assert amounts(compute(b, tmp_path), 1) == {"plan_fee": Decimal("301065")}


def test_r7_tax_rounds_half_up_not_to_even(tmp_path: Path) -> None:
    book = PRICEBOOK_USD.format(policy="month_start").replace('pro = "399.00"', 'pro = "0.05"')
    b = MonthBuilder(pricebook=book).customer("c1", country="KR").app(1, "c1", plan="pro")
    inv = invoice(compute(b, tmp_path), "c1")
    # 0.05 × 0.10 = 0.005 → 0.01 half-up (banker's rounding would give 0.00)
    assert (inv["subtotal"], inv["tax"], inv["total"]) == (
        Decimal("0.05"), Decimal("0.01"), Decimal("0.06"))


def test_r7_subtotal_is_sum_of_rounded_lines(tmp_path: Path) -> None:
    b = MonthBuilder(pricebook=PRICEBOOK_USD.format(policy="prorate_daily"))
    b.customer("c1", country="KR")
    b.app(1, "c1", plan="pro", since=d(2)).app(2, "c1", plan="pro", since=d(2))
    inv = invoice(compute(b, tmp_path), "c1")
    # each: 399 × 30/31 = 386.129… → 386.13; two lines 772.26 (not round(772.258…) = 772.26
    # by coincidence) ; tax 77.226 → 77.23
    assert (inv["subtotal"], inv["tax"], inv["total"]) == (
        Decimal("772.26"), Decimal("77.23"), Decimal("849.49"))


def test_r7_money_columns_are_decimal(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1").app(1, "c1")
    c = compute(b, tmp_path)
    for frame, cols in ((c.assembled.line_items, ("unit_price", "amount")),
                        (c.assembled.invoices, ("subtotal", "tax", "total", "tax_rate"))):
        for col in cols:
            assert isinstance(frame.schema[col], pl.Decimal), col


# --- R8 price-book versions ------------------------------------------------------------------


def _versions(*effective: str) -> str:
    base = PRICEBOOK_USD.format(policy="month_start")
    return "\n".join(
        base.replace("effective_from = 2026-01-01", f"effective_from = {e}")
        .replace('pro = "399.00"', f'pro = "{100 + i}.00"')
        for i, e in enumerate(effective)
    )


def test_r8_latest_version_on_or_before_the_first(tmp_path: Path) -> None:
    b = MonthBuilder(pricebook=_versions("2025-01-01", "2026-10-01", "2026-10-02"))
    b.customer("c1").app(1, "c1")
    c = compute(b, tmp_path)
    line = lines(c, 1, "plan_fee")[0]
    assert (line["amount"], line["pricebook_version"]) == (Decimal("101.00"), "USD@2026-10-01")
    c_sep = compute_month(tmp_path / "in", Month(2026, 9))
    assert lines(c_sep, 1, "plan_fee")[0]["pricebook_version"] == "USD@2025-01-01"


def test_r8_no_version_stops_and_names_customers(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1").customer("k2", currency="KRW").customer("k1",
                                                                               currency="KRW")
    b.app(1, "c1")
    with pytest.raises(InputError, match=r"no KRW version effective on 2026-10-01 for "
                                         r"customers k1, k2"):
        compute(b, tmp_path)


# --- R9 anomalies ----------------------------------------------------------------------------


def test_r9_breaches_are_reported_not_billed(tmp_path: Path) -> None:
    b = MonthBuilder().customer("c1")
    b.app(1, "c1", plan="free").day(1, d(3), dau=101).day(1, d(4), dau=100)
    b.app(2, "c1", plan="pro").day(2, d(3), live=51).day(2, d(4), live=60)
    b.app(3, "c1", plan="pro").event(3, d(1, 9), "avchatroom_unlimited", "on").day(3, d(3),
                                                                                 live=500)
    b.app(4, "c1", plan="free").event(4, d(10), "groups_per_user", "2000")
    c = compute(b, tmp_path)
    got = {(r["sdk_app_id"], r["kind"]): (r["limit"], r["max_observed"], r["days"],
                                         r["first_date"])
           for r in c.anomalies.to_dicts()}
    assert got == {
        (1, "free_dau_over_cap"): (100, 101, 1, d(3)),
        (2, "live_groups_over_limit"): (50, 60, 2, d(3)),
        (4, "addon_on_free_plan"): (None, None, 22, d(10)),
    }
    # Not billed differently: app 1 pays Free's 0 and no overage; app 4 pays its add-on.
    assert amounts(c, 1) == {"plan_fee": Decimal("0")}
    assert amounts(c, 4) == {"plan_fee": Decimal("0"), "groups_per_user": Decimal("49.00")}


def test_r9_rows_of_the_plan_limit_table_that_need_two_days_or_the_plan_log(tmp_path: Path
                                                                           ) -> None:
    b = MonthBuilder().customer("c1")
    # Net new groups per day (every plan): the increase over the day before, only
    # between consecutive days (Oct 5 -> Oct 7 is not one day).
    b.app(1, "c1", plan="flagship").day(1, d(3), groups=1_000).day(1, d(4), groups=11_001)
    b.day(1, d(5), groups=21_001).day(1, d(7), groups=90_000)
    # Free peak group count (Free bills no group overage) and non-live groups on Free.
    b.app(2, "c1", plan="free").day(2, d(3), groups=100_001)
    # On Pro from Oct 10 (22 of 31 days), not on Oct 1: no plan fee under month_start.
    b.app(3, "c1", plan="free").event(3, d(10), "plan", "pro")
    # On Pro from Oct 17 (15 days): not most of the month.
    b.app(4, "c1", plan="free").event(4, d(17), "plan", "pro")
    c = compute(b, tmp_path)
    got = {(r["sdk_app_id"], r["kind"]): (r["limit"], r["max_observed"], r["days"],
                                         r["first_date"], r["last_date"])
           for r in c.anomalies.to_dicts()}
    assert got == {
        (1, "net_new_groups_over_limit"): (10_000, 10_001, 1, d(4), d(4)),
        (2, "free_group_count_over_limit"): (100_000, 100_001, 1, d(3), d(3)),
        (2, "free_non_live_groups_over_limit"): (100, 100_001, 1, d(3), d(3)),
        (3, "paid_plan_not_on_first"): (None, None, 22, d(10), d(31)),
    }
    assert amounts(c, 3) == {"plan_fee": Decimal("0")}
    # Under prorate_daily the paid days are charged: nothing to report.
    b.pricebook = PRICEBOOK_USD.format(policy="prorate_daily")
    prorated = compute(b, tmp_path / "prorated")
    assert "paid_plan_not_on_first" not in prorated.anomalies["kind"].to_list()


# --- R10 invoice numbers ---------------------------------------------------------------------


def test_r10_numbers_follow_customer_id_without_gaps(tmp_path: Path) -> None:
    b = MonthBuilder()
    for cid in ("c3", "c1", "c0-free", "c2"):
        b.customer(cid)
    b.app(1, "c3").app(2, "c1").app(3, "c0-free", plan="free").app(4, "c2")
    c = compute(b, tmp_path)
    got = dict(zip(c.assembled.invoices["customer_id"], c.assembled.invoices["invoice_number"],
                   strict=True))
    assert got == {"c0-free": None, "c1": "IM-202610-000001", "c2": "IM-202610-000002",
                   "c3": "IM-202610-000003"}
    again = compute_month(tmp_path / "in", OCT)
    assert again.assembled.invoices.equals(c.assembled.invoices)
    assert again.assembled.line_items.equals(c.assembled.line_items)
