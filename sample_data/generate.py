"""Generate the sample input month 2026-10 (`sample_data/2026-10/`).

    python sample_data/generate.py [--out sample_data/2026-10]

The output is deterministic: every random number comes from a generator seeded with
``SEED`` and the app id, and nothing depends on the wall clock, so running the script
twice gives the same tables. `tests/project/test_sample_data.py` checks that the committed
folder is what this script produces.

Every app is a `Scenario` below: its customer, its subscription events, the explicit
usage values of the days that matter (peaks, anomalies) and the rule it exercises.
All other usage values are random but stay strictly below the free quotas (DAU below
10,000, groups below 100,000, at most 50 live groups on Pro without
``avchatroom_unlimited``; Free apps at most 100 users, 100 groups and 10 live groups),
so they never create overage or anomalies on their own. Group counts move as a slow
random walk, so no day adds more than 10,000 groups.

The expected invoices of this month are worked out by hand in
`tests/project/test_sample_month.py`; `sample_data/README.md` has the scenario table.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20261031
MONTH_START = date(2026, 10, 1)
MONTH_END = date(2026, 10, 31)
DEFAULT_OUT = Path(__file__).resolve().parent / "2026-10"

# Probability that an ordinary day of an app has no usage row (no activity).
MISSING_DAY_RATE = 0.06

USAGE_SCHEMA = pa.schema(
    [
        pa.field("sdk_app_id", pa.int64(), nullable=False),
        pa.field("date", pa.date32(), nullable=False),
        pa.field("dau", pa.int64()),
        pa.field("group_count", pa.int64()),
        pa.field("live_group_count", pa.int64()),
    ]
)
APPS_SCHEMA = pa.schema(
    [
        pa.field("sdk_app_id", pa.int64(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("app_name", pa.string(), nullable=False),
    ]
)
EVENTS_SCHEMA = pa.schema(
    [
        pa.field("sdk_app_id", pa.int64(), nullable=False),
        pa.field("effective_date", pa.date32(), nullable=False),
        pa.field("item", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
    ]
)
CUSTOMER_COLUMNS = ("customer_id", "name", "email", "address", "country", "currency", "locale",
                    "tax_id", "postcode", "city", "buyer_reference", "einvoice_format",
                    "peppol_scheme", "peppol_id", "mandate_reference")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Customer:
    """One row of `customers.csv`; ``tax_id`` is "" when the customer has none."""

    customer_id: str
    name: str
    email: str
    address: str
    country: str
    currency: str
    locale: str
    tax_id: str
    region: str  # usage export region of the customer's apps (folder `usage/region=<region>`)
    # The optional columns (README, "E-invoices for EU customers"); "" = empty.
    postcode: str = ""
    city: str = ""
    buyer_reference: str = ""
    einvoice_format: str = ""
    peppol_scheme: str = ""
    peppol_id: str = ""
    mandate_reference: str = ""


@dataclass(frozen=True)
class Event:
    """One row of `subscription_events`."""

    effective_date: date
    item: str
    value: str


def ev(day: str, item: str, value: str) -> Event:
    return Event(date.fromisoformat(day), item, value)


@dataclass(frozen=True)
class Day:
    """Explicit usage values for one October day (None = keep the random value)."""

    dau: int | None = None
    group_count: int | None = None
    live_group_count: int | None = None


@dataclass(frozen=True)
class Scenario:
    """One app of the sample month and what it is there to exercise.

    Attributes:
      sdk_app_id: the app's id.
      customer_id: its owner.
      app_name: its name.
      rules: the SPEC rules it exercises (``R1`` … ``R10``, ``§2``), or ``filler``.
      purpose: what the app shows, in one sentence (with the expected effect).
      events: its subscription events, in file order (ties: the later one wins).
      days: explicit usage values by day of October (peaks, anomalies).
      group_band: (low, high) of the random group count on Pro/Flagship days;
        None picks a random band below 100,000.
      skip_days: days of October with no valid usage row (a bad row may use them).
      no_usage: the app has no usage rows at all this month.
      null_live: every usage row of the app has a null ``live_group_count``.
    """

    sdk_app_id: int
    customer_id: str
    app_name: str
    rules: str
    purpose: str
    events: tuple[Event, ...]
    days: Mapping[int, Day] = field(default_factory=dict)
    group_band: tuple[int, int] | None = None
    skip_days: frozenset[int] = frozenset()
    no_usage: bool = False
    null_live: bool = False


# --------------------------------------------------------------------------- customers

CUSTOMERS: tuple[Customer, ...] = (
    Customer("C1001", "Acme Messaging, Inc.", "billing@acme-messaging.example",
             "500 Howard Street, Suite 300\nSan Francisco, CA 94105", "US", "USD", "en_US",
             "94-3127765", "us"),
    Customer("C1002", "Bluebird Social LLC", "ap@bluebird-social.example",
             "1200 Pine Street\nSeattle, WA 98101", "US", "USD", "en_US", "", "us"),
    Customer("C1003", "Cedar Health Systems, Inc.", "accounts.payable@cedarhealth.example",
             "77 Massachusetts Avenue, Floor 4\nCambridge, MA 02139", "US", "USD", "en_US",
             "04-2103594", "us"),
    Customer("C1004", "Daybreak Games Co.", "founders@daybreakgames.example",
             "2100 Guadalupe Street\nAustin, TX 78705", "US", "USD", "en_US", "", "us"),
    Customer("C1005", "Evergreen Tutors LLC", "finance@evergreen-tutors.example",
             "350 Fifth Avenue, Suite 5400\nNew York, NY 10118", "US", "USD", "en_US",
             "13-4928815", "us"),
    Customer("C1006", "주식회사 누리톡", "billing@nuritalk.example",
             "서울특별시 강남구 테헤란로 427\n위워크타워 10층", "KR", "USD", "ko_KR",
             "220-81-62517", "kr"),
    Customer("C1007", "주식회사 한빛소프트", "tax@hanbitsoft.example",
             "경기도 성남시 분당구 판교역로 235\n에이치스퀘어 N동 7층", "KR", "KRW", "ko_KR",
             "113-86-45021", "kr"),
    Customer("C1008", "(주)다온커뮤니케이션", "account@daon-comm.example",
             "부산광역시 해운대구 센텀중앙로 97\n센텀스카이비즈 A동 1203호", "KR", "KRW", "ko_KR",
             "", "kr"),
    Customer("C1009", "바로배송 주식회사", "finance@barobaesong.example",
             "서울특별시 마포구 월드컵북로 396, 15층", "KR", "KRW", "ko_KR", "105-87-30418",
             "kr"),
    Customer("C1010", "청솔교육 주식회사", "billing@cheongsol-edu.example",
             "대전광역시 유성구 대학로 99\n대덕벤처타운 3층", "KR", "KRW", "ko_KR",
             "314-81-20933", "kr"),
    Customer("C1011", "杭州云帆科技有限公司", "caiwu@yunfan-tech.example",
             "浙江省杭州市西湖区文三路 478 号\n华星时代广场 A 座 12 楼", "CN", "CNY", "zh_CN",
             "91330106MA2H3K4L5X", "cn"),
    Customer("C1012", "深圳星河互娱网络有限公司", "finance@xinghe-hy.example",
             "广东省深圳市南山区科苑路 15 号\n科兴科学园 B 栋 9 层", "CN", "CNY", "zh_CN",
             "91440300MA5F8Q2R7W", "cn"),
    Customer("C1013", "成都青禾教育科技有限公司", "zhangdan@qinghe-edu.example",
             "四川省成都市高新区天府大道北段 1700 号", "CN", "CNY", "zh_CN", "", "cn"),
    Customer("C1014", "北京知行网络科技有限公司", "billing@zhixing-net.example",
             "北京市海淀区中关村大街 27 号\n中关村大厦 8 层 801 室", "CN", "CNY", "zh_CN",
             "91110108MA01R2T3U4", "cn"),
    # EU customers (EUR): their PDFs embed an EN 16931 e-invoice (Factur-X). Their ids sort
    # after every other customer, so the invoice numbers above keep their customers.
    # Structured addresses (post code and city columns) and a buyer reference (BT-10).
    Customer("C1015", "Kiezfunk Berlin e.V.", "kasse@kiezfunk.example",
             "Friedrichstraße 68", "DE", "EUR", "en_US", "", "eu",
             postcode="10117", city="Berlin", buyer_reference="KF-2026-0042"),
    Customer("C1016", "Atelier Messagerie SAS", "comptabilite@atelier-messagerie.example",
             "12 rue de la Paix", "FR", "EUR", "en_US", "FR40303265045", "eu",
             postcode="75002", city="Paris"),
    # A Peppol BIS 3.0 buyer (Belgium, 21 % VAT): its participant id is its enterprise
    # number (scheme 0208); it pays by SEPA direct debit under its mandate.
    Customer("C1017", "Kanaal Media BV", "boekhouding@kanaal-media.example",
             "Kortrijksesteenweg 12", "BE", "EUR", "en_US", "BE0812345603", "eu",
             postcode="9000", city="Gent", buyer_reference="PO-2026-118",
             einvoice_format="peppol", peppol_scheme="0208", peppol_id="0812345603",
             mandate_reference="KANAAL-SDD-0001"),
    # 0 % VAT customers whose category is not reverse charge: exempt (E) and zero rated
    # (Z), as templates/seller.toml declares their countries (illustrative).
    Customer("C1018", "Lernwerk Bildungsverein", "buchhaltung@lernwerk.example",
             "Mariahilfer Straße 45", "AT", "EUR", "en_US", "ATU12345675", "eu",
             postcode="1060", city="Wien"),
    Customer("C1019", "Fondation Lumière Solidaire", "compta@lumiere-solidaire.example",
             "2 rue du Fort", "LU", "EUR", "en_US", "LU12345613", "eu",
             postcode="L-2419", city="Luxembourg"),
)

# --------------------------------------------------------------------------- scenarios

# Day-of-October numbers in `days`/`skip_days`; prices and expected amounts are in
# tests/project/test_sample_month.py. "filler" apps only pay their plan fee (and add-ons listed).
SCENARIOS: tuple[Scenario, ...] = (
    # C1001 Acme (USD, US, no tax) -- plan changes under month_start
    Scenario(1400000101, "C1001", "Acme Chat", "R1 upgrade, R2, R9",
             "Free->Pro on Oct 15: plan fee is Free's 0; DAU 25,000 on Free day Oct 3 is not "
             "billed (R9 anomaly); Pro-day DAU peak 12,345 (Oct 22) -> 1 block",
             (ev("2026-02-03", "plan", "free"), ev("2026-10-15", "plan", "pro")),
             days={3: Day(dau=25_000), 22: Day(dau=12_345)}, group_band=(1_000, 5_000)),
    Scenario(1400000102, "C1001", "Acme Support Desk", "R1 downgrade, R3, R4",
             "Flagship->Pro on Oct 15: pays Flagship; group peak 250,000 on a Flagship day "
             "(Oct 6) -> 2 blocks; avchatroom_unlimited is included on Flagship days but "
             "counts on the Pro days -> charged",
             (ev("2025-06-01", "plan", "free"), ev("2025-07-01", "plan", "flagship"),
              ev("2026-02-01", "avchatroom_unlimited", "on"), ev("2026-10-15", "plan", "pro")),
             days={6: Day(group_count=250_000)}, group_band=(236_000, 245_000)),
    Scenario(1400000103, "C1001", "Acme Internal Tools", "filler, §2 negative dau",
             "Pro all month; Oct 12 has only a negative-dau row (rejected)",
             (ev("2025-03-10", "plan", "free"), ev("2025-04-01", "plan", "pro")),
             skip_days=frozenset({12})),
    # C1002 Bluebird (USD, US) -- DAU block boundaries
    Scenario(1400000201, "C1002", "Bluebird", "R2 boundary, §2 duplicate",
             "Pro; DAU peak 10,001 (Oct 9) -> 1 block; the peak row is also exported twice",
             (ev("2025-01-20", "plan", "free"), ev("2025-02-01", "plan", "pro")),
             days={9: Day(dau=10_001)}),
    Scenario(1400000202, "C1002", "Bluebird Events", "R2 boundary",
             "Flagship; DAU peak 20,000 (Oct 17) -> 1 block",
             (ev("2025-05-05", "plan", "free"), ev("2025-05-06", "plan", "flagship")),
             days={17: Day(dau=20_000)}),
    Scenario(1400000203, "C1002", "Bluebird Live", "R2 boundary",
             "Pro; DAU peak 20,001 (Oct 31) -> 2 blocks",
             (ev("2025-08-01", "plan", "free"), ev("2025-09-01", "plan", "pro")),
             days={31: Day(dau=20_001)}),
    Scenario(1400000204, "C1002", "Bluebird Beta", "R1 created mid-month, R2 boundary",
             "first plan event Pro on Oct 10: no plan fee under month_start; DAU peak exactly "
             "10,000 (Oct 25) -> 0 blocks",
             (ev("2026-10-10", "plan", "pro"),),
             days={25: Day(dau=10_000)}),
    # C1003 Cedar (USD, US) -- add-ons
    Scenario(1400000301, "C1003", "Cedar Rooms", "R4/R5 avchatroom on Pro",
             "Pro + avchatroom_unlimited -> charged; up to 180 live groups is no anomaly",
             (ev("2025-10-01", "plan", "free"), ev("2025-11-01", "plan", "pro"),
              ev("2026-04-01", "avchatroom_unlimited", "on"))),
    Scenario(1400000302, "C1003", "Cedar Broadcast", "R4/R5 avchatroom on Flagship",
             "Flagship + avchatroom_unlimited -> included, not charged",
             (ev("2025-02-01", "plan", "free"), ev("2025-03-01", "plan", "flagship"),
              ev("2025-12-01", "avchatroom_unlimited", "on"))),
    Scenario(1400000303, "C1003", "Cedar Teams & Care <beta>", "R4/R5 group_member_limit",
             "Pro + group_member_limit 3000 -> charged (name has & and < for escaping)",
             (ev("2026-01-05", "plan", "free"), ev("2026-02-01", "plan", "pro"),
              ev("2026-08-01", "group_member_limit", "3000"))),
    Scenario(1400000304, "C1003", "Cedar Community", "R4 tier change",
             "Pro + group_member_limit 3000, raised to 6000 on Oct 12 -> 6000 charged once",
             (ev("2025-04-01", "plan", "free"), ev("2025-04-15", "plan", "pro"),
              ev("2026-05-01", "group_member_limit", "3000"),
              ev("2026-10-12", "group_member_limit", "6000"))),
    Scenario(1400000305, "C1003", "Cedar Clinics", "R4/R5 groups_per_user",
             "Pro + groups_per_user 2000 -> charged",
             (ev("2025-07-01", "plan", "free"), ev("2025-08-01", "plan", "pro"),
              ev("2026-09-01", "groups_per_user", "2000"))),
    # C1004 Daybreak (USD, US) -- all Free: total 0, no invoice number, no PDF
    Scenario(1400000401, "C1004", "Daybreak Sandbox", "R10 zero total",
             "Free all month, no add-ons",
             (ev("2026-01-15", "plan", "free"),)),
    Scenario(1400000402, "C1004", "Daybreak Prototype", "R10 zero total, R6 trial",
             "Free; av_call first on Oct 20 -> zero line, trial ends 2026-12-18",
             (ev("2026-09-20", "plan", "free"), ev("2026-10-20", "av_call", "on"))),
    # C1005 Evergreen (USD, US) -- history retention and av_call
    Scenario(1400000501, "C1005", "Evergreen Classroom", "R4/R5 history on Flagship",
             "Flagship + history_retention_days 90 (> 30 included) -> charged",
             (ev("2025-01-10", "plan", "free"), ev("2025-02-01", "plan", "flagship"),
              ev("2026-03-01", "history_retention_days", "90"))),
    Scenario(1400000502, "C1005", "Evergreen Homework", "R4 switched on mid-month",
             "Pro + history_retention_days 60 from Oct 20 -> full price, no proration",
             (ev("2025-06-01", "plan", "free"), ev("2025-07-01", "plan", "pro"),
              ev("2026-10-20", "history_retention_days", "60"))),
    Scenario(1400000503, "C1005", "Evergreen Archive", "R4 switched off before the month",
             "Pro; history_retention_days 180 switched off on 2026-09-15 -> not charged",
             (ev("2025-03-01", "plan", "free"), ev("2025-03-15", "plan", "pro"),
              ev("2026-05-01", "history_retention_days", "180"),
              ev("2026-09-15", "history_retention_days", "off"))),
    Scenario(1400000504, "C1005", "Evergreen Calls", "R6 trial ends in the month",
             "Pro; av_call on since 2026-09-01: last free day 2026-10-30, Oct 31 is paid "
             "-> charged",
             (ev("2025-09-01", "plan", "free"), ev("2025-10-01", "plan", "pro"),
              ev("2026-09-01", "av_call", "on"))),
    Scenario(1400000505, "C1005", "Evergreen Tutor Video", "R6 inside trial",
             "Pro; av_call first on 2026-10-05: whole month inside the trial -> zero line "
             "naming trial end 2026-12-03",
             (ev("2026-02-01", "plan", "free"), ev("2026-03-01", "plan", "pro"),
              ev("2026-10-05", "av_call", "on"))),
    Scenario(1400000506, "C1005", "Evergreen Parents", "R6 trial counts from first-ever on",
             "Pro; av_call on 2026-06-01, off 2026-07-01, on again 2026-10-10: the trial "
             "ended 2026-07-30 -> charged",
             (ev("2025-11-01", "plan", "free"), ev("2025-12-01", "plan", "pro"),
              ev("2026-06-01", "av_call", "on"), ev("2026-07-01", "av_call", "off"),
              ev("2026-10-10", "av_call", "on"))),
    # C1006 Nuritalk (USD, KR: 10% tax, ko_KR invoice in USD)
    Scenario(1400000601, "C1006", "누리톡", "R3 boundary, R7 tax",
             "Pro; group peak 100,001 (Oct 14) -> 1 block",
             (ev("2025-04-01", "plan", "free"), ev("2025-05-01", "plan", "pro")),
             days={14: Day(group_count=100_001)}, group_band=(91_000, 96_000)),
    Scenario(1400000602, "C1006", "누리톡 라이브", "§2 same-day events",
             "pro and flagship both effective 2026-07-01; the later row (flagship) wins",
             (ev("2026-05-01", "plan", "free"), ev("2026-07-01", "plan", "pro"),
              ev("2026-07-01", "plan", "flagship"))),
    Scenario(1400000603, "C1006", "누리톡 비즈", "R1 change on the 1st",
             "Pro->Flagship effective 2026-10-01: in effect on the 1st -> pays Flagship",
             (ev("2026-02-15", "plan", "free"), ev("2026-03-01", "plan", "pro"),
              ev("2026-10-01", "plan", "flagship"))),
    Scenario(1400000604, "C1006", "누리톡 워치", "R6 on Free",
             "Free + av_call since 2026-04-01 (trial over) -> charged; no anomaly (R6)",
             (ev("2026-03-20", "plan", "free"), ev("2026-04-01", "av_call", "on"))),
    Scenario(1400000605, "C1006", "누리톡 스토어", "§2 events after the month",
             "Pro; Flagship from 2026-11-01 and group_member_limit from 2026-11-05 are "
             "ignored -> Pro fee only",
             (ev("2025-12-01", "plan", "free"), ev("2026-01-01", "plan", "pro"),
              ev("2026-11-01", "plan", "flagship"),
              ev("2026-11-05", "group_member_limit", "3000"))),
    # C1007 Hanbit (KRW, KR) -- plan changes under month_start in KRW
    Scenario(1400000701, "C1007", "한빛 메신저", "R1 upgrade (KRW), R2",
             "Pro->Flagship on Oct 15: pays Pro; DAU peak 15,000 on a Flagship day (Oct 28) "
             "-> 1 block",
             (ev("2025-08-01", "plan", "free"), ev("2025-09-01", "plan", "pro"),
              ev("2026-10-15", "plan", "flagship")),
             days={28: Day(dau=15_000)}),
    Scenario(1400000702, "C1007", "한빛 고객센터", "R1 downgrade (KRW), R3 boundary, §2 duplicate",
             "Flagship->Pro on Oct 15: pays Flagship; group peak exactly 100,000 (Oct 20) "
             "-> 0 blocks; that row is exported again in usage/region=kr/retry/",
             (ev("2026-01-10", "plan", "free"), ev("2026-02-01", "plan", "flagship"),
              ev("2026-10-15", "plan", "pro")),
             days={20: Day(group_count=100_000)}, group_band=(91_000, 97_000)),
    Scenario(1400000703, "C1007", "한빛 사내메신저", "filler, §2 date outside month",
             "Pro; a row dated 2026-09-30 is rejected",
             (ev("2025-11-11", "plan", "free"), ev("2025-12-01", "plan", "pro"))),
    # C1008 Daon (KRW, KR) -- tax ends in exactly .5 won
    Scenario(1400000801, "C1008", "다온 톡", "R7 half-up tax",
             "Pro + history_retention_days 60: subtotal 588,905 -> tax 58,890.5 -> 58,891",
             (ev("2026-06-01", "plan", "free"), ev("2026-07-01", "plan", "pro"),
              ev("2026-08-01", "history_retention_days", "60"))),
    Scenario(1400000802, "C1008", "다온 테스트", "filler",
             "Free all month",
             (ev("2026-09-01", "plan", "free"),)),
    # C1009 Baro (KRW, KR) -- R9 anomalies
    Scenario(1400000901, "C1009", "바로배송 기사앱", "R9 Free DAU",
             "Free; DAU 180 on Oct 17 -> anomaly, nothing billed",
             (ev("2026-04-01", "plan", "free"),),
             days={17: Day(dau=180)}),
    Scenario(1400000902, "C1009", "바로배송 고객앱", "R9 Pro live groups",
             "Pro without avchatroom_unlimited; 75 live groups on Oct 8 -> anomaly, Pro fee only",
             (ev("2025-12-01", "plan", "free"), ev("2026-01-01", "plan", "pro")),
             days={8: Day(live_group_count=75)}),
    Scenario(1400000903, "C1009", "바로배송 파트너", "R9 add-on on Free",
             "Free + groups_per_user 2000 -> charged (breach is not billed differently) and "
             "an anomaly",
             (ev("2026-05-01", "plan", "free"), ev("2026-09-10", "groups_per_user", "2000"))),
    # C1010 Cheongsol (KRW, KR)
    Scenario(1400001001, "C1010", "청솔 클래스", "R5 groups_per_user on Flagship, §2 null metric",
             "Flagship + groups_per_user 3000 (> 1,000 included) -> charged; Oct 21 has only a "
             "row with a null group_count (rejected)",
             (ev("2025-02-01", "plan", "free"), ev("2025-03-01", "plan", "flagship"),
              ev("2026-03-01", "groups_per_user", "3000")),
             skip_days=frozenset({21})),
    Scenario(1400001002, "C1010", "청솔 학부모", "R1 idle app",
             "Pro with no usage rows at all -> plan fee, no overage",
             (ev("2025-09-01", "plan", "free"), ev("2026-09-01", "plan", "pro")),
             no_usage=True),
    Scenario(1400001003, "C1010", "청솔 데모", "filler",
             "Free all month",
             (ev("2026-07-07", "plan", "free"),)),
    # C1011 Yunfan (CNY, CN, 6% tax) -- plan changes under prorate_daily
    Scenario(1400001101, "C1011", "云帆IM", "R1 prorate upgrade, R2",
             "Pro->Flagship on Oct 23: 22 Pro days + 9 Flagship days; DAU peak 10,001 "
             "(Oct 25) -> 1 block",
             (ev("2026-01-10", "plan", "free"), ev("2026-02-01", "plan", "pro"),
              ev("2026-10-23", "plan", "flagship")),
             days={25: Day(dau=10_001)}),
    Scenario(1400001102, "C1011", "云帆客服", "R1 prorate downgrade, R2, R7 half-up tax",
             "Flagship->Free on Oct 20: 19 Flagship days + 12 Free days; DAU peak 21,000 "
             "(Oct 3) -> 2 blocks; customer tax 385.065 -> 385.07",
             (ev("2025-11-01", "plan", "free"), ev("2025-12-01", "plan", "flagship"),
              ev("2026-10-20", "plan", "free")),
             days={3: Day(dau=21_000)}),
    # C1012 Xinghe (CNY, CN)
    Scenario(1400001201, "C1012", "星河语聊", "R1 prorate created mid-month, R2, §2 duplicate",
             "first plan event Pro on Oct 10 -> 22 Pro days; DAU peak 30,000 (Oct 30) -> "
             "2 blocks; that row is exported again in usage/late/",
             (ev("2026-10-10", "plan", "pro"),),
             days={30: Day(dau=30_000)}, group_band=(500, 3_000)),
    Scenario(1400001202, "C1012", "星河直播", "R3 boundary, R4 avchatroom on Flagship",
             "Flagship + avchatroom (included) + group_member_limit 6000 (charged); group "
             "peak 200,000 (Oct 12) -> 1 block",
             (ev("2025-06-01", "plan", "free"), ev("2025-07-01", "plan", "flagship"),
              ev("2025-08-01", "avchatroom_unlimited", "on"),
              ev("2026-04-01", "group_member_limit", "6000")),
             days={12: Day(group_count=200_000)}, group_band=(189_000, 196_000)),
    # C1013 Qinghe (CNY, CN, no tax id)
    Scenario(1400001301, "C1013", "青禾课堂", "R4 avchatroom on Pro, R6 trial ended",
             "Pro + avchatroom_unlimited + av_call since 2026-08-31 (trial ends 2026-10-29) "
             "-> both charged",
             (ev("2026-03-01", "plan", "free"), ev("2026-04-01", "plan", "pro"),
              ev("2026-04-01", "avchatroom_unlimited", "on"), ev("2026-08-31", "av_call", "on"))),
    Scenario(1400001302, "C1013", "青禾作业", "R4 active a few days",
             "Pro + history_retention_days 60 on Oct 20, off Oct 25 -> full price",
             (ev("2026-03-01", "plan", "free"), ev("2026-04-01", "plan", "pro"),
              ev("2026-10-20", "history_retention_days", "60"),
              ev("2026-10-25", "history_retention_days", "off"))),
    Scenario(1400001303, "C1013", "青禾家长", "filler",
             "Free all month (prorated Free fee 0)",
             (ev("2026-05-01", "plan", "free"),)),
    # C1014 Zhixing (CNY, CN)
    Scenario(1400001401, "C1014", "知行办公", "filler, §2 date outside month, null live",
             "Pro; live_group_count null on every row; a row dated 2026-11-01 is rejected",
             (ev("2025-01-01", "plan", "free"), ev("2025-02-01", "plan", "pro")),
             null_live=True),
    Scenario(1400001402, "C1014", "知行会议", "filler, null live",
             "Pro; live_group_count null on every row",
             (ev("2025-03-01", "plan", "free"), ev("2025-04-01", "plan", "pro")),
             null_live=True),
    Scenario(1400001403, "C1014", "知行社区", "filler",
             "Flagship all month",
             (ev("2025-05-01", "plan", "free"), ev("2025-06-01", "plan", "flagship"))),
    Scenario(1400001404, "C1014", "知行招聘", "R1 prorate upgrade from Free",
             "Free->Pro on Oct 15: 14 Free days (0) + 17 Pro days",
             (ev("2026-06-01", "plan", "free"), ev("2026-10-15", "plan", "pro")),
             group_band=(800, 6_000)),
    # C1015 Kiezfunk (EUR, DE: 19 % VAT, category S in its e-invoice)
    Scenario(1400001501, "C1015", "Kiezfunk Chat", "EN 16931 VAT S, R4",
             "Pro + history_retention_days 90 -> charged; DE 19 % VAT",
             (ev("2026-01-01", "plan", "free"), ev("2026-02-01", "plan", "pro"),
              ev("2026-06-01", "history_retention_days", "90"))),
    Scenario(1400001502, "C1015", "Kiezfunk Live", "EN 16931 VAT S, R2",
             "Flagship; DAU peak 10,500 (Oct 11) -> 1 block",
             (ev("2026-03-01", "plan", "free"), ev("2026-04-01", "plan", "flagship")),
             days={11: Day(dau=10_500)}),
    # C1016 Atelier Messagerie (EUR, FR with a VAT id: 0 %, reverse charge AE)
    Scenario(1400001601, "C1016", "Atelier Messagerie", "EN 16931 VAT AE, R4",
             "Pro + group_member_limit 3000 -> charged; FR reverse charge, 0 %",
             (ev("2026-02-01", "plan", "free"), ev("2026-03-01", "plan", "pro"),
              ev("2026-05-01", "group_member_limit", "3000"))),
    Scenario(1400001602, "C1016", "Atelier Communautés", "EN 16931 VAT AE, R3",
             "Pro; group peak 150,000 (Oct 19) -> 1 block",
             (ev("2026-04-01", "plan", "free"), ev("2026-05-01", "plan", "pro")),
             days={19: Day(group_count=150_000)}, group_band=(141_000, 145_000)),
    # C1017 Kanaal Media (EUR, BE: 21 % VAT, category S; Peppol BIS 3.0 beside the PDF)
    Scenario(1400001701, "C1017", "Kanaal Chat", "EN 16931 Peppol, VAT S",
             "Pro + avchatroom_unlimited -> charged; BE 21 % VAT",
             (ev("2026-02-01", "plan", "pro"), ev("2026-02-01", "avchatroom_unlimited", "on"))),
    # C1018 Lernwerk (EUR, AT: 0 %, exempt E) and C1019 Lumière (EUR, LU: 0 %, zero rated Z)
    Scenario(1400001801, "C1018", "Lernwerk Klassenzimmer", "EN 16931 VAT E",
             "Pro all month; AT exempt, 0 %",
             (ev("2026-03-01", "plan", "pro"),)),
    Scenario(1400001901, "C1019", "Lumière Entraide", "EN 16931 VAT Z",
             "Pro all month; LU zero rated, 0 %",
             (ev("2026-03-01", "plan", "pro"),)),
)

UNKNOWN_APP_ID = 1400009999  # not in apps: its rows are rejected

# --------------------------------------------------------------------------- price book

PRICEBOOK_TOML = """\
# Price book of the sample month 2026-10.
# Figures are illustrative except the published ones quoted in SPEC §5 (the USD
# 2026-01-01 version is the §5 example; CNY plan fees and overage are the published
# China-region list prices). Versions are deliberately not in date order.
# October 2026 uses USD@2026-01-01, KRW@2026-01-01, CNY@2026-01-01 and EUR@2026-01-01;
# USD@2025-01-01 is superseded and USD@2026-11-01 is not yet in effect.

# --- USD, current for October 2026 (SPEC §5 example) ---------------------------
[[version]]
effective_from = 2026-01-01
currency = "USD"
plan_fee_policy = "month_start"

[version.plan_fee]
free = "0"
pro = "399.00"
flagship = "1199.00"

[version.dau_overage]
free_quota = 10000
block = 10000
price_per_block = "149.99"

[version.group_overage]
free_quota = 100000
block = 100000
price_per_block = "149.99"

[version.addon.avchatroom_unlimited]
price = "99.00"

[version.addon.group_member_limit]
"3000" = "49.00"
"6000" = "99.00"

[version.addon.groups_per_user]
"2000" = "49.00"
"3000" = "99.00"

[version.addon.history_retention_days]
"60" = "29.00"
"90" = "49.00"
"180" = "79.00"
"360" = "129.00"

[version.addon.av_call]
trial_days = 60
price = "59.00"

[version.tax]
KR = "0.10"

# --- USD, future: must not be used for October 2026 ----------------------------
[[version]]
effective_from = 2026-11-01
currency = "USD"
plan_fee_policy = "month_start"

[version.plan_fee]
free = "0"
pro = "449.00"
flagship = "1299.00"

[version.dau_overage]
free_quota = 10000
block = 10000
price_per_block = "169.99"

[version.group_overage]
free_quota = 100000
block = 100000
price_per_block = "169.99"

[version.addon.avchatroom_unlimited]
price = "119.00"

[version.addon.group_member_limit]
"3000" = "59.00"
"6000" = "119.00"

[version.addon.groups_per_user]
"2000" = "59.00"
"3000" = "119.00"

[version.addon.history_retention_days]
"60" = "39.00"
"90" = "59.00"
"180" = "89.00"
"360" = "149.00"

[version.addon.av_call]
trial_days = 60
price = "69.00"

[version.tax]
KR = "0.10"

# --- USD, superseded on 2026-01-01 ---------------------------------------------
[[version]]
effective_from = 2025-01-01
currency = "USD"
plan_fee_policy = "month_start"

[version.plan_fee]
free = "0"
pro = "349.00"
flagship = "999.00"

[version.dau_overage]
free_quota = 10000
block = 10000
price_per_block = "129.99"

[version.group_overage]
free_quota = 100000
block = 100000
price_per_block = "129.99"

[version.addon.avchatroom_unlimited]
price = "89.00"

[version.addon.group_member_limit]
"3000" = "39.00"
"6000" = "79.00"

[version.addon.groups_per_user]
"2000" = "39.00"
"3000" = "79.00"

[version.addon.history_retention_days]
"60" = "19.00"
"90" = "39.00"
"180" = "69.00"
"360" = "109.00"

[version.addon.av_call]
trial_days = 30
price = "49.00"

[version.tax]
KR = "0.10"

# --- KRW (illustrative). history_retention_days "60" ends in 5 on purpose: ----
# a customer with Pro + that add-on has subtotal 588,905 and tax 58,890.5,
# which half-up rounds to 58,891 (half-even would give 58,890).
[[version]]
effective_from = 2026-01-01
currency = "KRW"
plan_fee_policy = "month_start"

[version.plan_fee]
free = "0"
pro = "549000"
flagship = "1649000"

[version.dau_overage]
free_quota = 10000
block = 10000
price_per_block = "206000"

[version.group_overage]
free_quota = 100000
block = 100000
price_per_block = "206000"

[version.addon.avchatroom_unlimited]
price = "136000"

[version.addon.group_member_limit]
"3000" = "67000"
"6000" = "136000"

[version.addon.groups_per_user]
"2000" = "67000"
"3000" = "136000"

[version.addon.history_retention_days]
"60" = "39905"
"90" = "67000"
"180" = "108000"
"360" = "177000"

[version.addon.av_call]
trial_days = 60
price = "81000"

[version.tax]
KR = "0.10"

# --- CNY: published China-region plan fees and overage; add-ons illustrative ---
[[version]]
effective_from = 2026-01-01
currency = "CNY"
plan_fee_policy = "prorate_daily"

[version.plan_fee]
free = "0"
pro = "999.00"
flagship = "2999.00"

[version.dau_overage]
free_quota = 10000
block = 10000
price_per_block = "1000.00"

[version.group_overage]
free_quota = 100000
block = 100000
price_per_block = "1000.00"

[version.addon.avchatroom_unlimited]
price = "699.00"

[version.addon.group_member_limit]
"3000" = "339.00"
"6000" = "699.00"

[version.addon.groups_per_user]
"2000" = "339.00"
"3000" = "699.00"

[version.addon.history_retention_days]
"60" = "199.00"
"90" = "339.00"
"180" = "549.00"
"360" = "899.00"

[version.addon.av_call]
trial_days = 60
price = "399.00"

[version.tax]
CN = "0.06"

# --- EUR (illustrative): EU customers, whose PDFs embed an EN 16931 e-invoice -------
# DE and BE pay VAT (category S). FR, AT and LU are absent (0 %): templates/seller.toml
# declares their customers' 0 % as reverse charge (AE), exempt (E) and zero rated (Z).
[[version]]
effective_from = 2026-01-01
currency = "EUR"
plan_fee_policy = "month_start"

[version.plan_fee]
free = "0"
pro = "369.00"
flagship = "1109.00"

[version.dau_overage]
free_quota = 10000
block = 10000
price_per_block = "139.99"

[version.group_overage]
free_quota = 100000
block = 100000
price_per_block = "139.99"

[version.addon.avchatroom_unlimited]
price = "89.00"

[version.addon.group_member_limit]
"3000" = "45.00"
"6000" = "89.00"

[version.addon.groups_per_user]
"2000" = "45.00"
"3000" = "89.00"

[version.addon.history_retention_days]
"60" = "27.00"
"90" = "45.00"
"180" = "73.00"
"360" = "119.00"

[version.addon.av_call]
trial_days = 60
price = "55.00"

[version.tax]
BE = "0.21"
DE = "0.19"
"""

# --------------------------------------------------------------------------- usage

UsageRow = tuple[int, date, int | None, int | None, int | None]


def october_days() -> Iterator[date]:
    day = MONTH_START
    while day <= MONTH_END:
        yield day
        day += timedelta(days=1)


def state_on(events: tuple[Event, ...], item: str, day: date) -> str | None:
    """Value of `item` on `day`: the latest event with effective_date <= day (later row wins)."""
    value = None
    for event in sorted(events, key=lambda e: e.effective_date):  # stable: file order on ties
        if event.item == item and event.effective_date <= day:
            value = event.value
    return value


def app_usage(scenario: Scenario) -> list[UsageRow]:
    """The valid usage rows of one app for October, one per active day."""
    if scenario.no_usage:
        return []
    rng = random.Random(f"{SEED}-{scenario.sdk_app_id}")
    dau_high = rng.randint(1_500, 9_800)
    if scenario.group_band is None:
        low = rng.randint(1_000, 70_000)
        band = (low, min(low + low // 3 + 500, 95_000))
    else:
        band = scenario.group_band
    rows: list[UsageRow] = []
    groups: int | None = None
    previous_tier: str | None = None
    for day in october_days():
        plan = state_on(scenario.events, "plan", day)
        if plan is None:
            continue
        tier = "free" if plan == "free" else "paid"
        low, high = (1, 100) if tier == "free" else band
        if tier != previous_tier or groups is None:
            groups = rng.randint(low, high)
            previous_tier = tier
        groups = min(high, max(low, groups + rng.randint(-(high - low) // 8, (high - low) // 8)))
        if tier == "free":
            dau = rng.randint(5, 100)
            live = rng.randint(0, 10)
        else:
            dau = rng.randint(dau_high // 2, dau_high)
            if plan == "flagship":
                live = rng.randint(0, 300)
            elif state_on(scenario.events, "avchatroom_unlimited", day) == "on":
                live = rng.randint(40, 180)
            else:
                live = rng.randint(0, 45)
        skipped = rng.random() < MISSING_DAY_RATE
        override = scenario.days.get(day.day)
        if override is None and (skipped or day.day in scenario.skip_days):
            continue
        if override is not None:
            dau = override.dau if override.dau is not None else dau
            groups_today = override.group_count if override.group_count is not None else groups
            live = override.live_group_count if override.live_group_count is not None else live
        else:
            groups_today = groups
        live = min(live, groups_today)
        rows.append((scenario.sdk_app_id, day, dau, groups_today,
                     None if scenario.null_live else live))
    return rows


def october(day: int) -> date:
    return MONTH_START.replace(day=day)


# Bad rows (SPEC §2): each is rejected, none stops the run. 6 rows in total.
# file -> rows appended to that file's good rows.
BAD_ROWS: dict[str, list[UsageRow]] = {
    "usage/region=us/2026-10-a.parquet": [
        (UNKNOWN_APP_ID, october(5), 512, 1_204, 3),  # unknown sdk_app_id
        (UNKNOWN_APP_ID, october(6), 498, 1_210, 2),  # unknown sdk_app_id
        (1400000103, october(12), -42, 12_000, 4),  # negative dau (app 103 has no other Oct 12 row)
    ],
    "usage/region=kr/part-000.parquet": [
        (1400000703, date(2026, 9, 30), 2_345, 8_800, 12),  # date before the month
    ],
    "usage/region=kr/part-001.parquet": [
        (1400001001, october(21), 3_100, None, 120),  # null group_count (no other Oct 21 row)
    ],
    "usage/region=cn/2026/10/part-001.parquet": [
        (1400001401, date(2026, 11, 1), 4_321, 20_500, None),  # date after the month
    ],
}
REJECTED_ROW_COUNT = sum(len(rows) for rows in BAD_ROWS.values())

# Exact duplicates (SPEC §2): (app, day, file holding the second copy). 3 in total, each
# row exported exactly twice, so "collapsed rows" and "duplicate groups" are both 3.
DUPLICATES: tuple[tuple[int, int, str], ...] = (
    (1400000201, 9, "usage/region=us/2026-10-a.parquet"),  # same file
    (1400000702, 20, "usage/region=kr/retry/part-000.parquet"),  # other folder
    (1400001201, 30, "usage/late/2026-11-01-resend.parquet"),  # other folder, no region
)
DUPLICATE_ROW_COUNT = len(DUPLICATES)


def usage_file(region: str, day: date) -> str:
    """Where a valid row of `region` on `day` is exported."""
    if region == "us":
        return "usage/region=us/2026-10-a.parquet" if day.day <= 15 else (
            "usage/region=us/2026-10-b.parquet")
    if region == "kr":
        return "usage/region=kr/part-000.parquet" if day.day <= 10 else (
            "usage/region=kr/part-001.parquet")
    if region == "eu":
        return "usage/region=eu/2026-10.parquet"
    return "usage/region=cn/2026/10/part-000.parquet" if day.day <= 20 else (
        "usage/region=cn/2026/10/part-001.parquet")


def usage_files() -> dict[str, list[UsageRow]]:
    """All usage files with their rows (valid rows, bad rows, duplicates), sorted by path."""
    regions = {c.customer_id: c.region for c in CUSTOMERS}
    files: dict[str, list[UsageRow]] = {}
    valid: dict[tuple[int, date], UsageRow] = {}
    for scenario in SCENARIOS:
        rows = app_usage(scenario)
        check_group_growth(rows)
        for row in rows:
            files.setdefault(usage_file(regions[scenario.customer_id], row[1]), []).append(row)
            valid[(row[0], row[1])] = row
    for path, rows in BAD_ROWS.items():
        for row in rows:
            # A bad row never shares app and day with a valid row, so it cannot conflict.
            assert (row[0], row[1]) not in valid, f"bad row {row} collides with a valid row"
        files.setdefault(path, []).extend(rows)
    for app_id, day, path in DUPLICATES:
        files.setdefault(path, []).append(valid[(app_id, october(day))])
    return dict(sorted(files.items()))


def check_group_growth(rows: list[UsageRow]) -> None:
    """No app adds more than 10,000 groups from one exported day to the next (plan limit)."""
    for before, after in pairwise(rows):
        assert before[3] is not None and after[3] is not None
        assert after[3] - before[3] <= 10_000, f"{after}: more than 10,000 new groups"


# --------------------------------------------------------------------------- writers


def write_parquet(rows: Sequence[tuple[object, ...]], schema: pa.Schema, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [dict(zip(schema.names, row, strict=True)) for row in rows]
    pq.write_table(pa.Table.from_pylist(records, schema=schema), path)


def write_customers(path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CUSTOMER_COLUMNS)
        for c in CUSTOMERS:
            writer.writerow([c.customer_id, c.name, c.email, c.address, c.country, c.currency,
                             c.locale, c.tax_id, c.postcode, c.city, c.buyer_reference,
                             c.einvoice_format, c.peppol_scheme, c.peppol_id,
                             c.mandate_reference])


def subscription_rows() -> list[tuple[int, date, str, str]]:
    """All events as a change log in date order; same-date events keep their order."""
    rows = [(s.sdk_app_id, e.effective_date, e.item, e.value)
            for s in SCENARIOS for e in s.events]
    return sorted(rows, key=lambda r: r[1])  # stable


def generate(out: Path) -> None:
    """Write the sample month into `out` (replacing what an earlier run wrote there)."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / "usage").exists():
        shutil.rmtree(out / "usage")
    files = usage_files()
    for relative, rows in files.items():
        write_parquet(rows, USAGE_SCHEMA, out / relative)
    apps = [(s.sdk_app_id, s.customer_id, s.app_name) for s in SCENARIOS]
    write_parquet(sorted(apps), APPS_SCHEMA, out / "apps.parquet")
    write_parquet(subscription_rows(), EVENTS_SCHEMA, out / "subscription_events.parquet")
    write_customers(out / "customers.csv")
    (out / "pricebook.toml").write_text(PRICEBOOK_TOML, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder to write (default: sample_data/2026-10 next to this script)")
    args = parser.parse_args(argv)
    generate(args.out)
    print(f"wrote {args.out}: {len(CUSTOMERS)} customers, {len(SCENARIOS)} apps, "
          f"{REJECTED_ROW_COUNT} bad usage rows, {DUPLICATE_ROW_COUNT} duplicate rows")


if __name__ == "__main__":
    main()
