"""The words that explain a line, in one place: the page, the reports and the e-invoice.

Every phrase of evidence (the plan, the peak and its day, the free quota and excess, the
blocks or the bands, the days on a plan, the tier, the A/V trial, the active days) and
every label of an item or a plan is written here once, as an English msgid translated by
the locale catalogue (`invoicing/locales/*/LC_MESSAGES/invoicing.po`), with its figures
formatted by `invoicing.render.i18n`. The template prints `line_facts` as the details of
a line, `invoicing.audit.reports` joins them into one row of `diff` and `verify`, and the
EN 16931 XML names each line with them.

A phrase is chosen by the evidence a line carries, not by its pricing model: a model
that fills ``bands`` is explained band by band whatever its name
(`invoicing.pricing.models`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from invoicing.render import i18n


def N_(msgid: str) -> str:
    """Mark a msgid for extraction (tests/render/test_render.py); translated where it is used."""
    return msgid


def NP_(singular: str, plural: str) -> tuple[str, str]:
    """Mark a msgid with its plural for extraction."""
    return singular, plural


#: One label per plan.
PLAN_LABELS = {"free": N_("Free trial"), "pro": N_("Pro"), "flagship": N_("Flagship")}
#: One label per item.
ITEM_LABELS = {
    "plan_fee": N_("Plan fee"),
    "dau_overage": N_("DAU overage"),
    "group_overage": N_("Group overage"),
    "avchatroom_unlimited": N_("Unlimited live-broadcast groups"),
    "group_member_limit": N_("Members per group extension"),
    "groups_per_user": N_("Groups per user extension"),
    "history_retention_days": N_("Message history retention extension"),
    "av_call": N_("Audio/video call"),
}
#: The peak of an overage item: alone, with the plan of the peak day, within the quota.
PEAK = {
    "dau_overage": (N_("Peak DAU %(value)s on %(date)s"),
                    N_("Peak DAU %(value)s on %(date)s (%(plan)s)"),
                    N_("Peak DAU %(value)s on %(date)s, free quota %(quota)s")),
    "group_overage": (N_("Peak group count %(value)s on %(date)s"),
                      N_("Peak group count %(value)s on %(date)s (%(plan)s)"),
                      N_("Peak group count %(value)s on %(date)s, free quota %(quota)s")),
}
#: The tier of an add-on, by item (others: the plain tier).
TIER = {
    "group_member_limit": N_("Tier: %(tier)s members per group"),
    "groups_per_user": N_("Tier: %(tier)s groups per user"),
    "history_retention_days": N_("Tier: %(tier)s days of history"),
}
TIER_PLAIN = N_("Tier: %(tier)s")
DAYS_ON_PLAN = N_("%(days)s of %(month_days)s days on %(plan)s")
MONTH_SHARE = N_("Quantity: %(share)s of the month at the monthly fee")
PLAN_IN_FORCE = N_("Plan in force on %(date)s: %(plan)s")
QUOTA = N_("Free quota %(quota)s, excess %(excess)s")
BLOCKS_AT_PRICE = NP_("%(blocks)s block of %(size)s × %(price)s",
                      "%(blocks)s blocks of %(size)s × %(price)s")
BLOCKS = NP_("%(blocks)s block of %(size)s", "%(blocks)s blocks of %(size)s")
BAND = NP_("Block %(range)s: %(blocks)s × %(price)s = %(amount)s",
           "Blocks %(range)s: %(blocks)s × %(price)s = %(amount)s")
TRIAL_UNTIL = N_("Free trial until %(date)s")
TRIAL_ENDED = N_("Free trial ended %(date)s")
NOT_INCLUDED = N_("Not included in %(plan)s")
ACTIVE = NP_("Active %(days)s day (%(range)s)", "Active %(days)s days (%(range)s)")
NO_PLAN = N_("no plan")

OVERAGE_ITEMS = tuple(PEAK)


@dataclass(frozen=True)
class Fact:
    """One phrase of evidence.

    Attributes:
      kind: what it states: ``plan``, ``share``, ``peak``, ``quota``, ``blocks``,
        ``band``, ``trial``, ``tier``, ``not_included`` or ``active``. A one-line report
        leaves some out (`SUMMARY_KINDS`).
      text: the phrase in the requested locale.
    """

    kind: str
    text: str


#: The facts a one-line summary (`summary`) keeps: enough to recognise the charge.
SUMMARY_KINDS = frozenset({"plan", "peak", "blocks", "band", "trial", "tier", "active"})


@dataclass(frozen=True)
class Band:
    """One band of a line's ``bands`` evidence (see `invoicing.pricing.models.graduated`)."""

    first_block: int
    last_block: int
    blocks: int
    price_per_block: Decimal
    amount: Decimal


def bands(text: str | None) -> list[Band]:
    """The ``bands`` evidence of a line (JSON text), decimals exact; [] for none."""
    if not text:
        return []
    return [Band(b["first_block"], b["last_block"], b["blocks"], Decimal(b["price_per_block"]),
                 Decimal(b["amount"])) for b in json.loads(text)]


def _say(locale: str, msgid: str, **values: object) -> str:
    text = i18n.translations(locale).gettext(msgid)
    return text % values if values else text


def _say_n(locale: str, msgids: tuple[str, str], n: int, **values: object) -> str:
    return i18n.translations(locale).ngettext(msgids[0], msgids[1], n) % values


def item_label(item: str, locale: str) -> str:
    """The label of an item (``Plan fee``); an unknown item raises `KeyError`."""
    return _say(locale, ITEM_LABELS[item])


def plan_label(plan: str, locale: str) -> str:
    """The label of a plan (``Flagship``); an unknown plan raises `KeyError`."""
    return _say(locale, PLAN_LABELS[plan])


def _fields(line: Any) -> Mapping[str, Any]:
    if is_dataclass(line):
        return {f.name: getattr(line, f.name) for f in fields(line)}
    return dict(line)


def line_facts(line: Any, locale: str, currency: str, *, plan_changed: bool = False,
               period_start: date | None = None, compact: bool = False) -> list[Fact]:
    """The evidence of one line (a `documents.Line` or a mapping of its columns).

    `plan_changed`: the app's plan changed during the month, so a line whose price
    depends on the plan names it. `period_start`: the 1st of the month, which a plan fee
    charged for the plan in force that day names. `compact`: blocks without their unit
    price (a report prints the amount next to them).
    """
    ln = _fields(line)
    item = ln["item"]
    num = i18n.format_int
    if item == "plan_fee":
        return _plan_fee_facts(ln, locale, period_start)
    if item in OVERAGE_ITEMS:
        return _overage_facts(ln, locale, currency, plan_changed, compact)
    facts = []
    if item == "av_call" and ln.get("trial_end") is not None:
        ended = ln.get("amount") != 0
        facts.append(Fact("trial", _say(locale, TRIAL_ENDED if ended else TRIAL_UNTIL,
                                        date=i18n.format_date(ln["trial_end"], locale))))
    tier = ln.get("tier")
    if tier is not None and tier != "on":
        shown = num(int(tier), locale) if tier.isdigit() else tier
        facts.append(Fact("tier", _say(locale, TIER.get(item, TIER_PLAIN), tier=shown)))
    if plan_changed and item != "av_call" and ln.get("plan") is not None:
        facts.append(Fact("not_included", _say(locale, NOT_INCLUDED,
                                               plan=plan_label(ln["plan"], locale))))
    if ln.get("active_days") is not None:
        days = ln["active_days"]
        facts.append(Fact("active", _say_n(
            locale, ACTIVE, days, days=num(days, locale),
            range=i18n.format_date_range(ln["first_active"], ln["last_active"], locale))))
    return facts


def _plan_fee_facts(ln: Mapping[str, Any], locale: str, period_start: date | None
                    ) -> list[Fact]:
    if ln.get("days_on_plan") is not None:
        days, month_days = ln["days_on_plan"], ln["days_in_month"]
        return [
            Fact("plan", _say(locale, DAYS_ON_PLAN, days=i18n.format_int(days, locale),
                              month_days=i18n.format_int(month_days, locale),
                              plan=plan_label(ln["plan"], locale))),
            Fact("share", _say(locale, MONTH_SHARE, share=f"{days}/{month_days}")),
        ]
    if ln.get("plan") is not None and period_start is not None:
        return [Fact("plan", _say(locale, PLAN_IN_FORCE, date=i18n.format_date(
            period_start, locale), plan=plan_label(ln["plan"], locale)))]
    return []


def _overage_facts(ln: Mapping[str, Any], locale: str, currency: str, plan_changed: bool,
                   compact: bool) -> list[Fact]:
    num = i18n.format_int
    alone, with_plan, _within = PEAK[ln["item"]]
    peak = {"value": num(ln["peak_value"], locale),
            "date": i18n.format_date(ln["peak_date"], locale)}
    if plan_changed:
        facts = [Fact("peak", _say(locale, with_plan, **peak,
                                   plan=plan_label(ln["plan"], locale)))]
    else:
        facts = [Fact("peak", _say(locale, alone, **peak))]
    facts.append(Fact("quota", _say(locale, QUOTA, quota=num(ln["free_quota"], locale),
                                    excess=num(ln["excess"], locale))))
    size = num(ln["block"], locale)
    if ln.get("bands") is None:
        blocks = int(ln["quantity"])
        if compact:
            facts.append(Fact("blocks", _say_n(locale, BLOCKS, blocks,
                                               blocks=num(blocks, locale), size=size)))
            return facts
        facts.append(Fact("blocks", _say_n(
            locale, BLOCKS_AT_PRICE, blocks, blocks=num(blocks, locale), size=size,
            price=i18n.format_unit_price(ln["unit_price"], currency, locale))))
        return facts
    used = bands(ln["bands"])
    total = sum(b.blocks for b in used)
    facts.append(Fact("blocks", _say_n(locale, BLOCKS, total, blocks=num(total, locale),
                                       size=size)))
    for b in used:
        span = (num(b.first_block, locale) if b.first_block == b.last_block else
                f"{num(b.first_block, locale)}–{num(b.last_block, locale)}")
        facts.append(Fact("band", _say_n(
            locale, BAND, b.blocks, range=span, blocks=num(b.blocks, locale),
            price=i18n.format_unit_price(b.price_per_block, currency, locale),
            amount=i18n.format_unit_price(b.amount, currency, locale))))
    return facts


def within_quota(line: Any, locale: str) -> str:
    """An overage line at 0 blocks, in one phrase: its peak and the free quota."""
    ln = _fields(line)
    return _say(locale, PEAK[ln["item"]][2], value=i18n.format_int(ln["peak_value"], locale),
                date=i18n.format_date(ln["peak_date"], locale),
                quota=i18n.format_int(ln["free_quota"], locale))


def summary(line: Any, locale: str, currency: str) -> str:
    """One line of text for a report: the plan, then the facts of `SUMMARY_KINDS`."""
    ln = _fields(line)
    facts = [f for f in line_facts(ln, locale, currency, compact=True)
             if f.kind in SUMMARY_KINDS]
    parts = [f.text for f in facts]
    if not any(f.kind == "plan" for f in facts):  # a prorated fee's days name their plan
        plan = ln.get("plan")
        parts.insert(0, plan_label(plan, locale) if plan else _say(locale, NO_PLAN))
    return ", ".join(parts)


def describe(line: Any, locale: str, currency: str, *, plan_changed: bool = False,
             period_start: date | None = None) -> str:
    """The item label and every fact, in one line (the e-invoice's line name)."""
    ln = _fields(line)
    facts = line_facts(ln, locale, currency, plan_changed=plan_changed,
                       period_start=period_start)
    label = item_label(ln["item"], locale)
    return f"{label}: {'; '.join(f.text for f in facts)}" if facts else label
