"""The month's charges in DuckDB SQL: a baseline for speed, and an independent check.

    python -m benchmarks.duckdb_baseline --input sample_data/2026-10 --month 2026-10

Reads the same input folder as `invoicing` (usage Parquet/CSV at any depth, apps,
customers, subscription events, ``pricebook.toml``) and computes, in SQL:

* R8 the price-book version per currency (latest ``effective_from`` <= the 1st);
* the usage rows that can be billed (known app, date in the month, non-negative
  metrics), exact duplicates and conflicts counted (conflicts merged by maximum);
* R1 plan fees under both policies (``month_start``: plan in force on the 1st;
  ``prorate_daily``: ``days_on_plan x round(fee / days_in_month, 6)``);
* R2/R3 overage on the monthly peak over Pro/Flagship days (usage days joined to the
  plan segments by date range), ``ceil(excess / block)`` blocks;
* R4/R5 add-ons at the highest tier among days whose tier exceeds what that day's plan
  includes; R6 ``av_call`` with its trial from the first switch-on;
* R7 per-line half-up rounding to the currency's minor unit, subtotal, tax half-up,
  total, and the sums per currency over customers with a non-zero total.

Money is DECIMAL(38, 6) throughout; products of decimals stay exact in DuckDB
(DECIMAL(38, 12)) and ``round`` on a DECIMAL rounds half away from zero, which is R7's
half-up for non-negative amounts. DuckDB turns a DECIMAL *division* into DOUBLE, so the
one division (proration) is done in exact integer micro-units instead:
``minor = (2·fee_µ·days + D) // (2·D)`` with ``D = days_in_month · µ_per_minor_unit``.

Two forms. `compute_totals` (the first baseline) keeps only customer, item and amount
per line and returns the totals. `compute_outputs` does what the batch's measured path
does: every line with its evidence (the peak's value, first day and that day's plan,
quota, block, excess; days on plan; add-on and av_call activity and trial end;
description; price-book version), R10 invoice numbers, and both Parquet files written
with ``COPY ... TO`` (``--out DIR`` on the command line), line items in line order
(customer, app, item, plan), with the codec the caller gives (the benchmark passes the
batch's). `tests/pricing/test_baseline_equivalence.py` checks that its files equal ours.

The price book is parsed here with `tomllib` (not with `invoicing.load.pricebook`) so the
baseline shares nothing with the pipeline but the input files.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from babel.numbers import get_currency_precision

from invoicing.core.timeframe import Month
from invoicing.render.einvoice import EU_MEMBER_STATES

#: The optional columns of `customers` (README, Inputs).
CUSTOMERS_OPTIONAL = ("postcode", "city", "buyer_reference", "einvoice_format",
                      "peppol_scheme", "peppol_id", "mandate_reference")

PLANS = ("free", "pro", "flagship")
TIERED_ADDONS = ("group_member_limit", "groups_per_user", "history_retention_days")
#: What each plan includes per add-on (R4/R5; ``on`` counts as 1, unlimited as 2**62).
INCLUDED_TIER: dict[str, dict[str, int]] = {
    "avchatroom_unlimited": {"free": 0, "pro": 0, "flagship": 2**62},
    "group_member_limit": {"free": 20, "pro": 200, "flagship": 2000},
    "groups_per_user": {"free": 50, "pro": 500, "flagship": 1000},
    "history_retention_days": {"free": 7, "pro": 7, "flagship": 30},
}
MONEY_SCALE = 6


@dataclass(frozen=True)
class BaselineResult:
    """Totals per currency and the usage accounting.

    Attributes:
      totals: currency -> ``invoices`` (count of non-zero totals), ``subtotal``,
        ``tax``, ``total`` (decimal strings).
      counts: usage rows ``rows_in``, ``billed``, ``duplicates``, ``conflicts_merged``,
        ``rejected``; ``line_items`` and ``customers``.
      seconds: wall time of the whole computation (reading included; with
        `compute_outputs`, writing the Parquet files too).
      item_sums: with `compute_outputs`, ``"<currency>/<item>"`` -> ``lines`` (count)
        and ``amount`` (sum, decimal string), for the equality check.
    """

    totals: dict[str, dict[str, Any]]
    counts: dict[str, int]
    seconds: float
    item_sums: dict[str, dict[str, Any]] = field(default_factory=dict)


# --- inputs -------------------------------------------------------------------------------


def usage_files(input_dir: Path) -> list[Path]:
    """Usage files as the batch finds them: any depth, not hidden, Parquet or CSV."""
    usage_dir = input_dir / "usage"
    return sorted(
        p for p in usage_dir.rglob("*")
        if p.is_file() and p.suffix in (".parquet", ".csv") and not p.name.startswith((".", "_"))
    )


def _table(input_dir: Path, name: str) -> Path:
    for suffix in (".parquet", ".csv"):
        path = input_dir / f"{name}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"{input_dir}: neither {name}.parquet nor {name}.csv")


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join(_sql_str(str(p)) for p in paths) + "]"


def _reader(path: Path) -> str:
    if path.suffix == ".csv":
        return f"read_csv({_sql_str(str(path))}, header = true, all_varchar = true)"
    return f"read_parquet({_sql_str(str(path))})"


def _load_tables(con: duckdb.DuckDBPyConnection, input_dir: Path) -> None:
    """Views over usage, tables for the small inputs (events keep their file order)."""
    files = usage_files(input_dir)
    if not files:
        raise FileNotFoundError(f"{input_dir}/usage: no usage files")
    sources = []
    parquet = [p for p in files if p.suffix == ".parquet"]
    csv = [p for p in files if p.suffix == ".csv"]
    if parquet:
        scan = f"read_parquet({_sql_list(parquet)}, union_by_name = true)"
        names = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        live = "live_group_count" if "live_group_count" in names else "NULL::BIGINT"
        sources.append(f"SELECT sdk_app_id, date, dau, group_count, {live} AS live_group_count "
                       f"FROM {scan}")
    if csv:
        scan = (f"read_csv({_sql_list(csv)}, header = true, all_varchar = true, "
                "union_by_name = true)")
        names = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        live = ("CAST(trim(live_group_count) AS BIGINT)" if "live_group_count" in names
                else "NULL::BIGINT")
        sources.append(
            "SELECT CAST(trim(sdk_app_id) AS BIGINT) AS sdk_app_id, "
            "CAST(trim(date) AS DATE) AS date, CAST(trim(dau) AS BIGINT) AS dau, "
            f"CAST(trim(group_count) AS BIGINT) AS group_count, {live} AS live_group_count "
            f"FROM {scan}"
        )
    con.execute("CREATE VIEW usage_raw AS " + " UNION ALL ".join(sources))
    con.execute(
        "CREATE TEMP TABLE apps AS SELECT CAST(sdk_app_id AS BIGINT) AS sdk_app_id, "
        f"CAST(customer_id AS VARCHAR) AS customer_id FROM {_reader(_table(input_dir, 'apps'))}"
    )
    customers = _reader(_table(input_dir, "customers"))
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {customers}").fetchall()}
    # The optional columns (issue 21): absent = null in every row.
    optional = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" if c in present
                         else f"CAST(NULL AS VARCHAR) AS {c}" for c in CUSTOMERS_OPTIONAL)
    con.execute(
        "CREATE TEMP TABLE customers AS SELECT CAST(customer_id AS VARCHAR) AS customer_id, "
        "CAST(country AS VARCHAR) AS country, CAST(currency AS VARCHAR) AS currency, "
        # The buyer data each issued document keeps (invoices.parquet, issue 19).
        "CAST(name AS VARCHAR) AS name, CAST(email AS VARCHAR) AS email, "
        "CAST(address AS VARCHAR) AS address, CAST(tax_id AS VARCHAR) AS tax_id, "
        f"CAST(locale AS VARCHAR) AS locale, {optional} "
        f"FROM {customers}"
    )
    # rowid follows the file's row order: the later row of two same-day events wins.
    con.execute(
        "CREATE TEMP TABLE events AS SELECT CAST(sdk_app_id AS BIGINT) AS sdk_app_id, "
        "CAST(effective_date AS DATE) AS effective_date, CAST(item AS VARCHAR) AS item, "
        "CAST(value AS VARCHAR) AS value "
        f"FROM {_reader(_table(input_dir, 'subscription_events'))}"
    )


def _load_pricebook(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Every price-book version as small tables of DECIMAL(38, 6) figures."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    con.execute(f"""
        CREATE TEMP TABLE versions_all (
            version_id VARCHAR, currency VARCHAR, effective_from DATE, plan_fee_policy VARCHAR,
            minor_units INTEGER, minor_unit DECIMAL(38, {MONEY_SCALE}), micro_per_minor BIGINT,
            fee_free DECIMAL(38, {MONEY_SCALE}), fee_pro DECIMAL(38, {MONEY_SCALE}),
            fee_flagship DECIMAL(38, {MONEY_SCALE}),
            dau_free_quota BIGINT, dau_block BIGINT, dau_price DECIMAL(38, {MONEY_SCALE}),
            group_free_quota BIGINT, group_block BIGINT, group_price DECIMAL(38, {MONEY_SCALE}),
            av_trial_days INTEGER)""")
    con.execute(f"CREATE TEMP TABLE addon_prices_all (version_id VARCHAR, item VARCHAR, "
                f"tier VARCHAR, price DECIMAL(38, {MONEY_SCALE}))")
    con.execute(f"CREATE TEMP TABLE tax_all (version_id VARCHAR, country VARCHAR, "
                f"rate DECIMAL(38, {MONEY_SCALE}))")
    versions, addons, taxes = [], [], []
    for v in doc["version"]:
        effective: date = v["effective_from"]
        currency = str(v["currency"])
        version_id = f"{currency}@{effective.isoformat()}"
        mu = int(get_currency_precision(currency))
        fee = v["plan_fee"]
        dau, grp = v["dau_overage"], v["group_overage"]
        versions.append((
            version_id, currency, effective, v.get("plan_fee_policy", "month_start"), mu,
            str(Decimal(1).scaleb(-mu)), 10 ** (MONEY_SCALE - mu),
            str(fee["free"]), str(fee["pro"]), str(fee["flagship"]),
            dau["free_quota"], dau["block"], str(dau["price_per_block"]),
            grp["free_quota"], grp["block"], str(grp["price_per_block"]),
            v["addon"]["av_call"]["trial_days"],
        ))
        for item, table in v["addon"].items():
            if item in TIERED_ADDONS:
                addons += [(version_id, item, tier, str(price)) for tier, price in table.items()]
            else:
                addons.append((version_id, item, "on", str(table["price"])))
        taxes += [(version_id, country, str(rate)) for country, rate in v.get("tax", {}).items()]
    con.executemany(f"INSERT INTO versions_all VALUES ({', '.join(['?'] * 17)})", versions)
    con.executemany("INSERT INTO addon_prices_all VALUES (?, ?, ?, ?)", addons)
    if taxes:
        con.executemany("INSERT INTO tax_all VALUES (?, ?, ?)", taxes)
    con.execute("CREATE TEMP TABLE included (item VARCHAR, plan VARCHAR, included_tier BIGINT)")
    con.executemany("INSERT INTO included VALUES (?, ?, ?)",
                    [(i, p, t) for i, by_plan in INCLUDED_TIER.items() for p, t in by_plan.items()])


# --- the computation ----------------------------------------------------------------------

_MACROS = f"""
CREATE MACRO round_money(x, mu) AS CASE mu
    WHEN 0 THEN CAST(round(x, 0) AS DECIMAL(38, {MONEY_SCALE}))
    WHEN 1 THEN CAST(round(x, 1) AS DECIMAL(38, {MONEY_SCALE}))
    WHEN 2 THEN CAST(round(x, 2) AS DECIMAL(38, {MONEY_SCALE}))
    WHEN 3 THEN CAST(round(x, 3) AS DECIMAL(38, {MONEY_SCALE}))
    ELSE CAST(round(x, 4) AS DECIMAL(38, {MONEY_SCALE})) END;
-- fee x days / days_in_month, rounded half-up to the minor unit, in exact integers.
CREATE MACRO prorate(fee, days, dim, micro_per_minor, minor_unit) AS
    CAST((2 * CAST(fee * 1000000 AS HUGEINT) * days + dim * micro_per_minor)
         // (2 * dim * micro_per_minor) AS DECIMAL(38, 0)) * minor_unit;
-- days / days_in_month rounded up at 21 decimals (the product's month_share), built as
-- text from exact integers so that no division of decimals is involved.
CREATE MACRO month_share(days, dim) AS CAST(
    CAST((CAST(days AS HUGEINT) * 1000000000000000000000 + dim - 1) // dim
         // 1000000000000000000000 AS VARCHAR) || '.' ||
    lpad(CAST((CAST(days AS HUGEINT) * 1000000000000000000000 + dim - 1) // dim
              % 1000000000000000000000 AS VARCHAR), 21, '0') AS DECIMAL(38, 21));
"""

_COMMON = """
CREATE TEMP TABLE chosen AS
SELECT * FROM versions_all WHERE effective_from <= {start}
QUALIFY row_number() OVER (PARTITION BY currency ORDER BY effective_from DESC) = 1;

CREATE TEMP TABLE app_prices AS
SELECT a.sdk_app_id, a.customer_id, ch.*
FROM apps a JOIN customers c USING (customer_id) JOIN chosen ch ON ch.currency = c.currency;

-- Events up to the month's end (of two events of one item on one day, the later row wins).
CREATE TEMP TABLE log AS
SELECT sdk_app_id, item, effective_date, value FROM (
    SELECT *, rowid AS source_row FROM events WHERE effective_date <= {end})
QUALIFY row_number() OVER (
    PARTITION BY sdk_app_id, item, effective_date ORDER BY source_row DESC) = 1;

-- Runs of days inside the month on which an (app, item) held one value.
CREATE TEMP TABLE segs AS
SELECT * FROM (
    SELECT sdk_app_id, item, value,
           greatest(effective_date, {start}) AS seg_start,
           least(coalesce(lead(effective_date) OVER w - 1, {end}), {end}) AS seg_end
    FROM log
    WINDOW w AS (PARTITION BY sdk_app_id, item ORDER BY effective_date))
WHERE seg_end >= seg_start;

-- Plan segments: a day with no plan segment has no plan (treated like Free).
CREATE TEMP TABLE plan_segs AS
SELECT sdk_app_id, value AS plan, seg_start, seg_end FROM segs WHERE item = 'plan';

"""

#: Totals only: the peaks without their day or plan.
_USAGE_TOTALS = """
-- Billable usage rows (known app, date in the month, non-negative metrics), each joined
-- to the plan segment covering its day, reduced straight to one row per app: the R2/R3
-- peaks over Pro/Flagship days and the row accounting. A maximum does not change when a
-- row is repeated or when conflicting rows of one day are merged by maximum (what
-- --on-conflict max bills), so no per-day aggregation is needed for the charges. The days
-- with usage are counted with a bit per day of the month (at most 31 bits).
CREATE TEMP TABLE usage_apps AS
SELECT u.sdk_app_id,
       max(u.dau) FILTER (WHERE p.plan IN ('pro', 'flagship')) AS peak_dau,
       max(u.group_count) FILTER (WHERE p.plan IN ('pro', 'flagship')) AS peak_groups,
       count(*) AS valid_rows,
       bit_count(bit_or(CAST(1 AS BIGINT) << (u.date - {start}))) AS billed
FROM usage_raw u LEFT JOIN plan_segs p
     ON u.sdk_app_id = p.sdk_app_id AND u.date BETWEEN p.seg_start AND p.seg_end
WHERE u.sdk_app_id IN (SELECT sdk_app_id FROM apps)
  AND u.date BETWEEN {start} AND {end}
  AND u.dau >= 0 AND u.group_count >= 0 AND coalesce(u.live_group_count, 0) >= 0
GROUP BY u.sdk_app_id;

"""

_DAY_VERSIONS = """
-- Apps with more rows than days: distinct versions per day there (exact duplicates
-- collapse; more than one version is a conflict), for the accounting of rows.
CREATE TEMP TABLE day_versions AS
SELECT u.sdk_app_id, u.date,
       count(DISTINCT (u.dau, u.group_count, u.live_group_count)) AS versions
FROM usage_raw u
WHERE u.sdk_app_id IN (SELECT sdk_app_id FROM usage_apps WHERE valid_rows > billed)
  AND u.date BETWEEN {start} AND {end}
  AND u.dau >= 0 AND u.group_count >= 0 AND coalesce(u.live_group_count, 0) >= 0
GROUP BY u.sdk_app_id, u.date;

"""

#: Totals only: customer, item and amount of each line, nothing else.
_LINES_TOTALS = """
CREATE TEMP TABLE lines AS
-- R1, month_start: the plan in force on the 1st.
SELECT ap.customer_id, 'plan_fee' AS item,
       round_money(CASE s.value WHEN 'pro' THEN ap.fee_pro WHEN 'flagship' THEN ap.fee_flagship
                   ELSE ap.fee_free END, ap.minor_units) AS amount
FROM segs s JOIN app_prices ap USING (sdk_app_id)
WHERE s.item = 'plan' AND ap.plan_fee_policy = 'month_start' AND s.seg_start = {start}
UNION ALL
-- R1, prorate_daily: each plan for its days.
SELECT ap.customer_id, 'plan_fee',
       prorate(CASE p.plan WHEN 'pro' THEN ap.fee_pro WHEN 'flagship' THEN ap.fee_flagship
               ELSE ap.fee_free END, p.days, {days_in_month}, ap.micro_per_minor, ap.minor_unit)
FROM (SELECT sdk_app_id, value AS plan, sum(seg_end - seg_start + 1) AS days
      FROM segs WHERE item = 'plan' GROUP BY ALL) p
JOIN app_prices ap USING (sdk_app_id)
WHERE ap.plan_fee_policy = 'prorate_daily'
UNION ALL
-- R2, R3: peaks over the days on Pro or Flagship, whole blocks.
(WITH peaks AS (SELECT * FROM usage_apps WHERE peak_dau IS NOT NULL)
 SELECT ap.customer_id, 'dau_overage',
        round_money(ap.dau_price * ((greatest(k.peak_dau - ap.dau_free_quota, 0)
                                     + ap.dau_block - 1) // ap.dau_block), ap.minor_units)
 FROM peaks k JOIN app_prices ap USING (sdk_app_id)
 UNION ALL
 SELECT ap.customer_id, 'group_overage',
        round_money(ap.group_price * ((greatest(k.peak_groups - ap.group_free_quota, 0)
                                       + ap.group_block - 1) // ap.group_block), ap.minor_units)
 FROM peaks k JOIN app_prices ap USING (sdk_app_id))
UNION ALL
-- R4, R5: highest tier among the days that exceed what that day's plan includes.
(WITH addon_days AS (
    SELECT sdk_app_id, item,
           CASE WHEN value = 'on' THEN 1 ELSE TRY_CAST(value AS BIGINT) END AS tier_value,
           CAST(seg_start + CAST(unnest(range(0, seg_end - seg_start + 1)) AS INTEGER) AS DATE)
               AS date
    FROM segs
    WHERE item IN ('avchatroom_unlimited', 'group_member_limit', 'groups_per_user',
                   'history_retention_days') AND value <> 'off'
 ), charged AS (
    SELECT d.sdk_app_id, d.item,
           max(d.tier_value) FILTER (WHERE d.tier_value > i.included_tier) AS tier_value
    FROM addon_days d LEFT JOIN plan_segs p
         ON d.sdk_app_id = p.sdk_app_id AND d.date BETWEEN p.seg_start AND p.seg_end
    JOIN included i ON i.item = d.item AND i.plan = coalesce(p.plan, 'free')
    GROUP BY d.sdk_app_id, d.item)
 SELECT ap.customer_id, c.item, round_money(pr.price, ap.minor_units)
 FROM charged c JOIN app_prices ap USING (sdk_app_id)
 LEFT JOIN addon_prices_all pr
      ON pr.version_id = ap.version_id AND pr.item = c.item
     AND pr.tier = CASE WHEN c.item = 'avchatroom_unlimited' THEN 'on'
                        ELSE CAST(c.tier_value AS VARCHAR) END
 WHERE c.tier_value IS NOT NULL)
UNION ALL
-- R6: av_call pays when a day after the trial (from the first-ever switch-on) is active.
(WITH first_on AS (
    SELECT sdk_app_id, min(effective_date) AS first_on FROM log
    WHERE item = 'av_call' AND value = 'on' GROUP BY sdk_app_id
 ), active AS (
    SELECT sdk_app_id, max(seg_end) AS last_active FROM segs
    WHERE item = 'av_call' AND value = 'on' GROUP BY sdk_app_id)
 SELECT ap.customer_id, 'av_call',
        round_money(pr.price * CASE WHEN a.last_active > f.first_on + (ap.av_trial_days - 1)
                                    THEN 1 ELSE 0 END, ap.minor_units)
 FROM active a JOIN first_on f USING (sdk_app_id) JOIN app_prices ap USING (sdk_app_id)
 LEFT JOIN addon_prices_all pr
      ON pr.version_id = ap.version_id AND pr.item = 'av_call' AND pr.tier = 'on');

"""

#: With outputs: the peaks with their first day and that day's plan. Each usage day is
#: keyed ``value × 32 + (31 − day index)``: the largest key is the peak value on its
#: first day, and ``arg_max`` reads that day's plan.
_USAGE_EVIDENCE = """
CREATE TEMP TABLE usage_apps AS
SELECT sdk_app_id,
       max(dau_key) FILTER (WHERE paid) AS dau_key,
       arg_max(plan, dau_key) FILTER (WHERE paid) AS dau_plan,
       max(group_key) FILTER (WHERE paid) AS group_key,
       arg_max(plan, group_key) FILTER (WHERE paid) AS group_plan,
       count(*) AS valid_rows,
       bit_count(bit_or(CAST(1 AS BIGINT) << day_index)) AS billed
FROM (
    SELECT u.sdk_app_id, p.plan, p.plan IN ('pro', 'flagship') AS paid,
           u.date - {start} AS day_index,
           u.dau * 32 + (31 - (u.date - {start})) AS dau_key,
           u.group_count * 32 + (31 - (u.date - {start})) AS group_key
    FROM usage_raw u LEFT JOIN plan_segs p
         ON u.sdk_app_id = p.sdk_app_id AND u.date BETWEEN p.seg_start AND p.seg_end
    WHERE u.sdk_app_id IN (SELECT sdk_app_id FROM apps)
      AND u.date BETWEEN {start} AND {end}
      AND u.dau >= 0 AND u.group_count >= 0 AND coalesce(u.live_group_count, 0) >= 0)
GROUP BY sdk_app_id;

"""

#: With outputs: every line with the evidence columns of ``line_items.parquet``.
_LINES_EVIDENCE = """
CREATE MACRO titled(plan) AS upper(plan[1]) || plan[2:];
CREATE MACRO fee_of(plan, free, pro, flagship) AS CASE plan WHEN 'pro' THEN pro
    WHEN 'flagship' THEN flagship ELSE free END;

CREATE TEMP TABLE lines AS
-- R1, month_start: the plan in force on the 1st.
SELECT customer_id, sdk_app_id, 'plan_fee' AS item,
       titled(plan) || ' plan, in force on ' || CAST({start} AS VARCHAR) AS description,
       1 AS quantity, fee AS unit_price, round_money(fee, minor_units) AS amount,
       currency, plan, version_id AS pricebook_version
FROM (SELECT ap.*, s.value AS plan,
             fee_of(s.value, ap.fee_free, ap.fee_pro, ap.fee_flagship) AS fee
      FROM segs s JOIN app_prices ap USING (sdk_app_id)
      WHERE s.item = 'plan' AND ap.plan_fee_policy = 'month_start'
        AND s.seg_start = {start})
UNION ALL BY NAME
-- R1, prorate_daily: each plan for its days.
SELECT customer_id, sdk_app_id, 'plan_fee' AS item,
       concat(titled(plan), ' plan, ', days, ' of ', {days_in_month}, ' days') AS description,
       month_share(days, {days_in_month}) AS quantity, fee AS unit_price,
       prorate(fee, days, {days_in_month}, micro_per_minor, minor_unit) AS amount,
       currency, plan, days AS days_on_plan, {days_in_month} AS days_in_month,
       version_id AS pricebook_version
FROM (SELECT ap.*, p.plan, p.days, fee_of(p.plan, ap.fee_free, ap.fee_pro, ap.fee_flagship) AS fee
      FROM (SELECT sdk_app_id, value AS plan, sum(seg_end - seg_start + 1) AS days
            FROM segs WHERE item = 'plan' GROUP BY ALL) p
      JOIN app_prices ap USING (sdk_app_id)
      WHERE ap.plan_fee_policy = 'prorate_daily')
UNION ALL BY NAME
-- R2, R3: peaks over the days on Pro or Flagship, whole blocks.
(WITH peaks AS (
    SELECT ap.*, 'dau_overage' AS item, 'DAU' AS label, k.dau_key AS peak_key,
           k.dau_plan AS plan, ap.dau_free_quota AS free_quota, ap.dau_block AS block,
           ap.dau_price AS unit_price
    FROM usage_apps k JOIN app_prices ap USING (sdk_app_id) WHERE k.dau_key IS NOT NULL
    UNION ALL
    SELECT ap.*, 'group_overage', 'Peak group count', k.group_key, k.group_plan,
           ap.group_free_quota, ap.group_block, ap.group_price
    FROM usage_apps k JOIN app_prices ap USING (sdk_app_id) WHERE k.group_key IS NOT NULL
 ), excess AS (
    SELECT *, peak_key // 32 AS peak_value,
           CAST({start} + CAST(31 - peak_key % 32 AS INTEGER) AS DATE) AS peak_date,
           greatest(peak_key // 32 - free_quota, 0) AS excess
    FROM peaks
 ), blocks AS (SELECT *, (excess + block - 1) // block AS quantity FROM excess)
 SELECT customer_id, sdk_app_id, item,
        concat(label, ' overage: peak ', peak_value, ' on ', CAST(peak_date AS VARCHAR),
               ', free quota ', free_quota, ', excess ', excess, ', ', quantity,
               ' block(s) of ', block) AS description,
        quantity, unit_price, round_money(unit_price * quantity, minor_units) AS amount,
        currency, plan, peak_value, peak_date, free_quota, block, excess,
        version_id AS pricebook_version
 FROM blocks)
UNION ALL BY NAME
-- R4, R5: highest tier among the days that exceed what that day's plan includes; the
-- activity (days, first and last day) counts every active day.
(WITH active_segs AS (
    SELECT sdk_app_id, item, seg_start, seg_end,
           CASE WHEN value = 'on' THEN 1 ELSE TRY_CAST(value AS BIGINT) END AS tier_value
    FROM segs
    WHERE item IN ('avchatroom_unlimited', 'group_member_limit', 'groups_per_user',
                   'history_retention_days') AND value <> 'off'
 ), activity AS (
    SELECT sdk_app_id, item, sum(seg_end - seg_start + 1) AS active_days,
           min(seg_start) AS first_active, max(seg_end) AS last_active
    FROM active_segs GROUP BY ALL
 ), addon_days AS (
    SELECT sdk_app_id, item, tier_value,
           CAST(seg_start + CAST(unnest(range(0, seg_end - seg_start + 1)) AS INTEGER) AS DATE)
               AS date
    FROM active_segs
 ), charged AS (
    SELECT d.sdk_app_id, d.item,
           max(d.tier_value) FILTER (WHERE d.tier_value > i.included_tier) AS tier_value,
           arg_max_null(p.plan, d.date) FILTER (WHERE d.tier_value > i.included_tier) AS plan
    FROM addon_days d LEFT JOIN plan_segs p
         ON d.sdk_app_id = p.sdk_app_id AND d.date BETWEEN p.seg_start AND p.seg_end
    JOIN included i ON i.item = d.item AND i.plan = coalesce(p.plan, 'free')
    GROUP BY d.sdk_app_id, d.item
 ), tiered AS (
    SELECT c.*, CASE WHEN c.item = 'avchatroom_unlimited' THEN 'on'
                     ELSE CAST(c.tier_value AS VARCHAR) END AS tier
    FROM charged c WHERE c.tier_value IS NOT NULL)
 SELECT ap.customer_id, ap.sdk_app_id, c.item,
        concat(c.item, ' ', c.tier, ', active ', a.active_days, ' day(s) from ',
               CAST(a.first_active AS VARCHAR), ' to ', CAST(a.last_active AS VARCHAR))
            AS description,
        1 AS quantity, pr.price AS unit_price, round_money(pr.price, ap.minor_units) AS amount,
        ap.currency, c.plan, c.tier, a.active_days, a.first_active, a.last_active,
        ap.version_id AS pricebook_version
 FROM tiered c JOIN activity a USING (sdk_app_id, item) JOIN app_prices ap USING (sdk_app_id)
 LEFT JOIN addon_prices_all pr
      ON pr.version_id = ap.version_id AND pr.item = c.item AND pr.tier = c.tier)
UNION ALL BY NAME
-- R6: av_call pays when a day after the trial (from the first-ever switch-on) is active.
(WITH first_on AS (
    SELECT sdk_app_id, min(effective_date) AS first_on FROM log
    WHERE item = 'av_call' AND value = 'on' GROUP BY sdk_app_id
 ), active AS (
    SELECT sdk_app_id, sum(seg_end - seg_start + 1) AS active_days,
           min(seg_start) AS first_active, max(seg_end) AS last_active FROM segs
    WHERE item = 'av_call' AND value = 'on' GROUP BY sdk_app_id
 ), trial AS (
    SELECT a.*, ap.*, CAST(f.first_on + (ap.av_trial_days - 1) AS DATE) AS trial_end
    FROM active a JOIN first_on f USING (sdk_app_id) JOIN app_prices ap USING (sdk_app_id)
 ), charged AS (
    SELECT *, CASE WHEN last_active > trial_end THEN 1 ELSE 0 END AS quantity FROM trial)
 SELECT c.customer_id, c.sdk_app_id, 'av_call' AS item,
        CASE WHEN c.quantity = 0
             THEN concat('av_call, active ', c.active_days, ' day(s), free trial until ',
                         CAST(c.trial_end AS VARCHAR))
             ELSE concat('av_call, active ', c.active_days, ' day(s) from ',
                         CAST(c.first_active AS VARCHAR), ' to ',
                         CAST(c.last_active AS VARCHAR), ', trial ended ',
                         CAST(c.trial_end AS VARCHAR)) END AS description,
        c.quantity, pr.price AS unit_price,
        round_money(pr.price * c.quantity, c.minor_units) AS amount,
        c.currency, 'on' AS tier, c.active_days, c.first_active, c.last_active, c.trial_end,
        c.version_id AS pricebook_version
 FROM charged c
 LEFT JOIN addon_prices_all pr
      ON pr.version_id = c.version_id AND pr.item = 'av_call' AND pr.tier = 'on');

"""

_INVOICES = """
-- R7: subtotal of rounded lines, tax half-up, total; every customer gets a row.
CREATE TEMP TABLE invoices AS
SELECT *, CAST(subtotal + tax AS DECIMAL(38, 6)) AS total FROM (
    SELECT c.customer_id, c.currency, s.subtotal,
           round_money(s.subtotal * coalesce(t.rate, CAST(0 AS DECIMAL(38, 6))),
                       ch.minor_units) AS tax
    FROM customers c
    JOIN chosen ch ON ch.currency = c.currency
    LEFT JOIN tax_all t ON t.version_id = ch.version_id AND t.country = c.country
    JOIN (SELECT cu.customer_id,
                 CAST(coalesce(sum(l.amount), 0) AS DECIMAL(38, 6)) AS subtotal
          FROM customers cu LEFT JOIN lines l USING (customer_id)
          GROUP BY cu.customer_id) s USING (customer_id));
"""

_TOTALS = """
SELECT currency, count(*) AS invoices, sum(subtotal) AS subtotal, sum(tax) AS tax,
       sum(total) AS total
FROM invoices WHERE total <> 0 GROUP BY currency ORDER BY currency
"""

_COUNTS = """
SELECT (SELECT count(*) FROM usage_raw) AS rows_in,
       coalesce(sum(billed), 0) AS billed,
       coalesce(sum(valid_rows), 0) AS valid_rows,
       coalesce(sum(billed), 0) + (SELECT coalesce(sum(versions - 1), 0)
                                   FROM day_versions) AS distinct_rows,
       (SELECT count(*) FROM lines) AS line_items,
       (SELECT count(*) FROM invoices) AS customers
FROM usage_apps
"""


#: Line order under an app (the invoice's order), for sorting the written line items.
LINE_ITEMS_ORDER = ("plan_fee", "dau_overage", "group_overage", "avchatroom_unlimited",
                    "group_member_limit", "groups_per_user", "history_retention_days",
                    "av_call")
_ITEM_ORDER_SQL = "CASE item " + " ".join(
    f"WHEN '{item}' THEN {i}" for i, item in enumerate(LINE_ITEMS_ORDER)) + " END"

#: With outputs: invoice numbers (R10) and the two Parquet files.
_OUTPUTS = """
CREATE TEMP TABLE invoices_out AS
SELECT CASE WHEN i.total <> 0 THEN printf('IM-{compact}-%06d', sum(
           CASE WHEN i.total <> 0 THEN 1 ELSE 0 END) OVER (
           ORDER BY i.customer_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) END
           AS invoice_number,
       i.customer_id, i.currency, i.subtotal,
       CAST(coalesce(t.rate, 0) AS DECIMAL(38, 6)) AS tax_rate, i.tax, i.total,
       ch.version_id AS pricebook_version, CAST(coalesce(n.lines, 0) AS BIGINT) AS line_count,
       CAST(NULL AS VARCHAR) AS pdf_sha256,
       c.name AS buyer_name, c.email AS buyer_email, c.address AS buyer_address,
       c.country AS buyer_country, CAST(c.tax_id AS VARCHAR) AS buyer_tax_id,
       c.locale AS buyer_locale, c.postcode AS buyer_postcode, c.city AS buyer_city,
       c.buyer_reference AS buyer_order_reference, c.peppol_scheme AS buyer_peppol_scheme,
       c.peppol_id AS buyer_peppol_id, c.mandate_reference AS buyer_mandate_reference,
       CASE WHEN c.einvoice_format = 'none' THEN NULL
            WHEN c.einvoice_format IS NOT NULL THEN c.einvoice_format
            WHEN c.country IN ({eu_countries}) THEN 'facturx' END AS einvoice_format
FROM invoices i JOIN customers c USING (customer_id)
JOIN chosen ch ON ch.currency = i.currency
LEFT JOIN tax_all t ON t.version_id = ch.version_id AND t.country = c.country
LEFT JOIN (SELECT customer_id, count(*) AS lines FROM lines GROUP BY ALL) n USING (customer_id)
ORDER BY i.customer_id;

COPY (
    SELECT n.invoice_number, l.customer_id, CAST(l.sdk_app_id AS BIGINT) AS sdk_app_id,
           l.item, l.description, CAST(l.quantity AS DECIMAL(38, 21)) AS quantity,
           CAST(l.unit_price AS DECIMAL(38, 6)) AS unit_price,
           CAST(l.amount AS DECIMAL(38, 6)) AS amount, l.currency, l.plan, l.tier,
           CAST(l.peak_value AS BIGINT) AS peak_value, l.peak_date,
           CAST(l.free_quota AS BIGINT) AS free_quota, CAST(l.block AS BIGINT) AS block,
           CAST(l.excess AS BIGINT) AS excess,
           CAST(NULL AS VARCHAR) AS bands,  -- the baseline prices the block model only
           CAST(l.days_on_plan AS BIGINT) AS days_on_plan,
           CAST(l.days_in_month AS BIGINT) AS days_in_month,
           CAST(l.active_days AS BIGINT) AS active_days, l.first_active, l.last_active,
           l.trial_end, l.pricebook_version
    FROM lines l JOIN invoices_out n USING (customer_id)
    ORDER BY l.customer_id, l.sdk_app_id, {item_order}, l.plan NULLS LAST
) TO {line_items} ({options});

COPY (SELECT * FROM invoices_out ORDER BY customer_id) TO {invoices} ({options});
"""

_ITEM_SUMS = """
SELECT currency, item, count(*), CAST(sum(amount) AS DECIMAL(38, 6))
FROM lines GROUP BY ALL ORDER BY ALL
"""


def plain(value: Decimal) -> str:
    """A decimal as text with at least two decimals and no other trailing zeros."""
    text = format(value.normalize(), "f")
    if "." in text:
        whole, frac = text.split(".")
        return f"{whole}.{frac.ljust(2, '0')}"
    return text


def _connect(input_dir: Path, pricebook: Path | None, threads: int | None
             ) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    _load_tables(con, input_dir)
    _load_pricebook(con, pricebook or input_dir / "pricebook.toml")
    con.execute(_MACROS)
    return con


def _compute(con: duckdb.DuckDBPyConnection, month: Month, evidence: bool) -> None:
    """Every table up to ``lines`` and ``invoices``: the totals-only queries, or the ones
    that keep each line's evidence (`evidence`)."""
    parts = [_COMMON, _USAGE_EVIDENCE if evidence else _USAGE_TOTALS, _DAY_VERSIONS,
             _LINES_EVIDENCE if evidence else _LINES_TOTALS, _INVOICES]
    con.execute("".join(parts).format(
        start=f"DATE '{month.start.isoformat()}'", end=f"DATE '{month.end.isoformat()}'",
        days_in_month=month.days,
    ))
    missing = con.execute(
        "SELECT DISTINCT c.currency FROM customers c ANTI JOIN chosen USING (currency)"
    ).fetchall()
    if missing:
        raise ValueError(f"no price-book version for {sorted(r[0] for r in missing)}")


def _results(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    totals = {
        cur: {"invoices": int(n), "subtotal": plain(sub), "tax": plain(tax),
              "total": plain(tot)}
        for cur, n, sub, tax, tot in con.execute(_TOTALS).fetchall()
    }
    rows_in, billed, valid, distinct, line_items, customers = con.execute(
        _COUNTS).fetchone() or (0, 0, 0, 0, 0, 0)
    counts = {
        "rows_in": int(rows_in),
        "billed": int(billed),
        "duplicates": int(valid) - int(distinct),
        "conflicts_merged": int(distinct) - int(billed),
        "rejected": int(rows_in) - int(valid),
        "line_items": int(line_items),
        "customers": int(customers),
    }
    return totals, counts


def compute_totals(input_dir: Path, month: Month, pricebook: Path | None = None,
                   threads: int | None = None) -> BaselineResult:
    """Totals only: the charges per customer and currency, no line evidence, no files.

    This is the baseline as first written; `compute_outputs` is the equivalent of what
    the invoicing side measures.
    """
    began = time.perf_counter()
    con = _connect(input_dir, pricebook, threads)
    try:
        _compute(con, month, evidence=False)
        totals, counts = _results(con)
    finally:
        con.close()
    return BaselineResult(totals=totals, counts=counts, seconds=time.perf_counter() - began)


def compute_outputs(input_dir: Path, month: Month, out_dir: Path, *,
                    compression: str = "zstd", compression_level: int | None = None,
                    pricebook: Path | None = None, threads: int | None = None
                    ) -> BaselineResult:
    """The same charges with every line's evidence, written like the batch writes them.

    Materialises one row per line item with the columns of ``line_items.parquet``
    (description, quantity, unit price, plan, tier, peak value and its first day, free
    quota, block, excess, days, activity, trial end, price-book version), numbers the
    invoices (R10) and writes ``line_items.parquet`` (in line order: customer, app, item,
    plan) and ``invoices.parquet`` (by customer) into `out_dir` with ``COPY ... TO``,
    using the Parquet codec given (the one the batch uses). `seconds` covers reading,
    computing and writing; ``item_sums`` in the counts' companion is filled for checks.
    """
    began = time.perf_counter()
    con = _connect(input_dir, pricebook, threads)
    try:
        _compute(con, month, evidence=True)
        options = f"FORMAT parquet, COMPRESSION {compression}"
        if compression_level is not None:
            options += f", COMPRESSION_LEVEL {int(compression_level)}"
        con.execute(_OUTPUTS.format(
            compact=month.compact, item_order=_ITEM_ORDER_SQL, options=options,
            eu_countries=", ".join(f"'{c}'" for c in sorted(EU_MEMBER_STATES)),
            line_items=_sql_str(str(out_dir / "line_items.parquet")),
            invoices=_sql_str(str(out_dir / "invoices.parquet")),
        ))
        seconds = time.perf_counter() - began
        totals, counts = _results(con)
        item_sums = {
            f"{cur}/{item}": {"lines": int(n), "amount": plain(amount)}
            for cur, item, n, amount in con.execute(_ITEM_SUMS).fetchall()
        }
    finally:
        con.close()
    return BaselineResult(totals=totals, counts=counts, seconds=seconds, item_sums=item_sums)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--month", required=True, help="YYYY-MM")
    parser.add_argument("--pricebook", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="also write line_items.parquet and invoices.parquet here")
    parser.add_argument("--compression", default="zstd", help="Parquet codec with --out")
    parser.add_argument("--compression-level", type=int, default=None)
    args = parser.parse_args(argv)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        result = compute_outputs(args.input, Month.parse(args.month), args.out,
                                 compression=args.compression,
                                 compression_level=args.compression_level,
                                 pricebook=args.pricebook, threads=args.threads)
    else:
        result = compute_totals(args.input, Month.parse(args.month), args.pricebook,
                                args.threads)
    out = asdict(result)
    out["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
