"""What the bundled fonts can print, checked before anything is issued.

The renderer loads only the fonts of ``templates/fonts/`` (Latin, Greek and Cyrillic
from DejaVu Sans, Hangul from Nanum Gothic, Han from WenQuanYi Micro Hei), so a
character none of them has would print as an empty box. Two checks follow from their
character maps, read once per process:

* a customer's **locale** must print in a script the fonts cover: its month names,
  digits, currency and percent signs are formatted by Babel and checked, so ``th_TH``,
  ``hi_IN`` or ``my_MM`` (whose dates Babel writes in Thai, Devanagari or Myanmar
  script) are refused with one line per customer (exit 3) rather than printed as boxes;
* a **name or address** holding a character no bundled font has is reported per
  document (a line in the run summary and a count in the manifest): the data is the
  customer's own, so the document is still issued, but never silently.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from invoicing.core.errors import ErrorLog, Source
from invoicing.core.paths import TEMPLATES_DIR
from invoicing.render.i18n import format_date, format_int, format_money, format_rate

#: The regular faces (the bold ones are subsets of the same scripts).
REGULAR_FACES = ("DejaVuSans.ttf", "NanumGothic.ttf", "WenQuanYiMicroHei.ttf")


@cache
def covered() -> frozenset[str]:
    """Every character some bundled regular face has a glyph for."""
    chars: set[str] = set()
    for name in REGULAR_FACES:
        chars.update(map(chr, mapped_code_points(TEMPLATES_DIR / "fonts" / name)))
    return frozenset(chars)


_HB_CDEF = """
    typedef struct hb_blob_t hb_blob_t;
    typedef struct hb_face_t hb_face_t;
    typedef struct hb_set_t hb_set_t;
    typedef uint32_t hb_codepoint_t;
    hb_blob_t *hb_blob_create_from_file (const char *file_name);
    hb_face_t *hb_face_create (hb_blob_t *blob, unsigned int index);
    hb_set_t *hb_set_create (void);
    void hb_face_collect_unicodes (hb_face_t *face, hb_set_t *out);
    unsigned int hb_set_get_population (const hb_set_t *set);
    unsigned int hb_set_next_many (const hb_set_t *set, hb_codepoint_t codepoint,
                                   hb_codepoint_t *out, unsigned int size);
    void hb_set_destroy (hb_set_t *set);
    void hb_face_destroy (hb_face_t *face);
    void hb_blob_destroy (hb_blob_t *blob);
"""


@cache
def _harfbuzz() -> tuple[Any, Any]:
    from cffi import FFI

    ffi = FFI()
    ffi.cdef(_HB_CDEF)
    return ffi, ffi.dlopen("libharfbuzz.so.0")


def mapped_code_points(path: Path) -> list[int]:
    """The code points a font file's character map covers, read by HarfBuzz (the library
    WeasyPrint shapes the text with). fontTools decodes the same map in Python, about
    0.4 s per CJK face, which every run paid; HarfBuzz takes milliseconds."""
    ffi, hb = _harfbuzz()
    blob = hb.hb_blob_create_from_file(str(path).encode())
    face = hb.hb_face_create(blob, 0)
    found = hb.hb_set_create()
    try:
        hb.hb_face_collect_unicodes(face, found)
        size = hb.hb_set_get_population(found)
        out = ffi.new("hb_codepoint_t[]", size)
        got = hb.hb_set_next_many(found, 0xFFFFFFFF, out, size)  # from the first
        return list(out[0:got])
    finally:
        hb.hb_set_destroy(found)
        hb.hb_face_destroy(face)
        hb.hb_blob_destroy(blob)


def _printable(char: str) -> bool:
    """Whitespace and invisible formatting characters need no glyph."""
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf") or char in covered()


def missing_characters(text: str) -> list[str]:
    """The distinct characters of `text` no bundled font has, in order of appearance."""
    return [c for c in dict.fromkeys(text) if not _printable(c)]


def shown(chars: list[str], limit: int = 5) -> str:
    """``'ต' (U+0E15), 'ุ' (U+0E38) and 3 more``."""
    parts = [f"{c!r} (U+{ord(c):04X})" for c in chars[:limit]]
    rest = len(chars) - limit
    return ", ".join(parts) + (f" and {rest} more" if rest > 0 else "")


@cache
def locale_missing(locale: str, currency: str) -> tuple[str, ...]:
    """Characters the documents of a (locale, currency) print that no bundled font has:
    the month names of a year, a date, a negative amount, a count and a rate. An unknown
    locale or currency (reported by the customers check) gives none."""
    try:
        samples = [format_date(date(2026, m, 28), locale) for m in range(1, 13)]
        samples += [format_money(Decimal("-1234567.89"), currency, locale),
                    format_int(1234567890, locale), format_rate(Decimal("0.125"), locale)]
    except Exception:  # Babel's refusal of an unknown id, already reported
        return ()
    return tuple(missing_characters("".join(samples)))


def check_locales(customers: pl.DataFrame, label: str, errors: ErrorLog) -> None:
    """Refuse every customer whose locale the bundled fonts cannot print (one line per
    row); the few distinct (locale, currency) pairs are each formatted once."""
    pair = pl.concat_str("locale", "currency", separator="\t")
    bad: dict[str, tuple[str, ...]] = {}
    for key in customers.select(pair.alias("k"))["k"].drop_nulls().unique().sort():
        missing = locale_missing(*key.split("\t"))
        if missing:
            bad[key] = missing
    if not bad:
        return
    rows = customers.with_row_index("_row", offset=1).filter(pair.is_in(list(bad)))
    for row in rows.select("_row", "customer_id", "locale", "currency").iter_rows(named=True):
        missing = bad[f"{row['locale']}\t{row['currency']}"]
        errors.add(Source(label, "locale", row["_row"]),
                   f"the bundled fonts cannot print {row['locale']!r} (customer "
                   f"{row['customer_id']}): its dates and amounts use {shown(list(missing))}; "
                   "choose a locale in Latin, Greek, Cyrillic, Hangul or Han script "
                   "(for example en_US)")


def unprintable_names(customers: pl.DataFrame) -> pl.DataFrame:
    """(customer_id, characters): customers whose name or address holds characters no
    bundled font has. The distinct characters of the whole table are checked once."""
    text = pl.concat_str(pl.col("name").fill_null(""), pl.col("address").fill_null(""))
    distinct = customers.select(text.str.split("").explode().unique().alias("c"))["c"]
    bad = missing_characters("".join(distinct.drop_nulls().to_list()))
    if not bad:
        return pl.DataFrame(schema={"customer_id": pl.String, "characters": pl.String})
    flagged = customers.filter(text.str.contains_any(bad)).select(
        "customer_id", text.alias("_text"))
    return pl.DataFrame(
        {"customer_id": flagged["customer_id"],
         "characters": [shown(missing_characters(t)) for t in flagged["_text"]]},
        schema={"customer_id": pl.String, "characters": pl.String})
