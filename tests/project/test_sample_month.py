"""End to end: the sample month 2026-10 gives the invoices worked out by hand.

HAND-DERIVED NUMBERS. Every amount in ``EXPECTED_INVOICES``, ``EXPECTED_APP_TOTALS`` and
``EXPECTED_CURRENCY_TOTALS`` below was worked out by hand from the scenarios in
`sample_data/generate.py` (see `sample_data/README.md`) and the price book
`sample_data/2026-10/pricebook.toml`; none of them comes from running the engine. So are
the counts ``EXPECTED_REJECTED_APP_IDS``, ``EXPECTED_DUPLICATES`` and
``EXPECTED_ANOMALY_APPS``. The comment above each customer shows the arithmetic.

Conventions assumed (SPEC plus the lead's decisions):
  * price-book version = customer's currency, latest effective_from <= 2026-10-01: USD@2026-01-01
    (not 2025-01-01, not 2026-11-01), KRW@2026-01-01, CNY@2026-01-01 (prorate_daily),
    EUR@2026-01-01;
  * plan on a day = latest plan event with effective_date <= day (same date: later row wins);
    no plan before an app's first plan event (no fee, no overage);
  * month_start: plan fee of the plan on Oct 1; prorate_daily: per plan,
    round_half_up(fee x days_on_plan / 31);
  * overage: peak over the Pro/Flagship days only, blocks = ceil(max(0, peak - quota) / block);
  * add-on: counted on days where it is active and its tier exceeds what that day's plan
    includes; charged once at the full price of the highest counted tier (also on Free: R9);
  * av_call: last free day = first-ever "on" + trial_days - 1; paid if active after it;
  * R7: lines rounded once half-up (USD/CNY 0.01, KRW 1); tax = round_half_up(subtotal x rate);
  * R10: IM-202610-NNNNNN over non-zero totals in ascending customer_id.

Prices used (USD@2026-01-01 / KRW@2026-01-01 / CNY@2026-01-01):
  pro 399.00 / 549000 / 999.00        flagship 1199.00 / 1649000 / 2999.00
  DAU and group block 149.99 / 206000 / 1000.00 (quota 10,000 DAU, 100,000 groups)
  avchatroom_unlimited 99.00 / 136000 / 699.00
  group_member_limit 3000: 49.00 / 67000 / 339.00   6000: 99.00 / 136000 / 699.00
  groups_per_user 2000: 49.00 / 67000 / 339.00      3000: 99.00 / 136000 / 699.00
  history_retention_days 60: 29.00 / 39905 / 199.00  90: 49.00 / 67000 / 339.00
  av_call 59.00 / 81000 / 399.00 (trial 60 days)
  tax: KR 0.10 (USD and KRW versions), CN 0.06 (CNY version), US none.
EUR@2026-01-01: pro 369.00, flagship 1109.00, DAU and group block 139.99,
  group_member_limit 3000: 45.00, history_retention_days 90: 45.00, avchatroom_unlimited
  89.00; tax BE 0.21, DE 0.19, FR/AT/LU none.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "2026-10"
MONTH = "2026-10"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Expected:
    currency: str
    subtotal: str
    tax: str
    total: str
    invoice_number: str | None


# ----------------------------------------------------------------- hand-derived invoices
EXPECTED_INVOICES: dict[str, Expected] = {
    # C1001 Acme (USD, US: no tax)
    #   1400000101 Free->Pro Oct 15: plan on Oct 1 free 0.00; DAU peak on Pro days 12,345
    #              -> ceil(2,345/10,000) = 1 x 149.99 = 149.99 (Free-day 25,000 not counted);
    #              groups < 100,000 -> 0                                          = 149.99
    #   1400000102 Flagship->Pro Oct 15: flagship 1199.00; DAU < 10,000 -> 0;
    #              group peak 250,000 -> ceil(150,000/100,000) = 2 x 149.99 = 299.98;
    #              avchatroom counts on Pro days Oct 15-31 -> 99.00               = 1597.98
    #   1400000103 pro 399.00                                                      = 399.00
    #   subtotal 149.99 + 1597.98 + 399.00 = 2146.97; tax 0; total 2146.97
    "C1001": Expected("USD", "2146.97", "0.00", "2146.97", "IM-202610-000001"),
    # C1002 Bluebird (USD, US)
    #   1400000201 pro 399.00 + DAU 10,001 -> 1 x 149.99                          = 548.99
    #   1400000202 flagship 1199.00 + DAU 20,000 -> 1 x 149.99                    = 1348.99
    #   1400000203 pro 399.00 + DAU 20,001 -> 2 x 149.99 = 299.98                 = 698.98
    #   1400000204 no plan on Oct 1 -> no fee; DAU 10,000 -> 0 blocks              = 0.00
    #   subtotal 548.99 + 1348.99 + 698.98 + 0.00 = 2596.96; tax 0; total 2596.96
    "C1002": Expected("USD", "2596.96", "0.00", "2596.96", "IM-202610-000002"),
    # C1003 Cedar (USD, US)
    #   1400000301 pro 399.00 + avchatroom 99.00                                   = 498.00
    #   1400000302 flagship 1199.00 + avchatroom included (0)                      = 1199.00
    #   1400000303 pro 399.00 + group_member_limit 3000 49.00                      = 448.00
    #   1400000304 pro 399.00 + group_member_limit 3000->6000: 6000 99.00          = 498.00
    #   1400000305 pro 399.00 + groups_per_user 2000 49.00                         = 448.00
    #   subtotal 498 + 1199 + 448 + 498 + 448 = 3091.00; tax 0; total 3091.00
    "C1003": Expected("USD", "3091.00", "0.00", "3091.00", "IM-202610-000003"),
    # C1004 Daybreak (USD, US): all Free
    #   1400000401 free 0.00; 1400000402 free 0.00 + av_call in trial (ends 2026-12-18) 0.00
    #   total 0.00 -> no invoice number, no PDF (numbering skips it)
    "C1004": Expected("USD", "0.00", "0.00", "0.00", None),
    # C1005 Evergreen (USD, US)
    #   1400000501 flagship 1199.00 + history 90 (> 30) 49.00                      = 1248.00
    #   1400000502 pro 399.00 + history 60 from Oct 20 29.00 (full price)          = 428.00
    #   1400000503 pro 399.00; history 180 off since 2026-09-15 -> nothing         = 399.00
    #   1400000504 pro 399.00 + av_call (trial to 2026-10-30, Oct 31 paid) 59.00   = 458.00
    #   1400000505 pro 399.00 + av_call in trial (ends 2026-12-03) 0.00            = 399.00
    #   1400000506 pro 399.00 + av_call (first on 2026-06-01, trial over) 59.00    = 458.00
    #   subtotal 1248 + 428 + 399 + 458 + 399 + 458 = 3390.00; tax 0; total 3390.00
    "C1005": Expected("USD", "3390.00", "0.00", "3390.00", "IM-202610-000004"),
    # C1006 Nuritalk (USD, KR: tax 0.10)
    #   1400000601 pro 399.00 + groups 100,001 -> 1 x 149.99                      = 548.99
    #   1400000602 pro and flagship both 2026-07-01, later row flagship -> 1199.00 = 1199.00
    #   1400000603 flagship effective 2026-10-01 -> 1199.00                        = 1199.00
    #   1400000604 free 0.00 + av_call (trial ended 2026-05-30) 59.00              = 59.00
    #   1400000605 pro 399.00 (November events ignored)                            = 399.00
    #   subtotal 548.99 + 1199 + 1199 + 59 + 399 = 3404.99
    #   tax 3404.99 x 0.10 = 340.499 -> 340.50; total 3745.49
    "C1006": Expected("USD", "3404.99", "340.50", "3745.49", "IM-202610-000005"),
    # C1007 Hanbit (KRW, KR: tax 0.10)
    #   1400000701 Pro->Flagship Oct 15: pro 549000 + DAU 15,000 -> 1 x 206000     = 755000
    #   1400000702 Flagship->Pro Oct 15: flagship 1649000; groups 100,000 -> 0     = 1649000
    #   1400000703 pro 549000                                                      = 549000
    #   subtotal 755000 + 1649000 + 549000 = 2953000; tax 295300; total 3248300
    "C1007": Expected("KRW", "2953000", "295300", "3248300", "IM-202610-000006"),
    # C1008 Daon (KRW, KR)
    #   1400000801 pro 549000 + history 60 39905                                   = 588905
    #   1400000802 free 0                                                          = 0
    #   subtotal 588905; tax 58890.5 -> half-up 58891 (half-even would give 58890)
    #   total 588905 + 58891 = 647796
    "C1008": Expected("KRW", "588905", "58891", "647796", "IM-202610-000007"),
    # C1009 Baro (KRW, KR): the R9 anomalies
    #   1400000901 free 0 (DAU 180 on Oct 17: anomaly, not billed)                 = 0
    #   1400000902 pro 549000 (75 live groups on Oct 8: anomaly, not billed)       = 549000
    #   1400000903 free 0 + groups_per_user 2000 67000 (add-on on Free: anomaly)   = 67000
    #   subtotal 616000; tax 61600; total 677600
    "C1009": Expected("KRW", "616000", "61600", "677600", "IM-202610-000008"),
    # C1010 Cheongsol (KRW, KR)
    #   1400001001 flagship 1649000 + groups_per_user 3000 (> 1,000) 136000        = 1785000
    #   1400001002 pro 549000, no usage rows -> no overage                         = 549000
    #   1400001003 free 0                                                          = 0
    #   subtotal 2334000; tax 233400; total 2567400
    "C1010": Expected("KRW", "2334000", "233400", "2567400", "IM-202610-000009"),
    # C1011 Yunfan (CNY, CN: tax 0.06, prorate_daily)
    #   1400001101 Pro->Flagship Oct 23: pro 999 x 22/31 = 708.967.. -> 708.97;
    #              flagship 2999 x 9/31 = 870.677.. -> 870.68; DAU 10,001 -> 1 x 1000.00
    #              708.97 + 870.68 + 1000.00                                       = 2579.65
    #   1400001102 Flagship->Free Oct 20: flagship 2999 x 19/31 = 1838.096.. -> 1838.10;
    #              free 12 days 0.00; DAU 21,000 on a Flagship day -> 2 x 1000.00   = 3838.10
    #   subtotal 2579.65 + 3838.10 = 6417.75
    #   tax 6417.75 x 0.06 = 385.065 -> half-up 385.07 (half-even 385.06); total 6802.82
    "C1011": Expected("CNY", "6417.75", "385.07", "6802.82", "IM-202610-000010"),
    # C1012 Xinghe (CNY, CN)
    #   1400001201 first plan Pro Oct 10: 999 x 22/31 -> 708.97; DAU 30,000 -> 2 x 1000.00
    #                                                                              = 2708.97
    #   1400001202 flagship 2999 x 31/31 = 2999.00; groups 200,000 -> 1 x 1000.00;
    #              avchatroom included 0; group_member_limit 6000 699.00          = 4698.00
    #   subtotal 2708.97 + 4698.00 = 7406.97
    #   tax 7406.97 x 0.06 = 444.4182 -> 444.42; total 7851.39
    "C1012": Expected("CNY", "7406.97", "444.42", "7851.39", "IM-202610-000011"),
    # C1013 Qinghe (CNY, CN, no tax id)
    #   1400001301 pro 999.00 + avchatroom 699.00 + av_call (trial to 2026-10-29) 399.00
    #                                                                              = 2097.00
    #   1400001302 pro 999.00 + history 60 (Oct 20-24 only) 199.00                 = 1198.00
    #   1400001303 free 0.00                                                       = 0.00
    #   subtotal 3295.00; tax 3295.00 x 0.06 = 197.70; total 3492.70
    "C1013": Expected("CNY", "3295.00", "197.70", "3492.70", "IM-202610-000012"),
    # C1014 Zhixing (CNY, CN)
    #   1400001401 pro 999.00; 1400001402 pro 999.00; 1400001403 flagship 2999.00
    #   1400001404 Free->Pro Oct 15: free 14 days 0.00 + pro 999 x 17/31 = 547.838.. -> 547.84
    #   subtotal 999 + 999 + 2999 + 547.84 = 5544.84
    #   tax 5544.84 x 0.06 = 332.6904 -> 332.69; total 5877.53
    "C1014": Expected("CNY", "5544.84", "332.69", "5877.53", "IM-202610-000013"),
    # C1015 Kiezfunk (EUR, DE 19 %; EN 16931 category S)
    #   1400001501 pro 369.00 + history_retention_days 90 45.00 = 414.00 (DAU, groups: 0)
    #   1400001502 flagship 1109.00 + DAU peak 10,500 -> 1 block 139.99 = 1248.99
    #   subtotal 1662.99; tax 1662.99 x 0.19 = 315.9681 -> 315.97; total 1978.96
    "C1015": Expected("EUR", "1662.99", "315.97", "1978.96", "IM-202610-000014"),
    # C1016 Atelier Messagerie (EUR, FR: no rate in the price book; reverse charge AE)
    #   1400001601 pro 369.00 + group_member_limit 3000 45.00 = 414.00
    #   1400001602 pro 369.00 + group peak 150,000 -> 1 block 139.99 = 508.99
    #   subtotal 922.99; tax 0.00; total 922.99
    "C1016": Expected("EUR", "922.99", "0.00", "922.99", "IM-202610-000015"),
    # C1017 Kanaal Media (EUR, BE 21 %; Peppol BIS 3.0, category S)
    #   1400001701 pro 369.00 + avchatroom_unlimited 89.00 = 458.00
    #   tax 458.00 x 0.21 = 96.18; total 554.18
    "C1017": Expected("EUR", "458.00", "96.18", "554.18", "IM-202610-000016"),
    # C1018 Lernwerk (EUR, AT: no rate; exempt E) and C1019 Lumière (EUR, LU: no rate;
    # zero rated Z): 1400001801 / 1400001901 pro 369.00 each; tax 0.00
    "C1018": Expected("EUR", "369.00", "0.00", "369.00", "IM-202610-000017"),
    "C1019": Expected("EUR", "369.00", "0.00", "369.00", "IM-202610-000018"),
}

# Per-app sum of line amounts (hand-derived, same arithmetic as above).
EXPECTED_APP_TOTALS: dict[int, str] = {
    1400000101: "149.99", 1400000102: "1597.98", 1400000103: "399.00",
    1400000201: "548.99", 1400000202: "1348.99", 1400000203: "698.98", 1400000204: "0.00",
    1400000301: "498.00", 1400000302: "1199.00", 1400000303: "448.00", 1400000304: "498.00",
    1400000305: "448.00",
    1400000401: "0.00", 1400000402: "0.00",
    1400000501: "1248.00", 1400000502: "428.00", 1400000503: "399.00", 1400000504: "458.00",
    1400000505: "399.00", 1400000506: "458.00",
    1400000601: "548.99", 1400000602: "1199.00", 1400000603: "1199.00", 1400000604: "59.00",
    1400000605: "399.00",
    1400000701: "755000", 1400000702: "1649000", 1400000703: "549000",
    1400000801: "588905", 1400000802: "0",
    1400000901: "0", 1400000902: "549000", 1400000903: "67000",
    1400001001: "1785000", 1400001002: "549000", 1400001003: "0",
    1400001101: "2579.65", 1400001102: "3838.10",
    1400001201: "2708.97", 1400001202: "4698.00",
    1400001301: "2097.00", 1400001302: "1198.00", 1400001303: "0.00",
    1400001401: "999.00", 1400001402: "999.00", 1400001403: "2999.00", 1400001404: "547.84",
    1400001501: "414.00", 1400001502: "1248.99", 1400001601: "414.00", 1400001602: "508.99",
    1400001701: "458.00", 1400001801: "369.00", 1400001901: "369.00",
}

# Sum of `total` per currency (hand-derived):
#   USD 2146.97 + 2596.96 + 3091.00 + 0.00 + 3390.00 + 3745.49 = 14970.42
#   KRW 3248300 + 647796 + 677600 + 2567400 = 7141096
#   CNY 6802.82 + 7851.39 + 3492.70 + 5877.53 = 24024.44
#   EUR 1978.96 + 922.99 + 554.18 + 369.00 + 369.00 = 4194.13
EXPECTED_CURRENCY_TOTALS: dict[str, str] = {
    "USD": "14970.42",
    "KRW": "7141096",
    "CNY": "24024.44",
    "EUR": "4194.13",
}

# Planted bad usage rows (one entry per rejected row): unknown app 1400009999 twice
# (Oct 5, Oct 6), 1400000103 negative dau (Oct 12), 1400000703 dated 2026-09-30,
# 1400001001 null group_count (Oct 21), 1400001401 dated 2026-11-01.
EXPECTED_REJECTED_APP_IDS = sorted(
    [1400009999, 1400009999, 1400000103, 1400000703, 1400001001, 1400001401]
)
# Planted exact duplicates, each row exported exactly twice (so "extra copies collapsed"
# and "duplicated rows" are both 3): 1400000201 Oct 9 (same file), 1400000702 Oct 20
# (usage/region=kr/retry/), 1400001201 Oct 30 (usage/late/).
EXPECTED_DUPLICATES = 3
# R9: 101 (DAU 25,000 on a Free day), 901 (Free, DAU 180), 902 (Pro, 75 live groups without
# avchatroom_unlimited), 903 (add-on on a Free app). 604 (av_call on Free) is not one (R6).
EXPECTED_ANOMALY_APPS = {1400000101, 1400000204, 1400000901, 1400000902, 1400000903}
#: (app, kind) of every R9 row: 1400000101 and 1400000204 moved from Free to Pro on Oct 15
#: and Oct 10 (USD, month_start: no plan fee this month, reported for finance).
EXPECTED_ANOMALIES = [
    (1400000101, "free_dau_over_cap"), (1400000101, "paid_plan_not_on_first"),
    (1400000204, "paid_plan_not_on_first"), (1400000901, "free_dau_over_cap"),
    (1400000902, "live_groups_over_limit"), (1400000903, "addon_on_free_plan"),
]


# ----------------------------------------------------------------- running the batch


@pytest.fixture(scope="module")
def month_dir(sample_published: tuple[Path, str, str]) -> Path:
    """`<out>/2026-10` of the sample month, run once per test process (conftest.py)."""
    return sample_published[0] / MONTH


@pytest.fixture(scope="module")
def invoices(month_dir: Path) -> dict[str, dict[str, Any]]:
    frame = pl.read_parquet(month_dir / "invoices.parquet")
    return {row["customer_id"]: row for row in frame.iter_rows(named=True)}


def dec(value: object) -> Decimal:
    assert isinstance(value, Decimal), f"money must come back as Decimal, got {value!r}"
    return value


def test_one_invoice_row_per_customer(invoices: dict[str, dict[str, Any]]) -> None:
    assert sorted(invoices) == sorted(EXPECTED_INVOICES)


@pytest.mark.parametrize("customer_id", sorted(EXPECTED_INVOICES))
def test_invoice_amounts(invoices: dict[str, dict[str, Any]], customer_id: str) -> None:
    expected = EXPECTED_INVOICES[customer_id]
    row = invoices[customer_id]
    assert row["currency"] == expected.currency
    assert dec(row["subtotal"]) == Decimal(expected.subtotal)
    assert dec(row["tax"]) == Decimal(expected.tax)
    assert dec(row["total"]) == Decimal(expected.total)
    assert row["invoice_number"] == expected.invoice_number


def test_expected_table_is_consistent() -> None:
    """Guard the hand-derived table itself: total = subtotal + tax, numbers without gaps."""
    numbered = [c for c in sorted(EXPECTED_INVOICES) if Decimal(EXPECTED_INVOICES[c].total)]
    for n, customer_id in enumerate(numbered, start=1):
        assert EXPECTED_INVOICES[customer_id].invoice_number == f"IM-202610-{n:06d}"
    for e in EXPECTED_INVOICES.values():
        assert Decimal(e.subtotal) + Decimal(e.tax) == Decimal(e.total)
        assert (e.invoice_number is None) == (Decimal(e.total) == 0)
    for currency, total in EXPECTED_CURRENCY_TOTALS.items():
        assert sum(Decimal(e.total) for e in EXPECTED_INVOICES.values()
                   if e.currency == currency) == Decimal(total)


def test_totals_per_currency(invoices: dict[str, dict[str, Any]]) -> None:
    totals: dict[str, Decimal] = {}
    for row in invoices.values():
        totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + dec(row["total"])
    assert totals == {c: Decimal(t) for c, t in EXPECTED_CURRENCY_TOTALS.items()}


def test_app_totals(month_dir: Path) -> None:
    lines = pl.read_parquet(month_dir / "line_items.parquet")
    actual: dict[int, Decimal] = {}
    for row in lines.select("sdk_app_id", "amount").iter_rows(named=True):
        actual[row["sdk_app_id"]] = actual.get(row["sdk_app_id"], Decimal(0)) + dec(row["amount"])
    for app_id, expected in EXPECTED_APP_TOTALS.items():
        assert actual.get(app_id, Decimal(0)) == Decimal(expected), app_id
    assert set(actual) <= set(EXPECTED_APP_TOTALS)


def test_one_pdf_per_invoiced_customer(
    month_dir: Path, invoices: dict[str, dict[str, Any]]
) -> None:
    pdfs = {p.stem: p for p in (month_dir / "invoices").glob("*.pdf")}
    expected = {e.invoice_number for e in EXPECTED_INVOICES.values() if e.invoice_number}
    assert set(pdfs) == expected
    for customer_id, row in invoices.items():
        number = EXPECTED_INVOICES[customer_id].invoice_number
        if number is None:
            assert row["pdf_sha256"] is None
        else:
            assert row["pdf_sha256"] == hashlib.sha256(pdfs[number].read_bytes()).hexdigest()


def test_rejected_rows(month_dir: Path) -> None:
    rejected = pl.read_parquet(month_dir / "rejected_rows.parquet")
    assert rejected.height == len(EXPECTED_REJECTED_APP_IDS)
    assert sorted(rejected["sdk_app_id"].to_list()) == EXPECTED_REJECTED_APP_IDS


def test_manifest_counts_and_totals(month_dir: Path) -> None:
    manifest = json.loads((month_dir / "manifest.json").read_text(encoding="utf-8"))
    counts = manifest["counts"]
    assert counts["usage_duplicates_collapsed"] == EXPECTED_DUPLICATES
    assert counts["usage_rows_rejected"] == len(EXPECTED_REJECTED_APP_IDS)
    assert counts["usage_rows_billed"] == (
        counts["usage_rows_in"] - EXPECTED_DUPLICATES - len(EXPECTED_REJECTED_APP_IDS))
    totals = {c: Decimal(t["total"]) for c, t in manifest["totals"].items()}
    assert totals == {c: Decimal(t) for c, t in EXPECTED_CURRENCY_TOTALS.items()}


def test_anomalies(month_dir: Path) -> None:
    anomalies = pl.read_parquet(month_dir / "anomalies.parquet")
    assert set(anomalies["sdk_app_id"].to_list()) == EXPECTED_ANOMALY_APPS
    assert anomalies.select("sdk_app_id", "kind").rows() == EXPECTED_ANOMALIES
