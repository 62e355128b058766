"""Typed records that cross from `assemble` into `render`.

Every number on a PDF is computed before these records are built; the templates
only format them (money and dates through Babel, labels through the locale
catalogue). Money is always `Decimal`, already rounded per SPEC R7.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

#: Countries whose addresses write the city before the post code (most of Europe writes
#: ``10117 Berlin``).
CITY_BEFORE_POSTCODE = frozenset({"AU", "CA", "GB", "IE", "LV", "SG", "US"})


def postal_line(country: str | None, postcode: str | None, city: str | None) -> str | None:
    """``postcode city`` (``city postcode`` where that is the country's order), or None
    when neither is given."""
    parts = [p for p in (postcode, city) if p]
    if country in CITY_BEFORE_POSTCODE:
        parts.reverse()
    return " ".join(parts) or None


@dataclass(frozen=True)
class Party:
    """A customer as printed in the address block.

    Attributes:
      customer_id: the customer's id from `customers`.
      name: display name; customer-controlled, printed escaped.
      email: contact e-mail; customer-controlled.
      address: postal address, may hold newlines; customer-controlled.
      country: ISO 3166 alpha-2 code (e.g. ``KR``).
      tax_id: the customer's tax id, or None when they have none.
      postcode, city: the structured part of the postal address (optional columns of
        `customers`); None keeps ``address`` as the whole address.
      buyer_reference: the buyer's reference or purchase-order number (EN 16931 BT-10),
        printed and put in the e-invoice when present.
      einvoice_format: ``none``, ``facturx`` or ``peppol`` as the customer chose it, or
        None for the default of its country (`invoicing.render.einvoice.format_name`).
      peppol_scheme, peppol_id: the buyer's Peppol participant id (an EAS code such as
        ``0208`` and the id in that scheme), the endpoint of a Peppol e-invoice.
      mandate_reference: the SEPA direct-debit mandate the customer signed; with the
        seller's creditor id, the customer pays by direct debit.
    """

    customer_id: str
    name: str
    email: str
    address: str
    country: str
    tax_id: str | None
    postcode: str | None = None
    city: str | None = None
    buyer_reference: str | None = None
    einvoice_format: str | None = None
    peppol_scheme: str | None = None
    peppol_id: str | None = None
    mandate_reference: str | None = None

    @property
    def postal_line(self) -> str | None:
        """The post code and city line of the address, or None (see `postal_line`)."""
        return postal_line(self.country, self.postcode, self.city)

    @property
    def address_lines(self) -> tuple[str, ...]:
        """The non-empty lines of ``address`` (without the post code and city)."""
        return tuple(ln.strip() for ln in self.address.splitlines() if ln.strip())


@dataclass(frozen=True)
class Line:
    """One charge on an invoice, with the evidence an auditor needs.

    Attributes:
      item: ``plan_fee``, ``dau_overage``, ``group_overage`` or an add-on name
        (``avchatroom_unlimited``, ``group_member_limit``, ``groups_per_user``,
        ``history_retention_days``, ``av_call``).
      description: canonical English description (also in line_items.parquet).
      quantity: billed quantity (a decimal): 1 for a monthly fee or add-on, the number
        of blocks for overage in blocks (1 for graduated overage, whose unit price is
        the exact sum of its bands); for a prorated plan fee the share of the month,
        days_on_plan / days_in_month rounded up at 21 decimals (printed as ``22/31``).
      unit_price: price of one unit (monthly fee, price per block, add-on price), so
        that ``amount = round_half_up(quantity × unit_price)``.
      amount: the line amount, rounded once to the currency's minor unit (R7).
      plan: the plan the line was priced under (``free``/``pro``/``flagship``), or
        None where no plan was in effect.
      tier: the add-on tier charged (``on`` or a number such as ``3000``); None
        for plan fees and overage.
      peak_value: overage only: the DAU or group count on the peak day.
      peak_date: overage only: the day of the monthly peak (first such day).
      free_quota: overage only: the free quota of the plan.
      block: overage only: block size.
      excess: overage only: ``max(0, peak_value - free_quota)``.
      bands: graduated overage only: the blocks and amount of each band that billed
        blocks, as a JSON array (`invoicing.pricing.models.graduated`).
      days_on_plan: prorated plan fee only: days the app was on ``plan``.
      days_in_month: prorated plan fee only: days in the billing month.
      active_days: add-ons only: number of days the add-on was active.
      first_active: add-ons only: first active day in the month.
      last_active: add-ons only: last active day in the month.
      trial_end: ``av_call`` only: the last day of its free trial.
    """

    item: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    plan: str | None = None
    tier: str | None = None
    peak_value: int | None = None
    peak_date: date | None = None
    free_quota: int | None = None
    block: int | None = None
    excess: int | None = None
    bands: str | None = None
    days_on_plan: int | None = None
    days_in_month: int | None = None
    active_days: int | None = None
    first_active: date | None = None
    last_active: date | None = None
    trial_end: date | None = None


@dataclass(frozen=True)
class PlanPeriod:
    """A run of days of the billing month on which an app held one plan.

    Attributes:
      plan: ``free``, ``pro`` or ``flagship``.
      start: first day of the run (the 1st, or the day the plan took effect).
      end: last day of the run (the month's last day, or the day before a change).
    """

    plan: str
    start: date
    end: date


@dataclass(frozen=True)
class AppSection:
    """All lines of one app (`SDKAppID`) on an invoice.

    Attributes:
      sdk_app_id: the app's id.
      app_name: the app's name; customer-controlled, printed escaped.
      lines: the app's charges in a fixed order (plan fee, overage, add-ons).
      subtotal: sum of the app's line amounts.
      plan_periods: the app's plans over the month in day order (its "plan story");
        empty when it had no plan in the month.
    """

    sdk_app_id: int
    app_name: str
    lines: tuple[Line, ...]
    subtotal: Decimal
    plan_periods: tuple[PlanPeriod, ...] = ()

    @property
    def plan_changed(self) -> bool:
        """True when the app held more than one plan, or none on some days."""
        return len(self.plan_periods) > 1 or any(
            p.start.day != 1 for p in self.plan_periods)


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything one PDF invoice prints.

    Attributes:
      invoice_number: ``IM-YYYYMM-NNNNNN`` (R10).
      customer: the billed party.
      locale: Babel locale id of the customer (``ko_KR``, ``en_US``, ``zh_CN``).
      currency: ISO 4217 code of every amount on the document.
      issue_date: the 1st of the month after the billing period.
      due_date: the 3rd of that month.
      period_start: first day of the billing month.
      period_end: last day of the billing month.
      apps: one section per app, ascending ``sdk_app_id``.
      subtotal: sum of all rounded lines.
      tax_rate: the rate applied (``Decimal('0')`` when the country has none).
      tax: ``round_half_up(subtotal * tax_rate)``.
      total: ``subtotal + tax``.
      pricebook_version: id of the price-book version used (e.g. ``USD@2026-01-01``).
      pricebook_effective_from: that version's ``effective_from``.
      run_id: deterministic id of the run (month plus a prefix of ``inputs_digest``).
      inputs_digest: SHA-256 over the input files' hashes and the price book.
      software_version: ``invoicing.__version__``.
      seller: lines of the seller block (name, address, tax id), from settings.
      kind: ``invoice`` or ``credit_note``. A credit note reverses an issued invoice:
        its lines and totals are the negated lines of that invoice.
      credits_invoice: credit notes only: the number of the invoice it reverses.
      credits_invoice_date: credit notes only: the issue date of that invoice (BT-26).
      replaces_invoice: replacement invoices only: the number of the invoice it
        replaces (which a credit note of the same revision reverses).
      revision: 0 for the month's first run, n for the n-th ``reissue``.
      plan_fee_policy: the price-book version's R1 policy (``month_start`` or
        ``prorate_daily``), which the notes explain.
    """

    invoice_number: str
    customer: Party
    locale: str
    currency: str
    issue_date: date
    due_date: date
    period_start: date
    period_end: date
    apps: tuple[AppSection, ...]
    subtotal: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    pricebook_version: str
    pricebook_effective_from: date
    run_id: str
    inputs_digest: str
    software_version: str
    seller: tuple[str, ...]
    kind: str = "invoice"
    credits_invoice: str | None = None
    credits_invoice_date: date | None = None
    replaces_invoice: str | None = None
    revision: int = 0
    plan_fee_policy: str = "month_start"
