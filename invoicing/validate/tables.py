"""Stage 2, validate: check the references between the small tables (apps, customers,
subscription events, price-book coverage).

A problem here is added to the run's `ErrorLog` naming file, column and row, and the run
stops before anything is written (exit 3), as SPEC §2 asks. The usage rows are sorted in
`validate/usage.py`.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from babel import Locale, UnknownLocaleError

from invoicing.core.catalogue import ADDONS, EVENT_ITEMS, ON_OFF_ADDONS, PLANS, TIERED_ADDONS
from invoicing.core.errors import MAX_REPORTED_ERRORS, ErrorLog, Source
from invoicing.core.money import known_currencies
from invoicing.core.timeframe import Month
from invoicing.load.pricebook import MAX_QUANTITY, PriceBookVersion, parse_tier


def _all_bad(frame: pl.DataFrame, mask: pl.Expr) -> list[dict[str, Any]]:
    """The rows matching `mask`, as dicts (the tables checked with it are small)."""
    return frame.filter(mask).to_dicts()


def _require_not_null(frame: pl.DataFrame, label: str, columns: list[str],
                      errors: ErrorLog) -> None:
    indexed = frame if "source_row" in frame.columns else frame.with_row_index(
        "source_row", offset=1)
    for name in columns:
        for bad in _all_bad(indexed, pl.col(name).is_null()):
            errors.add(Source(label, name, bad["source_row"]), "value is missing")


def _first_of_repeated(name: str) -> pl.Expr:
    """True at the first row of each value of `name` that appears more than once (so a
    repeated id is reported once, at its first row); nulls are reported apart."""
    column = pl.col(name)
    return column.is_duplicated() & column.is_first_distinct() & column.is_not_null()


def check_customers(customers: pl.DataFrame, label: str, errors: ErrorLog) -> None:
    _require_not_null(customers, label,
                      ["customer_id", "name", "email", "address", "country", "currency", "locale"],
                      errors)
    indexed = customers.with_row_index("_row", offset=1)
    for dup in _all_bad(indexed, _first_of_repeated("customer_id")):
        errors.add(Source(label, "customer_id", dup["_row"]),
                   f"customer_id {dup['customer_id']!r} appears more than once")
    for bad in _all_bad(indexed, ~pl.col("country").str.contains(r"^[A-Z]{2}$")):
        errors.add(Source(label, "country", bad["_row"]),
                   f"{bad['country']!r} is not an ISO 3166 alpha-2 code "
                   f"(customer {bad['customer_id']})")
    for bad in _all_bad(indexed, ~pl.col("currency").is_in(sorted(known_currencies()))):
        errors.add(Source(label, "currency", bad["_row"]),
                   f"unknown currency {bad['currency']!r} (customer {bad['customer_id']})")
    # Few distinct locales: each is parsed once by Babel.
    unknown = [loc for loc in customers["locale"].drop_nulls().unique().sort().to_list()
               if not _is_locale(loc)]
    for bad in _all_bad(indexed, pl.col("locale").is_in(unknown)):
        errors.add(Source(label, "locale", bad["_row"]),
                   f"unknown locale {bad['locale']!r} (customer {bad['customer_id']})")


def _is_locale(identifier: str) -> bool:
    try:
        Locale.parse(identifier)
    except (UnknownLocaleError, ValueError):
        return False
    return True


def check_apps(apps: pl.DataFrame, customers: pl.DataFrame, label: str,
               errors: ErrorLog) -> None:
    _require_not_null(apps, label, ["sdk_app_id", "customer_id", "app_name"], errors)
    indexed = apps.with_row_index("_row", offset=1)
    for dup in _all_bad(indexed, _first_of_repeated("sdk_app_id")):
        errors.add(Source(label, "sdk_app_id", dup["_row"]),
                   f"sdk_app_id {dup['sdk_app_id']} appears more than once")
    for orphan in _all_bad(indexed, ~pl.col("customer_id").is_in(
            customers["customer_id"].implode()) & pl.col("customer_id").is_not_null()):
        errors.add(Source(label, "customer_id", orphan["_row"]),
                   f"unknown customer {orphan['customer_id']!r} for app {orphan['sdk_app_id']}")


def check_price_coverage(
    customers: pl.DataFrame, chosen: dict[str, PriceBookVersion | None], pricebook_label: str,
    month: Month, errors: ErrorLog,
) -> None:
    """R8: every customer's currency needs a version effective on the 1st of the month."""
    for currency in sorted(c for c, v in chosen.items() if v is None):
        who = customers.filter(pl.col("currency") == currency)["customer_id"].sort().to_list()
        shown = ", ".join(who[:10]) + (f" and {len(who) - 10} more" if len(who) > 10 else "")
        errors.add(Source(pricebook_label, "currency"),
                   f"no {currency} version effective on {month.start.isoformat()} for "
                   f"customers {shown}")


def _check_event_values(events: pl.DataFrame, apps: pl.DataFrame, label: str,
                        errors: ErrorLog) -> None:
    """Known apps, items, plans, on/off values and numeric tiers."""
    for bad in _all_bad(events, ~pl.col("sdk_app_id").is_in(apps["sdk_app_id"].implode())):
        errors.add(Source(label, "sdk_app_id", bad["source_row"]),
                   f"unknown app {bad['sdk_app_id']}")
    for bad in _all_bad(events, ~pl.col("item").is_in(list(EVENT_ITEMS))):
        errors.add(Source(label, "item", bad["source_row"]),
                   f"unknown item {bad['item']!r}; expected plan or an add-on: "
                   f"{', '.join(EVENT_ITEMS[1:])}")
    for bad in _all_bad(events, (pl.col("item") == "plan") & ~pl.col("value").is_in(list(PLANS))):
        errors.add(Source(label, "value", bad["source_row"]),
                   f"unknown plan {bad['value']!r} for app {bad['sdk_app_id']}; expected "
                   f"{', '.join(PLANS)}")
    for bad in _all_bad(events, pl.col("item").is_in(list(ON_OFF_ADDONS))
                        & ~pl.col("value").is_in(["on", "off"])):
        errors.add(Source(label, "value", bad["source_row"]),
                   f"{bad['item']} takes on or off, got {bad['value']!r}")
    tiered = events.filter(pl.col("item").is_in(list(TIERED_ADDONS)) & (pl.col("value") != "off"))
    for bad in tiered.filter(pl.col("tier").is_null()).head(MAX_REPORTED_ERRORS).to_dicts():
        errors.add(Source(label, "value", bad["source_row"]),
                   f"tier {bad['value']!r} of {bad['item']} (app {bad['sdk_app_id']}) is not a "
                   f"whole number up to {MAX_QUANTITY:,} (or off)")


def _in_force(events: pl.DataFrame, month: Month) -> pl.DataFrame:
    """The events that set an item's state on some day of the month: those inside the
    month, and the last one on or before its 1st (per app and item)."""
    before = (events.filter(pl.col("effective_date") <= month.start)
              .sort("effective_date", "source_row")
              .group_by("sdk_app_id", "item", maintain_order=True).last()
              .select(events.columns))
    inside = events.filter((pl.col("effective_date") > month.start)
                           & (pl.col("effective_date") <= month.end))
    return pl.concat([before, inside]).sort("source_row")


def _check_event_prices(events: pl.DataFrame, apps: pl.DataFrame, customers: pl.DataFrame,
                        chosen: dict[str, PriceBookVersion | None], label: str, month: Month,
                        errors: ErrorLog) -> None:
    """An add-on event in force in the month needs its price (and tier) in the version of
    the app's customer; a version that sells no such add-on is fine until one is used."""
    listed = pl.DataFrame(
        [(cur, item, tier) for cur, v in chosen.items() if v is not None
         for item, tiers in v.addon_prices.items() for tier in tiers],
        schema={"currency": pl.String, "item": pl.String, "tier_key": pl.String}, orient="row",
    ).with_columns(listed=pl.lit(True))
    needed = (
        _in_force(events, month)
        .filter(pl.col("item").is_in(list(ADDONS)) & (pl.col("value") != "off")
                & (pl.col("item").is_in(list(ON_OFF_ADDONS)) | pl.col("tier").is_not_null()))
        .join(apps.select("sdk_app_id", "customer_id"), on="sdk_app_id", how="left")
        .join(customers.select("customer_id", "currency"), on="customer_id", how="left")
        .filter(pl.col("currency").is_in([c for c, v in chosen.items() if v is not None]))
        .with_columns(tier_key=pl.when(pl.col("item").is_in(list(ON_OFF_ADDONS)))
                      .then(pl.lit("on")).otherwise(pl.col("tier").cast(pl.String)))
        .join(listed, on=["currency", "item", "tier_key"], how="left")
        .sort("source_row")
    )
    for bad in _all_bad(needed, pl.col("listed").is_null()):
        what = (f"tier {bad['value']!r} of {bad['item']}" if bad["item"] in TIERED_ADDONS
                else f"{bad['item']}")
        errors.add(Source(label, "value", bad["source_row"]),
                   f"{what} (app {bad['sdk_app_id']}) is not in the {bad['currency']} "
                   "price book")


def check_events(
    events: pl.DataFrame, apps: pl.DataFrame, customers: pl.DataFrame,
    chosen: dict[str, PriceBookVersion | None], label: str, month: Month, errors: ErrorLog,
) -> pl.DataFrame:
    """Check every subscription event; return the events, tiers in canonical form.

    A tiered add-on's value is parsed as a number once, here (``"0600"`` is tier 600),
    and written back canonically, so every later stage compares tiers one way. The
    price of an add-on is checked against the price-book version of the app's
    customer for this month, because that is the version that would have to price it.
    """
    _require_not_null(events, label, ["sdk_app_id", "effective_date", "item", "value"], errors)
    # One notion of a tier: `pricebook.parse_tier`, applied once per distinct value.
    values = events["value"].drop_nulls().unique().to_list()
    events = events.with_columns(tier=pl.col("value").replace_strict(
        {v: parse_tier(v) for v in values}, default=None, return_dtype=pl.Int64))
    _check_event_values(events, apps, label, errors)
    _check_event_prices(events.drop_nulls(["sdk_app_id", "effective_date", "item", "value"]),
                        apps, customers, chosen, label, month, errors)
    return events.with_columns(
        value=pl.when(pl.col("item").is_in(list(TIERED_ADDONS)) & pl.col("tier").is_not_null())
        .then(pl.col("tier").cast(pl.String)).otherwise(pl.col("value"))
    ).drop("tier")
