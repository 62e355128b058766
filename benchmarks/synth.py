"""A seeded synthetic billing month in the SPEC §2 input layout, at any size.

    python -m benchmarks.synth --out /tmp/month --apps 100000 --customers 10000

Writes ``usage/**.parquet`` (split over several files in nested folders, exact schema
``sdk_app_id int64, date date32, dau int64, group_count int64, live_group_count int64``),
``apps.parquet``, ``customers.parquet`` (all string columns), ``subscription_events.parquet``
and ``pricebook.toml`` (USD, KRW and CNY versions; CNY is ``prorate_daily``).

Everything is vectorised (Polars expressions over random columns from
``pyarrow.compute.random`` with fixed seeds) and usage is written one file per chunk of
apps, so 1,000,000 apps x 31 days = 31M rows take seconds and well under 1 GiB. The same
arguments always give the same files.

The month is clean: every usage row is billable (known app, date inside the month,
non-negative metrics), there are no conflicting rows, and every tier an event names is
in the price book. A handful of rows are exported twice (exact duplicates, collapsed by
the batch). The mix: ~30 % Free, ~50 % Pro, ~20 % Flagship; some apps created during the
month, some plan changes mid-month, a few events after the month (ignored); add-ons with
tier changes and switch-offs, ``av_call`` inside and after its trial; DAU and group peaks
above the free quotas on a share of paid apps, Free apps over their caps now and then;
a few apps with missing days or no usage at all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import resource
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow.compute as pc

from invoicing.core.timeframe import Month

APP_ID_BASE = 1_400_000_000
DEFAULT_SEED = 20261031
DEFAULT_MONTH = Month(2026, 10)
_EPOCH = date(1970, 1, 1)

PLAN_CODES: tuple[str, ...] = ("free", "pro", "flagship")
#: Tiered add-ons and the tiers the generated price book lists for them.
TIERS: dict[str, tuple[str, ...]] = {
    "group_member_limit": ("3000", "6000"),
    "groups_per_user": ("2000", "3000"),
    "history_retention_days": ("60", "90", "180", "360"),
}

USAGE_SCHEMA: dict[str, pl.DataType] = {
    "sdk_app_id": pl.Int64(),
    "date": pl.Date(),
    "dau": pl.Int64(),
    "group_count": pl.Int64(),
    "live_group_count": pl.Int64(),
}
EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "sdk_app_id": pl.Int64(),
    "effective_date": pl.Date(),
    "item": pl.String(),
    "value": pl.String(),
}

#: The one price book of the project's fixtures: the sample month's (written by
#: sample_data/generate.py). Benchmarks and tests take their versions from it.
SAMPLE_PRICEBOOK = Path(__file__).resolve().parent.parent / "sample_data/2026-10/pricebook.toml"


def pricebook_version(currency: str, effective_from: str, policy: str | None = None) -> str:
    """One ``[[version]]`` of the sample price book, as TOML text (comments dropped);
    `policy` replaces its ``plan_fee_policy``."""
    text = SAMPLE_PRICEBOOK.read_text(encoding="utf-8")
    for block in text.split("[[version]]")[1:]:
        body = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
        if (f'currency = "{currency}"' in body
                and f"effective_from = {effective_from}\n" in body + "\n"):
            if policy is not None:
                body = re.sub(r'plan_fee_policy = "\w+"', f'plan_fee_policy = "{policy}"', body)
            return "[[version]]" + body.rstrip() + "\n"
    raise KeyError(f"no {currency} version effective from {effective_from} in {SAMPLE_PRICEBOOK}")


def synthetic_pricebook() -> str:
    """USD (current and superseded), KRW and CNY (``prorate_daily``) of the sample book."""
    return "\n".join([
        "# Synthetic month's price book: versions of the sample month's (illustrative\n"
        "# figures; CNY plan fees and overage are the published China-region list prices).\n",
        pricebook_version("USD", "2026-01-01"), pricebook_version("USD", "2025-01-01"),
        pricebook_version("KRW", "2026-01-01"), pricebook_version("CNY", "2026-01-01"),
    ])


@dataclass(frozen=True)
class SynthSpec:
    """What to generate.

    Attributes:
      n_apps: number of apps (``sdk_app_id`` from 1,400,000,000 on).
      n_customers: number of customers; the first ``n_customers`` apps give each one an
        app, the rest are spread with a skew (a few customers own many apps).
      days: usage days from the 1st of the month (at most the month's length).
      seed: base seed of every random column.
      month: the billing month.
      apps_per_file: apps per usage file (a file holds all their days); by default
        an eighth of the apps, at most 50,000, so even small months span several files.
      duplicates: usage rows exported a second time in ``usage/retry/``.
    """

    n_apps: int
    n_customers: int
    days: int = 31
    seed: int = DEFAULT_SEED
    month: Month = DEFAULT_MONTH
    apps_per_file: int | None = None
    duplicates: int = 5


@dataclass(frozen=True)
class SynthSummary:
    """What was written (printed as JSON by the command line)."""

    out: str
    apps: int
    customers: int
    events: int
    usage_rows: int
    usage_files: int
    seconds: float


def _seed(base: int, *parts: object) -> int:
    """A stable 63-bit seed per (base seed, purpose)."""
    digest = hashlib.blake2b(repr((base, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def uniform(n: int, seed: int, name: str) -> pl.Series:
    """`n` uniform floats in [0, 1) from a seeded generator (counts only, never money)."""
    return pl.Series(name, pc.random(n, initializer=seed))


def _day_number(d: date) -> int:
    return (d - _EPOCH).days


def _as_date(expr: pl.Expr) -> pl.Expr:
    """Days since 1970-01-01 (integer) to a Polars date."""
    return expr.cast(pl.Int32).cast(pl.Date)


def _int(expr: pl.Expr) -> pl.Expr:
    return expr.floor().cast(pl.Int64)


def _log_uniform(u: pl.Expr, low: float, high: float) -> pl.Expr:
    return (pl.lit(low).log() + u * (pl.lit(high).log() - pl.lit(low).log())).exp()


# --- apps, customers ----------------------------------------------------------------------


def app_frame(spec: SynthSpec) -> pl.DataFrame:
    """One row per app with its customer, plan history parameters and usage profile.

    Dates are day numbers since 1970-01-01 (``*_day``); usage offsets are 0-based
    days from the 1st of the month (``first_offset``).
    """
    n = spec.n_apps
    names = ["cust", "plan", "created", "created_day", "new_on_first", "age", "change",
             "change_day", "new_plan", "future", "dau", "dau_hi", "groups", "groups_hi", "live",
             "no_usage", "sparse"]
    frame = pl.DataFrame(
        [pl.int_range(n, eager=True, dtype=pl.Int64).alias("i")]
        + [uniform(n, _seed(spec.seed, "apps", name), f"u_{name}") for name in names]
    )
    start = _day_number(spec.month.start)
    days = spec.days
    u = pl.col
    plan0 = (
        pl.when(u("u_plan") < 0.30).then(0).when(u("u_plan") < 0.80).then(1).otherwise(2)
    ).cast(pl.Int64)
    frame = frame.with_columns(
        sdk_app_id=pl.lit(APP_ID_BASE, dtype=pl.Int64) + u("i"),
        customer_idx=pl.when(u("i") < spec.n_customers).then(u("i"))
        .otherwise(_int(u("u_cust") ** 2 * spec.n_customers))
        .clip(0, spec.n_customers - 1),
        plan0=plan0,
        # ~3 % of the apps are created during the month (their first plan event is then).
        first_offset=pl.when((u("u_created") < 0.03) & (days > 5))
        .then(1 + _int(u("u_created_day") * max(days - 4, 1)))
        .otherwise(0),
    ).with_columns(
        plan0_day=pl.when(u("first_offset") > 0).then(start + u("first_offset"))
        .when(u("u_new_on_first") < 0.03).then(pl.lit(start, dtype=pl.Int64))
        .otherwise(start - 1 - _int(u("u_age") * 640)),
        # ~6 % change plan during the month, to one of the two other plans.
        change_offset=pl.when((u("u_change") < 0.06) & (u("first_offset") < days - 1))
        .then(u("first_offset") + 1 + _int(u("u_change_day") * (days - 1 - u("first_offset"))))
        .otherwise(None),
        plan1=(u("plan0") + 1 + _int(u("u_new_plan") * 2)) % 3,
        paid=u("plan0") > 0,
    ).with_columns(
        base_dau=pl.when(u("paid")).then(_log_uniform(u("u_dau"), 50, 30_000))
        .when(u("u_dau_hi") < 0.05).then(100 + u("u_dau") * 300)
        .otherwise(5 + u("u_dau") * 90),
        base_groups=pl.when(u("paid")).then(_log_uniform(u("u_groups"), 10, 200_000))
        .when(u("u_groups_hi") < 0.03).then(100 + u("u_groups") * 100)
        .otherwise(1 + u("u_groups") * 90),
        base_live=pl.when(u("paid")).then(u("u_live") * 58).otherwise(u("u_live") * 12),
        no_usage=u("u_no_usage") < 0.02,
        sparse=u("u_sparse") < 0.04,
    )
    return frame.drop([c for c in frame.columns if c.startswith("u_")])


def customer_frame(spec: SynthSpec) -> pl.DataFrame:
    """Customers: ~50 % USD (a tenth of them in KR, taxed), ~30 % KRW, ~20 % CNY."""
    n = spec.n_customers
    frame = pl.DataFrame(
        [
            pl.int_range(n, eager=True, dtype=pl.Int64).alias("i"),
            uniform(n, _seed(spec.seed, "customers", "currency"), "u_cur"),
            uniform(n, _seed(spec.seed, "customers", "country"), "u_country"),
            uniform(n, _seed(spec.seed, "customers", "tax_id"), "u_tax"),
        ]
    )
    c = pl.col
    currency = pl.when(c("u_cur") < 0.5).then(pl.lit("USD")).when(c("u_cur") < 0.8).then(
        pl.lit("KRW")).otherwise(pl.lit("CNY"))
    frame = frame.with_columns(currency=currency, num=c("i").cast(pl.String).str.zfill(7))
    locale = pl.when(c("currency") == "KRW").then(pl.lit("ko_KR")).when(
        c("currency") == "CNY").then(pl.lit("zh_CN")).otherwise(pl.lit("en_US"))
    country = (
        pl.when(c("currency") == "KRW").then(pl.lit("KR"))
        .when(c("currency") == "CNY").then(pl.lit("CN"))
        .when(c("u_country") < 0.1).then(pl.lit("KR"))
        .when(c("u_country") < 0.2).then(pl.lit("SG"))
        .otherwise(pl.lit("US"))
    )
    name = (
        pl.when(c("currency") == "KRW").then(pl.format("주식회사 가상메신저 {}", c("num")))
        .when(c("currency") == "CNY").then(pl.format("虚拟通讯有限公司 {}", c("num")))
        .otherwise(pl.format("Synthetic Chat {} Inc.", c("num")))
    )
    address = (
        pl.when(c("currency") == "KRW").then(pl.format("서울특별시 강남구 테헤란로 {}\n06236",
                                                        c("i") % 500 + 1))
        .when(c("currency") == "CNY").then(pl.format("上海市浦东新区世纪大道{}号\n200120",
                                                      c("i") % 500 + 1))
        .otherwise(pl.format("{} Market Street\nSan Francisco, CA 94105", c("i") % 900 + 100))
    )
    return frame.with_columns(locale=locale, country=country, name=name, address=address).select(
        customer_id=pl.format("C{}", c("num")),
        name=c("name"),
        email=pl.format("billing+{}@synthetic.example", c("num")),
        address=c("address"),
        country=c("country"),
        currency=c("currency"),
        locale=c("locale"),
        tax_id=pl.when(c("u_tax") < 0.3).then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.format("TX-{}", c("num"))),
    )


# --- subscription events ------------------------------------------------------------------


def _events(frame: pl.DataFrame, item: str, day: pl.Expr, value: pl.Expr) -> pl.DataFrame:
    return frame.select(
        sdk_app_id=pl.col("sdk_app_id"),
        effective_date=_as_date(day),
        item=pl.lit(item),
        value=value.cast(pl.String),
    )


def event_frame(spec: SynthSpec, apps: pl.DataFrame) -> pl.DataFrame:
    """The change log: plans (with mid-month changes), add-ons and ``av_call``."""
    start = _day_number(spec.month.start)
    end_day = start + spec.days - 1
    plans = pl.Series(PLAN_CODES)
    c = pl.col
    parts = [
        _events(apps, "plan", c("plan0_day"), c("plan0").replace_strict(range(3), plans)),
        _events(apps.filter(c("change_offset").is_not_null()), "plan",
                start + c("change_offset"), c("plan1").replace_strict(range(3), plans)),
        # Changes after the month (must be ignored).
        _events(apps.filter(c("i") % 97 == 13), "plan",
                pl.lit(_day_number(spec.month.end) + 5), pl.lit("flagship")),
    ]
    n = apps.height

    def rand(item: str, name: str) -> pl.Series:
        return uniform(n, _seed(spec.seed, "events", item, name), name)

    addons: list[tuple[str, float, tuple[str, ...]]] = [
        ("avchatroom_unlimited", 0.06, ("on",)),
        *[(item, rate, TIERS[item]) for item, rate in
          (("group_member_limit", 0.05), ("groups_per_user", 0.04),
           ("history_retention_days", 0.06))],
        ("av_call", 0.08, ("on",)),
    ]
    for item, rate, tiers in addons:
        r = apps.with_columns(
            rand(item, "pick"), rand(item, "tier"), rand(item, "start"), rand(item, "when"),
            rand(item, "change"), rand(item, "change_day"), rand(item, "off"),
            rand(item, "off_day"), rand(item, "again"),
        )
        eligible = pl.lit(True) if item == "av_call" else c("paid") | (c("pick") < rate / 50)
        r = r.filter(eligible & (c("pick") < rate))
        if item == "av_call":
            # First switch-on between 100 days before and 24 days into the month: some
            # pay (trial over), some are inside the 60-day trial.
            raw_start = start - 100 + _int(c("start") * 125)
        else:
            raw_start = pl.when(c("when") < 0.75).then(start - 1 - _int(c("start") * 400)) \
                .otherwise(start + _int(c("start") * spec.days))
        tier_idx = _int(c("tier") * len(tiers))
        r = r.with_columns(
            start_day=pl.max_horizontal(raw_start, c("plan0_day")),
            tier_idx=tier_idx,
        ).filter(c("start_day") <= end_day)
        r = r.with_columns(
            change_day=pl.when((c("change") < 0.3) & (len(tiers) > 1))
            .then(pl.max_horizontal(c("start_day") + 1, start + _int(c("change_day") * spec.days)))
            .otherwise(None),
        ).with_columns(change_day=pl.when(c("change_day") <= end_day).then(c("change_day")))
        r = r.with_columns(
            off_day=pl.when(c("off") < 0.12).then(
                pl.max_horizontal(c("start_day"), c("change_day")) + 1
                + _int(c("off_day") * 10))
        ).with_columns(off_day=pl.when(c("off_day") <= end_day).then(c("off_day")))
        r = r.with_columns(
            again_day=pl.when(c("again") < 0.5).then(c("off_day") + 3)
        ).with_columns(again_day=pl.when(c("again_day") <= end_day).then(c("again_day")))
        tier_list = pl.Series(list(tiers))
        parts.append(_events(r, item, c("start_day"),
                             c("tier_idx").replace_strict(range(len(tiers)), tier_list)))
        parts.append(_events(r.filter(c("change_day").is_not_null()), item, c("change_day"),
                             ((c("tier_idx") + 1) % len(tiers))
                             .replace_strict(range(len(tiers)), tier_list)))
        parts.append(_events(r.filter(c("off_day").is_not_null()), item, c("off_day"),
                             pl.lit("off")))
        parts.append(_events(r.filter(c("again_day").is_not_null()), item, c("again_day"),
                             c("tier_idx").replace_strict(range(len(tiers)), tier_list)))
    return (
        pl.concat(parts, how="vertical")
        .sort("effective_date", "sdk_app_id", "item", maintain_order=True)
        .cast(EVENTS_SCHEMA)  # type: ignore[arg-type]
    )


# --- usage --------------------------------------------------------------------------------


def usage_chunk(spec: SynthSpec, apps: pl.DataFrame, chunk: int) -> pl.DataFrame:
    """Daily usage of a slice of apps, ordered like a daily export (date, then app)."""
    start = _day_number(spec.month.start)
    grid = apps.filter(~pl.col("no_usage")).select(
        "sdk_app_id", "first_offset", "sparse", "base_dau", "base_groups", "base_live"
    ).join(pl.DataFrame({"d": pl.int_range(spec.days, eager=True, dtype=pl.Int64)}),
           how="cross")
    n = grid.height
    grid = grid.with_columns(
        uniform(n, _seed(spec.seed, "usage", chunk, name), name)
        for name in ("v_dau", "v_groups", "v_live", "v_missing")
    )
    c = pl.col
    grid = grid.filter(
        (c("d") >= c("first_offset")) & ~(c("sparse") & (c("v_missing") < 0.3))
    )
    group_count = _int(c("base_groups") * (0.92 + 0.12 * c("v_groups")))
    return grid.select(
        sdk_app_id=c("sdk_app_id"),
        date=_as_date(start + c("d")),
        dau=_int(c("base_dau") * (0.6 + 0.5 * c("v_dau"))),
        group_count=group_count,
        live_group_count=pl.min_horizontal(group_count,
                                           _int(c("base_live") * (0.7 + 0.5 * c("v_live")))),
    ).sort("date", "sdk_app_id").cast(USAGE_SCHEMA)  # type: ignore[arg-type]


def usage_path(chunk: int) -> str:
    """Nested folders, several files per folder (any depth is allowed by SPEC §2)."""
    return f"usage/shard={chunk % 4}/{2026 + chunk // 40}/part-{chunk:05d}.parquet"


# --- the whole month ----------------------------------------------------------------------


def generate(spec: SynthSpec, out: Path) -> SynthSummary:
    """Write the month into `out` (which must not hold another month's files)."""
    if not 1 <= spec.days <= spec.month.days:
        raise ValueError(f"days must be 1..{spec.month.days}")
    if spec.n_customers < 1 or spec.n_apps < 1:
        raise ValueError("need at least one app and one customer")
    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if (out / "usage").exists() and any((out / "usage").rglob("*.parquet")):
        raise FileExistsError(f"{out}/usage already holds Parquet files")
    apps = app_frame(spec)
    customers = customer_frame(spec)
    customers.write_parquet(out / "customers.parquet")
    apps.select(
        "sdk_app_id",
        customer_id=pl.format("C{}", pl.col("customer_idx").cast(pl.String).str.zfill(7)),
        app_name=pl.format("Synthetic app {}", pl.col("i")),
    ).write_parquet(out / "apps.parquet")
    events = event_frame(spec, apps)
    events.write_parquet(out / "subscription_events.parquet")
    (out / "pricebook.toml").write_text(synthetic_pricebook(), encoding="utf-8")

    rows = 0
    files = 0
    first_rows: pl.DataFrame | None = None
    per_file = spec.apps_per_file or max(1, min(50_000, -(-spec.n_apps // 8)))
    for chunk, offset in enumerate(range(0, spec.n_apps, per_file)):
        usage = usage_chunk(spec, apps.slice(offset, per_file), chunk)
        if usage.height == 0:
            continue
        path = out / usage_path(chunk)
        path.parent.mkdir(parents=True, exist_ok=True)
        usage.write_parquet(path, compression="zstd")
        rows += usage.height
        files += 1
        if first_rows is None:
            first_rows = usage.head(spec.duplicates)
        del usage
    if first_rows is not None and spec.duplicates > 0:
        # Exact copies of rows already exported (a resend): collapsed, never conflicts.
        path = out / "usage" / "retry" / "part-00000-resend.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        first_rows.write_parquet(path, compression="zstd")
        rows += first_rows.height
        files += 1
    return SynthSummary(
        out=str(out), apps=spec.n_apps, customers=spec.n_customers, events=events.height,
        usage_rows=rows, usage_files=files, seconds=round(time.perf_counter() - began, 3),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="input folder to write")
    parser.add_argument("--apps", type=int, default=10_000, help="number of apps")
    parser.add_argument("--customers", type=int, default=1_000, help="number of customers")
    parser.add_argument("--days", type=int, default=31, help="usage days from the 1st")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--month", default=DEFAULT_MONTH.label, help="YYYY-MM")
    args = parser.parse_args(argv)
    spec = SynthSpec(n_apps=args.apps, n_customers=args.customers, days=args.days,
                     seed=args.seed, month=Month.parse(args.month))
    summary = generate(spec, args.out)
    result = asdict(summary)
    result["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
