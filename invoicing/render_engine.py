"""What the render stage changes inside WeasyPrint 70, in this process only.

Each change keeps every byte of the PDFs (tests/test_render.py renders with and without
them and compares), and `install` applies none of them to another WeasyPrint version,
whose internals may differ: the renderer then runs on stock WeasyPrint, only slower.

1. Font subsets made from prepared faces.

For every PDF, WeasyPrint 70 embeds a subset of each font the invoice uses, made by
HarfBuzz's subsetter (``weasyprint.pdf.fonts.Font._harfbuzz_subset``), and before that
copies the whole font file into Python (``Font.__init__``). Both start again from the
full font for every document: HarfBuzz re-reads the cmap, glyph and metrics tables of a
4.5 MB CJK font to keep fifty glyphs, which was about a tenth of the CPU time of a
one-page invoice, and the copies of the font files another few percent.

Two changes:

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

Without ``libharfbuzz-subset`` >= 6.0 these two are left out.

2. A shortcut for the common computed values.

``ComputedStyle.__missing__`` computes one CSS property of one element the first time
it is read: ~7,000 times for a one-page invoice, about 15% of its render time. Most of
those properties are set by no rule for that element, so their value is simply the
parent's (inherited properties) or the initial value. `_computed_value` answers those
directly and hands everything else (declared values, ``var()``, math functions,
logical properties, text decorations, ``page``, ``position``/``float``/``display``)
to WeasyPrint's own method.

3. One Pango font description per font.

Every text fragment WeasyPrint measures gets a new Pango layout with a font description
built from the element's style (``get_font_description``), ~250 times per invoice for
a dozen distinct fonts. Pango copies the description into the layout and only reads
it, so `_font_description` keeps one per distinct set of font properties.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import weasyprint
from weasyprint.css import ComputedStyle
from weasyprint.css.computed_values import COMPUTER_FUNCTIONS, PHYSICAL_FUNCTIONS
from weasyprint.css.properties import INHERITED, INITIAL_NOT_COMPUTED, INITIAL_VALUES
from weasyprint.pdf import fonts as pdf_fonts
from weasyprint.text import line_break
from weasyprint.text.ffi import ffi, harfbuzz, harfbuzz_subset

#: The WeasyPrint major version whose internals these changes were written against.
SUPPORTED_MAJOR = "70"

_lock = threading.RLock()
_installed = False


@dataclass(eq=False)
class _Face:
    """What is kept for one face Pango opened.

    Attributes:
      pinned: a reference to the face, so its address is not reused while kept.
      prepared: the face after ``hb_subset_preprocess``, once made.
      data: the bytes of the whole font file, once read.
      subsets: subsets made from the face so far.
    """

    pinned: Any
    prepared: Any = None
    data: bytes | None = None
    subsets: int = 0


#: face address -> `_Face`, least recently used first (see `_entry`).
_faces: OrderedDict[int, _Face] = OrderedDict()
#: Faces kept: an `InvoiceRenderer` uses five (its fonts live as long as it does); a new
#: `FontConfiguration` per document (plain ``HTML().write_pdf()``) opens new faces each
#: time, which must not pile up.
MAX_FACES = 8
#: A face is prepared for its second subset: preparing costs several subsets' worth, so
#: a face used once (a throw-away `FontConfiguration`) is subset the stock way.
PREPARE_AT_USE = 2
#: WeasyPrint's originals, kept for `uninstall` and called by the replacements.
_stock: dict[str, Callable[..., Any]] = {}


def _address(face: Any) -> int:
    return int(ffi.cast("uintptr_t", face))


def _preprocess_function() -> Callable[[int], int] | None:
    """``hb_subset_preprocess`` of the HarfBuzz subset library WeasyPrint uses, or None."""
    if not harfbuzz_subset or not harfbuzz.hb_version_atleast(6, 0, 0):
        return None
    for name in ("libharfbuzz-subset.so.0", ctypes.util.find_library("harfbuzz-subset")):
        if not name:
            continue
        try:
            function = ctypes.CDLL(name).hb_subset_preprocess
        except (OSError, AttributeError):
            continue
        function.restype = ctypes.c_void_p
        function.argtypes = [ctypes.c_void_p]
        return function
    return None


def _entry(face: Any) -> _Face:
    """The cache entry of a face Pango opened, created (and the face pinned) once.

    Pinning (a reference held by the entry) keeps the face alive, so its address cannot
    be reused by another face while the entry exists; an evicted entry drops the pin.
    """
    key = _address(face)
    entry = _faces.get(key)
    if entry is None:
        entry = _faces[key] = _Face(
            ffi.gc(harfbuzz.hb_face_reference(face), harfbuzz.hb_face_destroy))
        while len(_faces) > MAX_FACES:
            _faces.popitem(last=False)
    else:
        _faces.move_to_end(key)
    return entry


def install() -> bool:
    """Apply the changes to this process; True if they are in place.

    Idempotent. Safe to call from several renderers; the font caches live as long as
    the process (a handful of bundled fonts: ~35 MB with their prepared faces).
    """
    global _installed
    with _lock:
        if _installed:
            return True
        if weasyprint.__version__.split(".")[0] != SUPPORTED_MAJOR:
            return False
        _stock["missing"] = ComputedStyle.__missing__
        ComputedStyle.__missing__ = _computed_value
        _stock["description"] = line_break.get_font_description
        line_break.get_font_description = _font_description
        _install_fonts()
        _installed = True
        return True


def _install_fonts() -> None:
    """Prepared faces for subsetting, font bytes read once (see the module docstring)."""
    preprocess = _preprocess_function()
    if preprocess is None:
        return
    _stock["subset"] = stock_subset = pdf_fonts.Font._harfbuzz_subset
    _stock["face"] = stock_face = pdf_fonts.get_pango_font_hb_face
    _stock["data"] = stock_data = pdf_fonts.get_hb_object_data

    def pango_font_face(pango_font: Any) -> Any:
        face = stock_face(pango_font)
        with _lock:
            _entry(face)
        return face

    def face_data(hb_object: Any, ot_color: str | None = None, glyph: Any = None) -> Any:
        if ot_color is not None:
            return stock_data(hb_object, ot_color, glyph)
        with _lock:
            entry = _faces.get(_address(hb_object))
            if entry is None:  # a subset face (or an evicted one): never cached
                return stock_data(hb_object)
            if entry.data is None:
                if entry.subsets < 1:  # not yet used for a document: maybe a throw-away face
                    return stock_data(hb_object)
                entry.data = stock_data(hb_object)
            return entry.data

    def subset_from_prepared(font: Any, to_unicode: Any, hinting: Any) -> Any:
        original = font.hb_face
        with _lock:
            entry = _entry(original)
            entry.subsets += 1
            if entry.prepared is None:
                prepared = (preprocess(_address(original))
                            if entry.subsets >= PREPARE_AT_USE else 0)
                if not prepared:
                    return stock_subset(font, to_unicode, hinting)
                entry.prepared = ffi.gc(ffi.cast("hb_face_t *", prepared),
                                        harfbuzz.hb_face_destroy)
            prepared_face = entry.prepared
        font.hb_face = prepared_face
        try:
            return stock_subset(font, to_unicode, hinting)
        finally:
            font.hb_face = original

    pdf_fonts.get_pango_font_hb_face = pango_font_face
    pdf_fonts.get_hb_object_data = face_data
    pdf_fonts.Font._harfbuzz_subset = subset_from_prepared


def uninstall() -> None:
    """Back to stock WeasyPrint (the tests compare both)."""
    global _installed
    with _lock:
        if not _installed:
            return
        ComputedStyle.__missing__ = _stock.pop("missing")
        line_break.get_font_description = _stock.pop("description")
        if "subset" in _stock:
            pdf_fonts.Font._harfbuzz_subset = _stock.pop("subset")
            pdf_fonts.get_pango_font_hb_face = _stock.pop("face")
            pdf_fonts.get_hb_object_data = _stock.pop("data")
        _installed = False


#: Properties `_computed_value` leaves to WeasyPrint: logical/physical pairs, and those
#: whose computation reads or records other properties.
_NOT_SHORTCUT = frozenset(PHYSICAL_FUNCTIONS) | {"page", "position", "float", "display"}


def _computed_value(style: Any, key: str) -> Any:
    """``ComputedStyle.__missing__``, answering undeclared properties directly.

    Same result as WeasyPrint 70's method for a property no rule declares for the
    element: the parent's computed value if it is inherited (custom properties, named
    ``__*``, are), else the initial value, computed when WeasyPrint's table says the
    initial value needs computing. Initial and inherited values hold no ``var()`` or
    math function, so the rest of the stock method has nothing to do for them.
    """
    if key in _NOT_SHORTCUT or key in style.cascaded or key[:16] == "text_decoration_":
        return _stock["missing"](style, key)
    parent = style.parent_style
    if parent is not None and (key in INHERITED or key[:2] == "__"):
        value = style[key] = parent[key]
        return value
    if key[:2] == "__":
        value = style[key] = []
        return value
    value = INITIAL_VALUES[key]
    if key in INITIAL_NOT_COMPUTED and key in COMPUTER_FUNCTIONS:
        value = COMPUTER_FUNCTIONS[key](style, key, value)
    style[key] = value
    return value


#: font properties -> Pango font description (a dozen entries for the invoice stylesheet)
_descriptions: dict[tuple[Any, ...], Any] = {}


def _font_description(style: Any) -> Any:
    """``get_font_description``, one description per distinct set of font properties.

    The key holds every style property WeasyPrint 70 reads to build the description.
    """
    key = (tuple(style["font_family"]), style["font_style"], style["font_stretch"],
           style["font_weight"], style["font_size"], style["font_variant_caps"],
           str(style["font_variation_settings"]))
    description = _descriptions.get(key)
    if description is None:
        description = _descriptions[key] = _stock["description"](style)
    return description
