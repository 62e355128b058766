"""The Jinja2 filters of the invoice template: formatting only, every value escaped.

Figures are formatted by `invoicing.render.i18n` (Babel); the filters here shape text for
the page: numeric add-on tiers, Korean words kept whole, and the translated page
counter and other labels turned into CSS strings that are safe inside ``<style>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape

from invoicing.render import evidence_text, i18n

#: Placeholders the template passes through gettext for the page counter; the
#: translated text around them becomes CSS strings (see `page_counter_css`).
PAGE_TOKEN = "{page}"
PAGES_TOKEN = "{pages}"

#: U+2060 WORD JOINER: zero width, no glyph, forbids a line break on either side (UAX 14).
WORD_JOINER = "\u2060"


def format_tier(tier: str, locale: str) -> str:
    """Format an add-on tier: numeric tiers (``"3000"``) get the locale's grouping."""
    return i18n.format_int(int(tier), locale) if tier.isdigit() else tier


def keep_words(text: str, locale: str) -> Markup:
    """Keep each space-separated word of a Korean label on one line.

    Korean separates words with spaces, but line breaking (UAX 14) may split a
    word between any two syllables, and WeasyPrint 70 ignores ``word-break:
    keep-all``. A word joiner between the characters of each word forbids those
    breaks: the label prints and extracts exactly as before, and lines still break
    at the spaces. (A no-wrap ``<span>`` per word did the same at the cost of an
    inline box per word, about a tenth of the render time of a Korean invoice.)
    Other languages are returned escaped and unchanged: Chinese has no spaces, so
    joining its characters would stop its lines from breaking at all.
    """
    if not locale.startswith("ko"):
        return escape(text)
    # Join the characters of the plain text (not of its escaped form, whose entities
    # such as "&amp;" must stay whole), escaping each character.
    plain = _plain(text)
    return Markup(" ").join(
        Markup(WORD_JOINER).join(escape(char) for char in word)
        for word in plain.split(" ") if word
    )


_TOKEN_RE = re.compile("(" + re.escape(PAGE_TOKEN) + "|" + re.escape(PAGES_TOKEN) + ")")


def page_counter_css(label: str) -> Markup:
    """Turn a translated "Page {page} of {pages}" into a CSS ``content`` value.

    Page numbers only exist in CSS (``counter(page)``), and word order differs
    between languages ("3페이지 중 1페이지"), so the translated sentence is
    split at the placeholders and each piece becomes an escaped CSS string.
    Characters that could end a string or the ``<style>`` element are written as
    CSS hex escapes; the result is safe inside ``<style>``.
    """
    pieces: list[str] = []
    for token in _TOKEN_RE.split(str(label)):
        if token == PAGE_TOKEN:
            pieces.append("counter(page)")
        elif token == PAGES_TOKEN:
            pieces.append("counter(pages)")
        elif token:
            pieces.append(_css_string(token))
    return Markup(" ".join(pieces) or '""')


def css_string(text: str) -> Markup:
    """Jinja2 filter: ``text`` as a quoted CSS string, safe inside ``<style>``.

    Markup (what autoescaped concatenation returns) is unescaped first: CSS strings
    are not HTML, and `_css_string` escapes every character that could end them.
    """
    return Markup(_css_string(_plain(text)))


def _plain(text: str) -> str:
    """The text itself: Markup (what gettext and autoescaped joins return) unescaped."""
    return text.unescape() if isinstance(text, Markup) else str(text)


def _css_string(text: str) -> str:
    """Quote ``text`` as a CSS string, hex-escaping anything that is not plain text."""
    out = []
    for char in text:
        if char.isalnum() or char in " .,:;()/-" or (ord(char) > 0x7F and char.isprintable()):
            out.append(char)
        else:
            # Six hex digits and a space: CSS takes one whitespace after an escape
            # as its end, so the space keeps a real space that follows.
            out.append(f"\\{ord(char):06x} ")
    return '"' + "".join(out) + '"'


#: Every filter the invoice template uses, by the name it uses.
FILTERS: dict[str, Callable[..., Any]] = {
    "format_money": i18n.format_money,
    "format_unit_price": i18n.format_unit_price,
    "format_date": i18n.format_date,
    "format_date_range": i18n.format_date_range,
    "format_int": i18n.format_int,
    "format_rate": i18n.format_rate,
    "format_tier": format_tier,
    "item_label": evidence_text.item_label,
    "plan_label": evidence_text.plan_label,
    "line_facts": lambda line, loc, cur, plan_changed, period_start: (
        evidence_text.line_facts(line, loc, cur, plan_changed=plan_changed,
                                 period_start=period_start)),
    "within_quota": evidence_text.within_quota,
    "keep_words": keep_words,
    "page_counter_css": page_counter_css,
    "css_string": css_string,
}
