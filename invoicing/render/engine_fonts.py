"""Change 1 of `render/engine.py`: font subsets made from prepared HarfBuzz faces.

See the module docstring of `render/engine.py` for what it does and why; this module
holds the face cache and the replacement functions, and the guards (`_private`,
`_require`) every change uses to reach WeasyPrint's internals only inside `install`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The one log of the render changes (WARNING lines say which change is off and why).
log = logging.getLogger("invoicing.render.engine")
#: Guards `install` and the caches of every change.
_lock = threading.RLock()

#: Faces kept: an `InvoiceRenderer` uses five (its fonts live as long as it does); a new
#: `FontConfiguration` per document (plain ``HTML().write_pdf()``) opens new faces each
#: time, which must not pile up.
MAX_FACES = 8
#: A face is prepared for its second subset: preparing costs several subsets' worth, so
#: a face used once (a throw-away `FontConfiguration`) is subset the stock way.
PREPARE_AT_USE = 2


def _private(module: str, *names: str) -> list[Any]:
    """The named attributes of a WeasyPrint module; ImportError/AttributeError if absent."""
    imported = importlib.import_module(module)
    values = []
    for name in names:
        if not hasattr(imported, name):
            raise AttributeError(f"{module}.{name} is missing")
        values.append(getattr(imported, name))
    return values


def _require(owner: Any, *names: str) -> None:
    for name in names:
        if not callable(getattr(owner, name, None)):
            raise AttributeError(f"{getattr(owner, '__name__', owner)}.{name} is missing")


# --- 1. fonts --------------------------------------------------------------------------


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


#: face address -> `_Face`, least recently used first (see `_FontCache.entry`).
_faces: OrderedDict[int, _Face] = OrderedDict()


@dataclass(frozen=True)
class _HarfBuzz:
    """The WeasyPrint 70 handles on HarfBuzz the font change needs (``weasyprint.text.ffi``)."""

    ffi: Any
    harfbuzz: Any
    preprocess: Callable[[int], int]

    def address(self, face: Any) -> int:
        return int(self.ffi.cast("uintptr_t", face))

    def entry(self, face: Any) -> _Face:
        """The cache entry of a face Pango opened, created (and the face pinned) once.

        Pinning (a reference held by the entry) keeps the face alive, so its address
        cannot be reused by another face while the entry exists; an evicted entry drops
        the pin.
        """
        key = self.address(face)
        entry = _faces.get(key)
        if entry is None:
            entry = _faces[key] = _Face(self.ffi.gc(
                self.harfbuzz.hb_face_reference(face), self.harfbuzz.hb_face_destroy))
            while len(_faces) > MAX_FACES:
                _faces.popitem(last=False)
        else:
            _faces.move_to_end(key)
        return entry

    def prepare(self, face: Any) -> Any:
        """``face`` preprocessed for subsetting, or None if HarfBuzz could not."""
        prepared = self.preprocess(self.address(face))
        if not prepared:
            return None
        return self.ffi.gc(self.ffi.cast("hb_face_t *", prepared),
                           self.harfbuzz.hb_face_destroy)


def _preprocess_function(harfbuzz: Any, harfbuzz_subset: Any) -> Callable[[int], int] | None:
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


def _font_patches() -> list[tuple[Any, str, Any]]:
    """The three font functions replaced, or none (warned) without ``hb_subset_preprocess``."""
    (pdf_fonts,) = _private("weasyprint.pdf", "fonts")
    ffi, harfbuzz, harfbuzz_subset = _private(
        "weasyprint.text.ffi", "ffi", "harfbuzz", "harfbuzz_subset")
    _require(pdf_fonts, "get_pango_font_hb_face", "get_hb_object_data")
    _require(pdf_fonts.Font, "_harfbuzz_subset")
    _require(harfbuzz, "hb_face_reference", "hb_face_destroy", "hb_version_atleast")
    preprocess = _preprocess_function(harfbuzz, harfbuzz_subset)
    if preprocess is None:
        log.warning("font subsets from prepared faces off: no libharfbuzz-subset >= 6.0 "
                    "with hb_subset_preprocess (same PDFs, slower)")
        return []
    face_of, face_data, subset = _font_functions(
        _HarfBuzz(ffi, harfbuzz, preprocess), pdf_fonts.get_pango_font_hb_face,
        pdf_fonts.get_hb_object_data, pdf_fonts.Font._harfbuzz_subset)
    return [(pdf_fonts, "get_pango_font_hb_face", face_of),
            (pdf_fonts, "get_hb_object_data", face_data),
            (pdf_fonts.Font, "_harfbuzz_subset", subset)]


def _font_functions(
    hb: _HarfBuzz, stock_face: Callable[..., Any], stock_data: Callable[..., Any],
    stock_subset: Callable[..., Any],
) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """Replacements for ``get_pango_font_hb_face``, ``get_hb_object_data`` (both as
    ``weasyprint.pdf.fonts`` sees them) and ``Font._harfbuzz_subset``."""

    def pango_font_face(pango_font: Any) -> Any:
        face = stock_face(pango_font)
        with _lock:
            hb.entry(face)
        return face

    def face_data(hb_object: Any, ot_color: str | None = None, glyph: Any = None) -> Any:
        if ot_color is not None:
            return stock_data(hb_object, ot_color, glyph)
        with _lock:
            entry = _faces.get(hb.address(hb_object))
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
            entry = hb.entry(original)
            entry.subsets += 1
            if entry.prepared is None:
                if entry.subsets >= PREPARE_AT_USE:
                    entry.prepared = hb.prepare(original)
                if entry.prepared is None:
                    return stock_subset(font, to_unicode, hinting)
            prepared_face = entry.prepared
        font.hb_face = prepared_face
        try:
            return stock_subset(font, to_unicode, hinting)
        finally:
            font.hb_face = original

    return pango_font_face, face_data, subset_from_prepared


