"""Guarded speed-ups inside WeasyPrint 70.0: private internals replaced, or stock WeasyPrint.

The renderer runs on WeasyPrint's public API (`weasyprint.HTML`, `CSS`, `write_pdf`).
Three changes, each measured to save more than 3% of the render CPU (BENCHMARKS.md,
"What render_engine buys"), rely on private WeasyPrint internals in this process:
`CHANGES` names them. Each keeps every byte of the PDFs (tests/render/test_render.py renders
with and without them and compares), and `install` applies them only when it is safe:

* WeasyPrint's version is exactly `WEASYPRINT_VERSION` (pinned in pyproject.toml);
* every private name is imported and every attribute checked *inside* `install`,
  before anything is patched (this module imports no private name at import time);
* on any mismatch or failure nothing stays patched, one WARNING line says why, and the
  renderer runs on stock WeasyPrint: the same PDFs, only slower.

1. Font subsets made from prepared faces (`_font_functions`).

For every PDF, WeasyPrint 70 embeds a subset of each font the invoice uses, made by
HarfBuzz's subsetter (``weasyprint.pdf.fonts.Font._harfbuzz_subset``), and before that
copies the whole font file into Python (``Font.__init__``). Both start again from the
full font for every document: HarfBuzz re-reads the cmap, glyph and metrics tables of a
4.5 MB CJK font to keep fifty glyphs.

* HarfBuzz >= 6 can *preprocess* a face once (``hb_subset_preprocess``), after which
  each subset of it is 2-18 times faster and byte-identical. A prepared face is kept
  per font for the life of the process; the subsetting code is WeasyPrint's own,
  handed the prepared face instead of the original.
* The bytes of a whole font file are read once per font and shared, instead of being
  copied for every document. Only the faces of fonts Pango opened are cached (each is
  pinned with a reference, so its address cannot be reused by another face); the
  faces HarfBuzz creates for subsets are never cached. A face is prepared at its second
  subset and its bytes kept from its second document on (a throw-away
  ``FontConfiguration`` uses each face once), and at most `MAX_FACES` faces are kept.

Without ``libharfbuzz-subset`` >= 6.0 this change is left out (with a warning).

2. A shortcut for the common computed values (`_computed_value_function`).

``ComputedStyle.__missing__`` computes one CSS property of one element the first time
it is read: ~7,000 times for a one-page invoice. Most of those properties are set by no
rule for that element, so their value is simply the parent's (inherited properties) or
the initial value. The shortcut answers those directly and hands everything else
(declared values, ``var()``, math functions, logical properties, text decorations,
``page``, ``position``/``float``/``display``) to WeasyPrint's own method.

3. The invoice page parsed by expat, with a lighter user-agent stylesheet (`html_page`).

WeasyPrint parses HTML with tinyhtml5, in Python; the template's markup is well-formed
XML, which the C parser expat reads into the same tree many times faster, and the page
object is then built without ``HTML.__init__`` (it sets the five `HTML_ATTRIBUTES`,
checked at install). WeasyPrint's user-agent stylesheet has six rules that match every
element (``::marker``, ``::footnote-call`` ...) and cost six pseudo-element styles per
element for nothing on an invoice; the page is styled without them (`user_agent_css`).

Left out after measuring (below 3%): one Pango font description per font (1.1%).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection
from typing import Any
from xml.etree import ElementTree

import weasyprint

from invoicing.render.engine_fonts import (  # re-exported: tests read the face cache
    MAX_FACES,
    PREPARE_AT_USE,
    _faces,
    _font_patches,
    _lock,
    _private,
    _require,
)

__all__ = ["MAX_FACES", "PREPARE_AT_USE", "install", "uninstall"]

#: The exact WeasyPrint release whose internals these changes were written against.
WEASYPRINT_VERSION = "70.0"
log = logging.getLogger(__name__)

#: (owner, attribute, WeasyPrint's original) for every attribute replaced, in order.
_patched: list[tuple[Any, str, Any]] = []
#: The outcome of the last `install` (None: not tried since the last `uninstall`).
_outcome: bool | None = None


#: The changes by name, for ``install(without=...)`` (benchmarks/render_instructions.py
#: measures each one by leaving it out).
CHANGES = ("fonts", "computed_values", "page")


def install(without: Collection[str] = ()) -> bool:
    """Apply the changes (all but those named in ``without``); True if they are in place.

    Idempotent and thread-safe: the first call decides, later ones return its outcome;
    after a failure they return False without trying (or warning) again until
    `uninstall`. The font caches live as long as the process (a handful of bundled
    fonts: ~35 MB with their prepared faces).
    """
    global _outcome, _page_class
    unknown = set(without) - set(CHANGES)
    if unknown:
        raise ValueError(f"unknown render_engine changes: {sorted(unknown)}")
    with _lock:
        if _outcome is not None:
            return _outcome
        _outcome = False
        if weasyprint.__version__ != WEASYPRINT_VERSION:
            _fall_back(f"WeasyPrint is {weasyprint.__version__}, "
                       f"not the {WEASYPRINT_VERSION} they were written for")
            return False
        try:
            patches = [
                *(_computed_value_patches() if "computed_values" not in without else []),
                *(_font_patches() if "fonts" not in without else []),
            ]
            page_class = _page_class_for_version() if "page" not in without else None
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            _fall_back(f"WeasyPrint {WEASYPRINT_VERSION} internals differ ({exc})")
            return False
        try:
            for owner, name, replacement in patches:
                _patched.append((owner, name, getattr(owner, name)))
                setattr(owner, name, replacement)
        except Exception as exc:  # never leave WeasyPrint half-patched
            _restore()
            _fall_back(f"patching failed ({exc!r})")
            return False
        _page_class = page_class
        _outcome = True
        return True


def uninstall() -> None:
    """Back to stock WeasyPrint (the tests compare both); `install` may run again."""
    global _outcome
    with _lock:
        _restore()
        _faces.clear()
        _outcome = None


def _restore() -> None:
    global _page_class
    _page_class = None
    while _patched:
        owner, name, original = _patched.pop()
        setattr(owner, name, original)


def _fall_back(reason: str) -> None:
    log.warning("render shortcuts off, rendering with stock WeasyPrint (same PDFs, slower): "
                "%s", reason)


# --- 2. computed values ----------------------------------------------------------------


def _computed_value_patches() -> list[tuple[Any, str, Any]]:
    """``ComputedStyle.__missing__`` replaced by the shortcut, after checking its inputs."""
    (computed_style,) = _private("weasyprint.css", "ComputedStyle")
    computer_functions, physical_functions = _private(
        "weasyprint.css.computed_values", "COMPUTER_FUNCTIONS", "PHYSICAL_FUNCTIONS")
    inherited, initial_not_computed, initial_values = _private(
        "weasyprint.css.properties", "INHERITED", "INITIAL_NOT_COMPUTED", "INITIAL_VALUES")
    _require(computed_style, "__missing__")
    shortcut = _computed_value_function(
        computed_style.__missing__, computer_functions, frozenset(physical_functions),
        inherited, initial_not_computed, initial_values)
    return [(computed_style, "__missing__", shortcut)]


def _computed_value_function(
    stock_missing: Callable[[Any, str], Any], computer_functions: dict[str, Any],
    physical: frozenset[str], inherited: Any, initial_not_computed: Any,
    initial_values: dict[str, Any],
) -> Callable[[Any, str], Any]:
    """``ComputedStyle.__missing__``, answering undeclared properties directly.

    Same result as WeasyPrint 70's method for a property no rule declares for the
    element: the parent's computed value if it is inherited (custom properties, named
    ``__*``, are), else the initial value, computed when WeasyPrint's table says the
    initial value needs computing. Initial and inherited values hold no ``var()`` or
    math function, so the rest of the stock method has nothing to do for them.
    Properties left to WeasyPrint: logical/physical pairs, and those whose computation
    reads or records other properties.
    """
    not_shortcut = physical | {"page", "position", "float", "display"}

    def computed_value(style: Any, key: str) -> Any:
        if key in not_shortcut or key in style.cascaded or key[:16] == "text_decoration_":
            return stock_missing(style, key)
        parent = style.parent_style
        if parent is not None and (key in inherited or key[:2] == "__"):
            value = style[key] = parent[key]
            return value
        if key[:2] == "__":
            value = style[key] = []
            return value
        value = initial_values[key]
        if key in initial_not_computed and key in computer_functions:
            value = computer_functions[key](style, key, value)
        style[key] = value
        return value

    return computed_value


# --- 3. the invoice page: parsed by expat, lighter user-agent stylesheet ----------------

#: The attributes ``HTML.__init__`` (WeasyPrint 70.0) sets; `_page_class` checks that a
#: stock `weasyprint.HTML` has exactly these before building pages without it.
HTML_ATTRIBUTES = frozenset(
    {"base_url", "url_fetcher", "media_type", "wrapper_element", "etree_element"})

#: Rules of WeasyPrint's HTML user-agent stylesheet that start with a bare pseudo-element
#: (``::marker``, ``::footnote-call``, ``::note-call`` ...). See `user_agent_css`.
UNIVERSAL_PSEUDO_ELEMENT_RULE = re.compile(r"^::[a-z-]+\s*\{[^}]*\}\s*$", re.MULTILINE)
#: The selectors of those rules in WeasyPrint 70.0's stylesheet; any other set is a mismatch.
UNIVERSAL_PSEUDO_ELEMENTS = ("::footnote-call", "::footnote-marker", "::marker",
                             "::note-call", "::note-callback", "::note-marker")

#: A start tag with a tab, CR or LF inside (an attribute value holding one, say): an XML
#: parser would turn it into a space where an HTML parser keeps it.
_WHITESPACE_IN_TAG = re.compile(r"<[^<>]*[\t\r\n][^<>]*>")

#: The `weasyprint.HTML` subclass pages are built with while installed, else None.
_page_class: type[Any] | None = None


def html_page(html: str, base_url: str, url_fetcher: Any) -> Any:
    """``weasyprint.HTML(string=html, ...)``, built the fast way while installed.

    Installed: parsed by `parse_as_xml` when it can be, styled with `user_agent_css`.
    Otherwise (not installed, or a fallback): stock `weasyprint.HTML`. Both give the
    same PDF bytes.
    """
    page_class = _page_class
    if page_class is None:
        return weasyprint.HTML(string=html, base_url=base_url, url_fetcher=url_fetcher)
    root = parse_as_xml(html)
    if root is None:
        return page_class(string=html, base_url=base_url, url_fetcher=url_fetcher)
    return page_class.from_tree(root, base_url, url_fetcher)


def parse_as_xml(html: str) -> ElementTree.Element | None:
    """The element tree of an invoice page, read by expat, or None if it cannot be.

    The template writes well-formed XHTML-compatible markup (void elements closed
    with ``/>``, every value escaped), so the C XML parser builds the same tree as
    WeasyPrint's pure-Python HTML5 parser (tinyhtml5) in about a twentieth of the
    time. Markup the two parsers could read differently is left to tinyhtml5:
    anything expat rejects (a control character in a customer name, an HTML entity)
    and tags with a tab or line break inside.
    """
    if _WHITESPACE_IN_TAG.search(html):
        return None
    try:
        return ElementTree.fromstring(html)
    except (ElementTree.ParseError, ValueError):
        return None


def user_agent_css(stock_text: str) -> str:
    """WeasyPrint's HTML user-agent stylesheet, less its universal pseudo-element rules.

    ``::marker {...}``, ``::footnote-call {...}`` and the four other rules like them
    match every element, so WeasyPrint computes six pseudo-element styles for each
    element of every invoice, and throws them away: they only matter for list items,
    footnotes and notes, which the invoice has none of. ``::marker`` is kept for ``li``.
    Raises `ValueError` if the stylesheet does not hold exactly the six rules.
    """
    rules = UNIVERSAL_PSEUDO_ELEMENT_RULE.findall(stock_text)
    selectors = sorted(rule.split("{")[0].strip() for rule in rules)
    if tuple(selectors) != UNIVERSAL_PSEUDO_ELEMENTS:
        raise ValueError(f"user-agent pseudo-element rules are {selectors}")
    text = UNIVERSAL_PSEUDO_ELEMENT_RULE.sub("", stock_text)
    return text + "".join("\nli" + rule for rule in rules if rule.startswith("::marker"))


def _page_class_for_version() -> type[Any]:
    """The `weasyprint.HTML` subclass of `html_page`, after checking what it relies on."""
    (stock_ua,) = _private("weasyprint.html", "UA")
    (counter_style,) = _private("weasyprint.css.counters", "CounterStyle")
    import cssselect2

    _require(weasyprint.HTML, "_ua_stylesheets")
    probe = weasyprint.HTML(string="<p>probe</p>", base_url="file:///")
    if set(vars(probe)) != HTML_ATTRIBUTES:
        raise AttributeError(f"HTML.__init__ sets {sorted(vars(probe))}")
    if len(probe._ua_stylesheets(False)) != 1:
        raise AttributeError("HTML._ua_stylesheets returns another list")
    ua_stylesheet = weasyprint.CSS(string=user_agent_css(stock_ua),
                                   counter_style=counter_style())

    class InvoiceHTML(weasyprint.HTML):
        """`weasyprint.HTML` styled with the lighter user-agent stylesheet."""

        @classmethod
        def from_tree(cls, root: ElementTree.Element, base_url: str,
                      url_fetcher: Any) -> Any:
            """Set what ``HTML.__init__`` sets after parsing (`HTML_ATTRIBUTES`). The
            page has no ``<base>`` element (customer data is escaped), so ``base_url``
            is used as is."""
            page = cls.__new__(cls)
            page.base_url = base_url
            page.url_fetcher = url_fetcher
            page.media_type = "print"
            page.wrapper_element = cssselect2.ElementWrapper.from_html_root(
                root, content_language=None)
            page.etree_element = page.wrapper_element.etree_element
            return page

        def _ua_stylesheets(self, forms: bool = False) -> list[Any]:
            return [ua_stylesheet, *super()._ua_stylesheets(forms)[1:]]

    return InvoiceHTML
