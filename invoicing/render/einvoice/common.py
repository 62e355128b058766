"""What every e-invoice syntax shares: the seller's EN 16931 facts, VAT categories, payment
instructions (BG-16) and the XML helpers.

What the inputs do not say and EN 16931 needs comes from ``templates/seller.toml`` (see
`EInvoiceSeller`): the seller's country and VAT identifier, its structured address, its
Peppol participant id, how customers pay, and for each EU country whose customers pay 0 %
VAT the VAT category (reverse charge ``AE``, exempt ``E``, zero rated ``Z``) and the
reason. The page prints the same facts (VAT ids, "Reverse charge", payment instructions),
so they come from here for the template too.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from invoicing.core.documents import InvoiceDocument, Line, Party
from invoicing.core.errors import InputError, Source
from invoicing.core.money import in_minor_units
from invoicing.core.paths import DEFAULT_SELLER_FILE
from invoicing.render import evidence_text

#: Where the seller's e-invoice facts live (the renderer reads the same file).
SELLER_FILE = DEFAULT_SELLER_FILE
#: The 27 member states (ISO 3166 alpha-2; Greece is GR here, EL only in VAT numbers).
EU_MEMBER_STATES = frozenset((
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"))
#: BR-CO-09: a VAT identifier starts with the ISO 3166 code of its country (EL for Greece).
VAT_PREFIX = re.compile(r"[A-Z]{2}[0-9A-Za-z]")
#: Characters XML 1.0 cannot hold (C0 controls but tab, CR, LF; surrogates; U+FFFE/F).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: VAT categories a 0 % rate may declare, with the VATEX code of the reason (BT-121).
ZERO_RATE_CATEGORIES = {"AE": "VATEX-EU-AE", "E": None, "Z": None}
#: How customers without a direct-debit mandate pay (``[payment] method``).
PAYMENT_METHODS = ("credit_transfer", "card")
#: UNTDID 4461 payment means codes (BT-81).
MEANS_CODES = {"credit_transfer": "30", "direct_debit": "59", "card": "48"}
#: BT-20 of a credit note: it has no due date, and says what happens to the amount.
CREDIT_NOTE_TERMS = ("Credit note: the credited amount is refunded or set off against the "
                     "next invoice; no payment is due.")


@dataclass(frozen=True)
class ZeroRate:
    """How an e-invoice declares 0 % VAT for customers of one EU country.

    Attributes:
      category: EN 16931 VAT category code: ``AE`` (reverse charge: the buyer accounts
        for the VAT; needs the buyer's VAT id), ``E`` (exempt) or ``Z`` (zero rated).
      reason: the exemption reason text (BT-120); required for AE and E.
    """

    category: str
    reason: str | None


@dataclass(frozen=True)
class SellerPayment:
    """``[payment]`` of ``seller.toml``: how customers pay.

    Attributes:
      method: ``credit_transfer`` or ``card``, for customers without a mandate.
      iban, bic, account_name: the account credit transfers go to (BT-84, BT-86, BT-85).
      creditor_id: the SEPA creditor identifier (BT-90); with it, a customer that has a
        ``mandate_reference`` pays by SEPA direct debit.
    """

    method: str
    iban: str | None
    bic: str | None
    account_name: str | None
    creditor_id: str | None


@dataclass(frozen=True)
class EInvoiceSeller:
    """The seller as an EN 16931 party, from ``templates/seller.toml``.

    Attributes:
      name: legal name (BT-27).
      address_lines: the street part of the postal address, one entry per line (BT-35..37).
      postcode, city: BT-38 and BT-37, or None if the file lacks them.
      country: ISO 3166 alpha-2 code of the address (BT-40); None if the file lacks it.
      vat_id: VAT identification number with its country prefix (BT-31); None if absent.
      email: electronic address (BT-34), or None.
      peppol_scheme, peppol_id: the seller's Peppol participant id (BT-34 of a Peppol
        document), or None.
      payment: how customers pay, or None when the file has no ``[payment]``.
      zero_rates: EU country -> how its 0 % VAT is declared.
      source: the file, for error messages.
    """

    name: str
    address_lines: tuple[str, ...]
    postcode: str | None
    city: str | None
    country: str | None
    vat_id: str | None
    email: str | None
    peppol_scheme: str | None
    peppol_id: str | None
    payment: SellerPayment | None
    zero_rates: Mapping[str, ZeroRate]
    source: str


def _payment(data: dict[str, object], label: str) -> SellerPayment | None:
    entry = data.get("payment")
    if entry is None:
        return None
    if not isinstance(entry, dict) or entry.get("method") not in PAYMENT_METHODS:
        raise InputError(Source(label), "key 'payment.method': needs \"credit_transfer\" or "
                                        "\"card\"")
    if entry["method"] == "credit_transfer" and not entry.get("iban"):
        raise InputError(Source(label), "key 'payment.iban' missing: payment by credit "
                                        "transfer needs the account's IBAN")
    return SellerPayment(entry["method"], entry.get("iban"), entry.get("bic"),
                         entry.get("account_name"), entry.get("creditor_id"))


def load_seller(path: Path) -> EInvoiceSeller:
    """Read the e-invoice facts of ``seller.toml``; a bad entry raises `InputError`."""
    with path.open("rb") as fh:
        return seller_from(tomllib.load(fh), f"templates/{path.name}")


def seller_from(data: dict[str, Any], label: str) -> EInvoiceSeller:
    """The e-invoice facts of a parsed seller file (`label` names it in errors)."""
    zero_rates: dict[str, ZeroRate] = {}
    for country, entry in sorted(data.get("zero_rated_vat", {}).items()):
        key = f"key 'zero_rated_vat.{country}'"
        if not isinstance(entry, dict) or entry.get("category") not in ZERO_RATE_CATEGORIES:
            raise InputError(Source(label), f"{key}: needs category = \"AE\", \"E\" or \"Z\"")
        reason = entry.get("reason")
        if entry["category"] in ("AE", "E") and not reason:
            raise InputError(Source(label), f"{key}: category {entry['category']} needs a "
                                            "reason (the exemption reason text of the e-invoice)")
        zero_rates[country] = ZeroRate(entry["category"], reason)
    return EInvoiceSeller(
        name=str(data["name"]),
        address_lines=tuple(ln.strip() for ln in str(data.get("address", "")).splitlines()
                            if ln.strip()),
        postcode=data.get("postcode"),
        city=data.get("city"),
        country=data.get("country"),
        vat_id=data.get("vat_id"),
        email=data.get("email"),
        peppol_scheme=data.get("peppol_scheme"),
        peppol_id=data.get("peppol_id"),
        payment=_payment(data, label),
        zero_rates=zero_rates,
        source=label,
    )


def is_eu(country: str) -> bool:
    return country in EU_MEMBER_STATES


@dataclass(frozen=True)
class VatCategory:
    """The one VAT breakdown of a document (the rate is per customer, so one category).

    Attributes:
      code: ``S`` (standard), ``AE``, ``E`` or ``Z``.
      percent: the rate in percent (``19``, ``0``).
      reason: exemption reason text, or None.
      reason_code: VATEX code, or None.
    """

    code: str
    percent: Decimal
    reason: str | None
    reason_code: str | None


def vat_category(customer_id: str, country: str, tax_id: str | None, rate: Decimal,
                 seller: EInvoiceSeller, customers: Source | None = None) -> VatCategory:
    """The customer's VAT category, or `InputError` naming what the inputs lack.

    ``customers`` names the customer's row for the error of a missing VAT id.
    """
    if not seller.country or not seller.vat_id:
        missing = "country" if not seller.country else "vat_id"
        raise InputError(Source(seller.source),
                         f"key {missing!r} missing: customer {customer_id} ({country}) gets an "
                         "EN 16931 e-invoice, which needs the seller's country and VAT "
                         "identifier")
    if tax_id and not VAT_PREFIX.match(tax_id):
        raise InputError(customers or Source("customers", "tax_id"),
                         f"customer {customer_id} ({country}) has the tax id {tax_id!r}, "
                         "which an EN 16931 e-invoice can only carry as a VAT identifier "
                         "starting with its country code (such as DE811234567)")
    percent = (rate * 100).normalize()
    if rate > 0:
        return VatCategory("S", percent, None, None)
    zero = seller.zero_rates.get(country)
    if zero is None:
        raise InputError(Source(seller.source),
                         f"key 'zero_rated_vat.{country}' missing: customer {customer_id} "
                         f"({country}) pays 0 % VAT; its EN 16931 e-invoice needs the VAT "
                         "category (AE, E or Z) and the reason")
    if zero.category == "AE" and not tax_id:
        raise InputError(customers or Source("customers", "tax_id"),
                         f"customer {customer_id} ({country}) is invoiced under reverse "
                         f"charge (zero_rated_vat.{country} = AE in {seller.source}) and "
                         "needs its VAT identifier")
    # BR-Z-10: a zero-rated breakdown carries no exemption reason (the page prints it).
    return VatCategory(zero.category, Decimal(0), None if zero.category == "Z" else zero.reason,
                       ZERO_RATE_CATEGORIES[zero.category])


@dataclass(frozen=True)
class PageVat:
    """What the page of an EU VAT invoice prints about VAT (Art. 226 of Directive 2006/112).

    Attributes:
      category: ``S``, ``AE``, ``E`` or ``Z``.
      seller_vat_id: the seller's VAT identification number.
      reason: the exemption reason of an AE, E or Z category, as ``seller.toml`` words it.
    """

    category: str
    seller_vat_id: str
    reason: str | None


def page_vat(doc: InvoiceDocument, seller: EInvoiceSeller) -> PageVat | None:
    """The VAT facts the page of an EU customer prints, or None (no EU VAT invoice).

    A customer outside the EU, or an EU one the seller file cannot classify (a month that
    issues no e-invoice for it never checked it), keeps the page it always had.
    """
    buyer = doc.customer
    if not is_eu(buyer.country):
        return None
    try:
        vat = vat_category(buyer.customer_id, buyer.country, buyer.tax_id, doc.tax_rate,
                           seller)
    except InputError:
        return None
    zero = seller.zero_rates.get(buyer.country) if vat.code != "S" else None
    return PageVat(vat.code, str(seller.vat_id), zero.reason if zero else None)


@dataclass(frozen=True)
class Payment:
    """BG-16, the payment instructions of one document.

    Attributes:
      means: ``credit_transfer``, ``direct_debit`` or ``card``.
      code: its UNTDID 4461 code (BT-81).
      reference: the remittance information the payer quotes (BT-83): the document number.
      iban, bic, account_name: credit transfer: the seller's account.
      creditor_id, mandate_reference: direct debit: the seller's SEPA creditor id (BT-90)
        and the customer's mandate (BT-89).
    """

    means: str
    code: str
    reference: str
    iban: str | None = None
    bic: str | None = None
    account_name: str | None = None
    creditor_id: str | None = None
    mandate_reference: str | None = None


def payment_for(doc: InvoiceDocument, seller: EInvoiceSeller) -> Payment | None:
    """How the document is paid: by direct debit when the customer has a mandate and the
    seller a creditor id, else by the seller's method; None without ``[payment]``."""
    pay = seller.payment
    if pay is None:
        return None
    mandate = doc.customer.mandate_reference
    if mandate and pay.creditor_id:
        return Payment("direct_debit", MEANS_CODES["direct_debit"], doc.invoice_number,
                       creditor_id=pay.creditor_id, mandate_reference=mandate)
    if pay.method == "card":
        return Payment("card", MEANS_CODES["card"], doc.invoice_number)
    return Payment("credit_transfer", MEANS_CODES["credit_transfer"], doc.invoice_number,
                   iban=pay.iban, bic=pay.bic, account_name=pay.account_name)


# --- helpers of every syntax ------------------------------------------------------------


def xml_text(value: object) -> str:
    """Customer text as XML can carry it: control characters the PDF prints become U+FFFD."""
    return NOT_XML.sub("\ufffd", str(value))


def number_text(value: Decimal) -> str:
    """A decimal in plain notation without trailing zeros (``149.99``, ``19``); never ``-0``."""
    value = value.normalize()
    return format(value.copy_abs() if value.is_zero() else value, "f")


def amount_text(value: Decimal, currency: str) -> str:
    """A money amount with the currency's digits (``0.00``, never ``-0.00``)."""
    return str(in_minor_units(value, currency))


def street_lines(lines: tuple[str, ...], limit: int = 3) -> list[str]:
    """At most ``limit`` address lines: the rest are joined into the last one."""
    if len(lines) <= limit:
        return list(lines)
    return [*lines[:limit - 1], ", ".join(lines[limit - 1:])]


def buyer_reference(buyer: Party) -> str:
    """BT-10: the buyer's reference when the customer gave one, else its customer id."""
    return buyer.buyer_reference or buyer.customer_id


def line_items(doc: InvoiceDocument) -> list[tuple[int, str, Line]]:
    """(line number, item name, line) of every line, in page order. The name is the app,
    then the words of the page (`evidence_text`), in the document's language."""
    out: list[tuple[int, str, Line]] = []
    for app in doc.apps:
        for line in app.lines:
            words = evidence_text.describe(line, doc.locale, doc.currency,
                                           plan_changed=app.plan_changed,
                                           period_start=doc.period_start)
            out.append((len(out) + 1, f"App {app.sdk_app_id} {app.app_name}: {words}", line))
    return out


@dataclass(frozen=True)
class XmlFigures:
    """The figures of an e-invoice XML that `verify` compares with the recomputation.

    Attributes:
      number: BT-1, the document number.
      type_code: ``380`` or ``381``.
      line_amounts: BT-131 of every line, in order.
      subtotal: BT-106 (sum of line amounts).
      tax: BT-110.
      total: BT-112.
    """

    number: str
    type_code: str
    line_amounts: tuple[Decimal, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
