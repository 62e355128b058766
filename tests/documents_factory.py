"""Hand-built `InvoiceDocument`s for tests that must not depend on the pricing stage.

`make_document()` returns a complete, internally consistent invoice (amounts add
up per SPEC R7) with one line of every evidence kind; keyword arguments replace
any part of it. `make_app()` builds extra app sections for long documents.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from babel.numbers import get_currency_precision

from invoicing.core.documents import AppSection, InvoiceDocument, Line, Party
from invoicing.core.money import month_share

PERIOD_START = date(2026, 10, 1)
PERIOD_END = date(2026, 10, 31)

#: Illustrative prices per currency (test data, not the price book).
PRICES: dict[str, dict[str, Decimal]] = {
    "USD": {
        "pro": Decimal("399.00"),
        "flagship": Decimal("1199.00"),
        "block": Decimal("149.99"),
        "addon": Decimal("49.00"),
        "av_call": Decimal("59.00"),
    },
    "KRW": {
        "pro": Decimal("520000"),
        "flagship": Decimal("1560000"),
        "block": Decimal("195000"),
        "addon": Decimal("64000"),
        "av_call": Decimal("77000"),
    },
    "JPY": {
        "pro": Decimal("59000"),
        "flagship": Decimal("178000"),
        "block": Decimal("22000"),
        "addon": Decimal("7300"),
        "av_call": Decimal("8800"),
    },
    "CNY": {
        "pro": Decimal("999.00"),
        "flagship": Decimal("2999.00"),
        "block": Decimal("1000.00"),
        "addon": Decimal("299.00"),
        "av_call": Decimal("399.00"),
    },
}

CUSTOMERS: dict[str, Party] = {
    "ko_KR": Party(
        customer_id="C-0002",
        name="주식회사 한빛메신저",
        email="billing@hanbit.example",
        address="서울특별시 강남구 테헤란로 123\n한빛빌딩 7층\n06236",
        country="KR",
        tax_id="123-45-67890",
    ),
    "zh_CN": Party(
        customer_id="C-0003",
        name="上海星云通讯有限公司",
        email="finance@xingyun.example",
        address="上海市浦东新区世纪大道100号\n环球金融中心25楼\n200120",
        country="CN",
        tax_id=None,
    ),
    "en_US": Party(
        customer_id="C-0001",
        name="Acme Chat Inc.",
        email="ap@acme.example",
        address="500 Market Street, Suite 400\nSan Francisco, CA 94105\nUnited States",
        country="US",
        tax_id=None,
    ),
}

CURRENCY = {"ko_KR": "KRW", "zh_CN": "CNY", "en_US": "USD", "ja_JP": "JPY"}
TAX_RATE = {"KR": Decimal("0.10")}


def money(value: Decimal | str | int, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit, as the pricing stage does (R7)."""
    exponent = Decimal(1).scaleb(-get_currency_precision(currency))
    return Decimal(value).quantize(exponent, rounding=ROUND_HALF_UP)


def evidence_lines(currency: str) -> tuple[Line, ...]:
    """One line of each evidence kind: plan fee, DAU + group overage, add-on, trial."""
    p = PRICES[currency]
    return (
        Line(
            item="plan_fee",
            description="Plan fee (Pro)",
            quantity=Decimal(1),
            unit_price=p["pro"],
            amount=money(p["pro"], currency),
            plan="pro",
        ),
        Line(
            item="dau_overage",
            description="DAU overage",
            quantity=Decimal(2),
            unit_price=p["block"],
            amount=money(p["block"] * 2, currency),
            plan="pro",
            peak_value=23456,
            peak_date=date(2026, 10, 14),
            free_quota=10000,
            block=10000,
            excess=13456,
        ),
        Line(
            item="group_overage",
            description="Group overage",
            quantity=Decimal(1),
            unit_price=p["block"],
            amount=money(p["block"], currency),
            plan="pro",
            peak_value=100001,
            peak_date=date(2026, 10, 30),
            free_quota=100000,
            block=100000,
            excess=1,
        ),
        Line(
            item="group_member_limit",
            description="Members per group: 3000",
            quantity=Decimal(1),
            unit_price=p["addon"],
            amount=money(p["addon"], currency),
            plan="pro",
            tier="3000",
            active_days=12,
            first_active=date(2026, 10, 5),
            last_active=date(2026, 10, 16),
        ),
        Line(
            item="av_call",
            description="Audio/video call (free trial)",
            quantity=Decimal(0),  # as the pricing stage writes a trial-only month (R6)
            unit_price=p["av_call"],
            amount=money(0, currency),
            plan="pro",
            tier="on",
            active_days=31,
            first_active=PERIOD_START,
            last_active=PERIOD_END,
            trial_end=date(2026, 11, 29),
        ),
    )


def prorated_lines(currency: str) -> tuple[Line, ...]:
    """A `prorate_daily` plan fee: 10 of 31 days on Flagship, at the monthly fee."""
    p = PRICES[currency]
    return (
        Line(
            item="plan_fee",
            description="Plan fee (Flagship, 10/31 days)",
            quantity=month_share(10, 31),
            unit_price=p["flagship"],
            amount=money(p["flagship"] * 10 / 31, currency),
            plan="flagship",
            days_on_plan=10,
            days_in_month=31,
        ),
    )


def make_app(
    sdk_app_id: int, app_name: str, lines: tuple[Line, ...] | None = None, currency: str = "USD"
) -> AppSection:
    """An app section whose subtotal is the sum of its lines."""
    lines = evidence_lines(currency) if lines is None else lines
    return AppSection(
        sdk_app_id=sdk_app_id,
        app_name=app_name,
        lines=lines,
        subtotal=sum((line.amount for line in lines), Decimal(0)),
    )


def make_document(
    locale: str = "en_US",
    *,
    customer: Party | None = None,
    apps: tuple[AppSection, ...] | None = None,
    currency: str | None = None,
    **overrides: Any,
) -> InvoiceDocument:
    """A consistent invoice for ``locale``; ``overrides`` replace any other field.

    Totals are recomputed from ``apps`` (R7: subtotal of rounded lines, tax
    rounded half-up once), so a test that swaps the apps still gets a valid
    document.
    """
    currency = currency or CURRENCY.get(locale, "USD")
    customer = customer or CUSTOMERS.get(locale, CUSTOMERS["en_US"])
    if apps is None:
        apps = (
            make_app(1400000001, "Main chat", currency=currency),
            make_app(1400000002, "Support desk", prorated_lines(currency), currency=currency),
        )
    subtotal = sum((app.subtotal for app in apps), Decimal(0))
    tax_rate = TAX_RATE.get(customer.country, Decimal("0"))
    tax = money(subtotal * tax_rate, currency)
    doc = InvoiceDocument(
        invoice_number="IM-202610-000001",
        customer=customer,
        locale=locale,
        currency=currency,
        issue_date=date(2026, 11, 1),
        due_date=date(2026, 11, 3),
        period_start=PERIOD_START,
        period_end=PERIOD_END,
        apps=apps,
        subtotal=subtotal,
        tax_rate=tax_rate,
        tax=tax,
        total=subtotal + tax,
        pricebook_version=f"{currency}@2026-01-01",
        pricebook_effective_from=date(2026, 1, 1),
        run_id="2026-10-3f9a2c71",
        inputs_digest="3f9a2c71" + "0" * 56,
        software_version="0.1.0",
        seller=(
            "Nimbus IM Cloud Ltd.",
            "1 Harbour Road",
            "Singapore 018989",
            "Tax ID SG-201912345K",
        ),
    )
    return replace(doc, **overrides) if overrides else doc
