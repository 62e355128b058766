"""Locale-aware formatting and the label catalogue for the render stage.

Money, dates and counts are formatted here and nowhere else, so that every PDF
writes an amount the same way for a given locale and the templates stay free of
formatting logic (STYLE.md: templates only format, labels come from the
catalogue).

Labels live in gettext ``.po`` files under ``invoicing/locales/<locale>/LC_MESSAGES/``.
They are compiled in memory when first needed (``read_po`` -> ``write_mo`` ->
``Translations``), so the repository holds no compiled ``.mo`` and there is no
build step to forget. Source strings are English: a locale without a catalogue
(``ja_JP``) prints English labels but still formats money and dates in its own
locale, because the customer reads the figures, not our catalogue.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.dates import format_date as _babel_format_date
from babel.dates import format_interval
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.numbers import get_currency_precision as _currency_precision
from babel.support import NullTranslations, Translations

DOMAIN = "invoicing"
LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"
#: Catalogue used when a locale has none of its own: the source strings are English.
FALLBACK_LOCALE = "en_US"
#: One date style for the whole invoice, so issue, due, peak and trial dates look alike.
DATE_FORMAT = "long"


def format_money(amount: Decimal, currency: str, locale: str) -> str:
    """Format an invoice amount with exactly the currency's minor-unit digits.

    Amounts reaching the renderer were already rounded once (SPEC R7). If one
    carries more digits than the currency has (``Decimal("1.005")`` USD, or any
    fraction of a won), the pricing stage has a bug; rounding it again here would
    print a figure that differs from ``line_items.parquet``, so it raises instead.

    >>> format_money(Decimal("1234567"), "KRW", "ko_KR")
    '₩1,234,567'
    >>> format_money(Decimal("1234.5"), "USD", "en_US")
    '$1,234.50'
    """
    _require_decimal(amount)
    digits = _currency_precision(currency)
    exact = amount.quantize(Decimal(1).scaleb(-digits))
    if exact != amount:
        raise ValueError(
            f"{amount} {currency} has more than the currency's {digits} decimal digit(s); "
            "amounts must be rounded before rendering (SPEC R7)"
        )
    if exact.is_zero():
        exact = exact.copy_abs()  # a negated zero line on a credit note is not "-$0.00"
    return format_currency(exact, currency, locale=_locale(locale), currency_digits=True)


def format_unit_price(amount: Decimal, currency: str, locale: str) -> str:
    """Format a unit price: at least the currency's minor digits, never rounded.

    A price-book price may legitimately be finer than the currency's minor unit
    (a fraction of a won per unit); it is printed in full rather than rounded,
    because the auditor recomputes ``quantity x unit price`` from the PDF.
    """
    _require_decimal(amount)
    digits = _currency_precision(currency)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -digits:
        amount = amount.quantize(Decimal(1).scaleb(-digits))  # adds zeros, loses nothing
    return format_currency(
        amount, currency, locale=_locale(locale), currency_digits=True,
        decimal_quantization=False,
    )


def format_date(d: date, locale: str) -> str:
    """Format a calendar date in the locale's long style (``2026년 11월 1일``)."""
    return _babel_format_date(d, format=DATE_FORMAT, locale=_locale(locale))


def format_date_range(start: date, end: date, locale: str) -> str:
    """Format an inclusive date range the way the locale writes intervals.

    Babel merges the shared parts (``October 1 – 31, 2026``), which keeps the
    billing period and add-on activity short in a narrow column.
    """
    if start == end:
        return format_date(start, locale)
    return format_interval(start, end, skeleton="yMMMMd", locale=_locale(locale))


def format_int(n: int, locale: str) -> str:
    """Format a count (users, groups, days) with the locale's grouping."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"format_int expects an int, got {type(n).__name__}: {n!r}")
    return format_decimal(n, locale=_locale(locale))


def format_rate(rate: Decimal, locale: str) -> str:
    """Format a tax rate as a percentage without losing digits (``0.055`` -> ``5.5%``)."""
    _require_decimal(rate)
    return format_percent(rate, locale=_locale(locale), decimal_quantization=False)


def html_lang(locale: str) -> str:
    """BCP 47 tag for ``<html lang>`` (``ko_KR`` -> ``ko-KR``).

    The tag drives the CSS ``:lang()`` font choice and the PDF ``/Lang`` entry
    that screen readers use.
    """
    parsed = _locale(locale)
    parts = [parsed.language, parsed.script, parsed.territory]
    return "-".join(p for p in parts if p)


@cache
def _locale(locale: str) -> Locale:
    """``Locale.parse`` once per locale id and process.

    Babel parses a locale given as a string on every call, and for ``zh_CN`` that
    means resolving the likely script (``zh_Hans_CN``) through a scan of every locale
    id it knows: about 5 ms per Chinese invoice, for ~40 formatted figures.
    """
    return Locale.parse(locale)


def catalogue_path(locale: str) -> Path:
    """Where the ``.po`` file of ``locale`` lives (it may not exist)."""
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def available_locales() -> tuple[str, ...]:
    """Locales that ship a catalogue, sorted."""
    return tuple(sorted(p.parent.parent.name for p in LOCALES_DIR.glob(f"*/*/{DOMAIN}.po")))


@cache
def translations(locale: str) -> NullTranslations:
    """Return the label catalogue of ``locale``, compiled once per process.

    Lookup order: the exact locale (``zh_CN``), then another catalogue of the
    same language (``ko`` or ``ko_KP`` -> ``ko_KR``), then English source strings.
    An unknown locale id raises (Babel's ``UnknownLocaleError``) instead of
    silently printing an English invoice for a typo.
    """
    parsed = Locale.parse(locale)
    candidates = [catalogue_path(locale)]
    candidates += [
        catalogue_path(other)
        for other in available_locales()
        if Locale.parse(other).language == parsed.language
    ]
    candidates.append(catalogue_path(FALLBACK_LOCALE))
    for path in candidates:
        if path.is_file():
            return _load_catalogue(path)
    return NullTranslations()


def _load_catalogue(path: Path) -> Translations:
    """Compile one ``.po`` file in memory; fuzzy entries are left out like msgfmt does.

    The catalogue is read with its own locale (the folder name), not the requested
    one, so plural rules match the language the strings are written in.
    """
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=path.parent.parent.name, domain=DOMAIN, abort_invalid=True)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def _require_decimal(value: object) -> None:
    """Refuse floats (and anything else) where money or rates are expected (SPEC R7)."""
    if not isinstance(value, Decimal):
        raise TypeError(f"expected Decimal, got {type(value).__name__}: {value!r}")
    if not value.is_finite():
        raise ValueError(f"expected a finite Decimal, got {value!r}")
