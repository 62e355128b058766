"""Renumber the glyphs of the bundled fonts so that the characters invoices use come first.

    python scripts/reorder_fonts.py SOURCE_DIR templates/fonts

WeasyPrint embeds a subset of every font a PDF uses, and it keeps the original glyph
ids (HarfBuzz ``RETAIN_GIDS``): the subset's ``loca``, ``hmtx``, ``vmtx`` and ``post``
tables still have one entry per glyph id up to the highest id used. In the original
WenQuanYi Micro Hei the full-width colon "：" is glyph 34,443, so every Chinese invoice
carried two ~360 KB font subsets (regular and synthetic bold) that HarfBuzz had to build
and zlib to compress: about a third of the render time of a Chinese invoice.

This script changes nothing but the order of the glyphs (and drops Nanum Gothic's
``TSI0``-``TSI5`` tables, Visual TrueType hinting *sources* that no renderer reads and
HarfBuzz already leaves out of every subset), and marks the files as modified: a note in
the version string, and Nanum Gothic renamed "Invoice Hangul" because its licence (SIL
OFL 1.1) reserves the name "NanumGothic" for the original. Outlines, metrics, ``cmap`` coverage,
kerning and OpenType layout are the same, so every character the original files
rendered is still rendered, identically. New order, most used first:

1. ``.notdef``; Latin, Latin-1 and Latin Extended letters, combining marks, general
   punctuation, currency signs (``$ ¥ ₩``), CJK punctuation and full-width forms;
2. the script the font is the primary face for, most frequent characters first:
   Hangul syllables of KS X 1001 (the 2,350 in everyday use), then the other 8,822;
   hanzi in GB 2312 order (level 1: the 3,755 most frequent, then level 2), then the
   rest of the CJK ideographs;
3. every other mapped character by code point, then glyphs no character maps to in
   their original order.

A glyph that only a GSUB substitution produces (the "fi" ligature, an alternate) is
placed right after the last of the glyphs it is made from.

Components of composite glyphs are placed right after the first glyph that uses them,
and glyphs of a one-byte (format 0) ``cmap`` subtable stay below 256.
The result is byte-reproducible (no timestamps are touched: ``head.modified`` is kept),
and running the script on its own output gives the same bytes. Needs fontTools.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fontTools.pens.recordingPen import DecomposingRecordingPen
from fontTools.ttLib import TTFont
from fontTools.ttLib import reorderGlyphs as _reorder_module
from fontTools.ttLib.reorderGlyphs import reorderGlyphs

#: Font file -> the ranking of its primary script (see `_rank_*`).
FONTS: dict[str, str] = {
    "DejaVuSans.ttf": "latin",
    "DejaVuSans-Bold.ttf": "latin",
    "NanumGothic.ttf": "hangul",
    "NanumGothicBold.ttf": "hangul",
    "WenQuanYiMicroHei.ttf": "hans",
}
#: Tables no renderer uses (VTT hinting sources); HarfBuzz drops them from subsets too.
DROP_TABLES = ("TSI0", "TSI1", "TSI2", "TSI3", "TSI5")
#: New (family, style) names for fonts whose licence reserves their name for the original
#: version: the SIL Open Font License 1.1 (clause 3) forbids a modified Nanum Gothic to be
#: called "NanumGothic". The name is the renderer's private CSS family anyway; PDFs name
#: fonts after the CSS family, so the output does not depend on it.
RENAMES: dict[str, tuple[str, str]] = {
    "NanumGothic.ttf": ("Invoice Hangul", "Regular"),
    "NanumGothicBold.ttf": ("Invoice Hangul", "Bold"),
}
#: Appended to the version string (name ID 5) of every file: the notice that the file
#: was changed (Apache-2.0 section 4(b) for WenQuanYi; good practice for the others).
MODIFIED_NOTE = "glyphs renumbered by invoicing scripts/reorder_fonts.py"
#: Name IDs that carry the font's name: family, style, unique id, full name, PostScript
#: name, typographic family and style, compatible full name, CID findfont name.
_NAME_IDS = (1, 2, 3, 4, 6, 16, 17, 18, 20)


def _mark_modified(font: TTFont, name: str) -> None:
    """Rename per `RENAMES` and add `MODIFIED_NOTE` to the version string (idempotent)."""
    table = font["name"]
    if name in RENAMES:
        family, style = RENAMES[name]
        full = family if style == "Regular" else f"{family} {style}"
        postscript = f"{family.replace(' ', '')}-{style}"
        table.names = [record for record in table.names if record.nameID not in _NAME_IDS]
        for name_id, value in ((1, family), (2, style), (3, f"{postscript};reordered"),
                               (4, full), (6, postscript)):
            table.setName(value, name_id, 3, 1, 0x409)
            table.setName(value, name_id, 1, 0, 0)
    for record in table.names:
        if record.nameID == 5:
            version = record.toUnicode()
            if MODIFIED_NOTE not in version:
                record.string = f"{version}; {MODIFIED_NOTE}"


def _skip_absent_coverage() -> None:
    """Let fontTools' reorderGlyphs pass over optional coverage tables that are absent.

    DejaVu Sans's ``MATH`` table has no ``ExtendedShapeCoverage`` (it is optional) and
    fontTools 4.68 dereferences it unconditionally.
    """
    rule = _reorder_module.ReorderCoverage
    apply = rule.apply
    if getattr(apply, "skips_absent", False):
        return

    def apply_if_present(self: object, font: TTFont, value: object) -> None:
        coverage = getattr(value, self.coverage_attr, None)  # type: ignore[attr-defined]
        if coverage is not None:
            apply(self, font, value)  # type: ignore[arg-type]

    apply_if_present.skips_absent = True  # type: ignore[attr-defined]
    rule.apply = apply_if_present  # type: ignore[method-assign]


_COMMON_RANGES = (
    (0x0000, 0x024F),  # Basic Latin .. Latin Extended-B
    (0x0300, 0x036F),  # combining diacritical marks (components of accented letters)
    (0x2000, 0x20CF),  # general punctuation, super/subscripts, currency symbols
    (0x2100, 0x215F),  # letterlike symbols, number forms
    (0x2190, 0x21FF),  # arrows
    (0x2200, 0x22FF),  # mathematical operators
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0xFF00, 0xFFEF),  # half-width and full-width forms
)
_NOT_COMMON = 9
_UNREACHED = 99


def _common(cp: int) -> int | None:
    for tier, (low, high) in enumerate(_COMMON_RANGES):
        if low <= cp <= high:
            return tier
    return None


def _legacy_rank(char: str, codec: str) -> int | None:
    """Position of ``char`` in a legacy double-byte charset (frequency order), or None."""
    try:
        encoded = char.encode(codec)
    except UnicodeEncodeError:
        return None
    return encoded[0] * 256 + encoded[1] if len(encoded) == 2 else None


def _rank_latin(cp: int) -> tuple[int, int]:
    tier = _common(cp)
    return (0, tier * 0x110000 + cp) if tier is not None else (_NOT_COMMON, cp)


def _rank_hangul(cp: int) -> tuple[int, int]:
    tier = _common(cp)
    if tier is not None:
        return (0, tier * 0x110000 + cp)
    if 0xAC00 <= cp <= 0xD7A3:
        ks = _legacy_rank(chr(cp), "euc_kr")
        return (1, ks) if ks is not None else (2, cp)
    if 0x3130 <= cp <= 0x318F:  # compatibility jamo
        return (3, cp)
    return (_NOT_COMMON, cp)


def _rank_hans(cp: int) -> tuple[int, int]:
    tier = _common(cp)
    if tier is not None:
        return (0, tier * 0x110000 + cp)
    if 0x3400 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF:
        gb = _legacy_rank(chr(cp), "gb2312")
        return (1, gb) if gb is not None else (2, cp)
    return (_NOT_COMMON, cp)


RANKS: dict[str, Callable[[int], tuple[int, int]]] = {
    "latin": _rank_latin, "hangul": _rank_hangul, "hans": _rank_hans,
}


def _substitutions(font: TTFont) -> list[tuple[list[str], list[str]]]:
    """(input glyphs, output glyphs) of every GSUB substitution, context ignored."""
    if "GSUB" not in font or font["GSUB"].table.LookupList is None:
        return []
    rules: list[tuple[list[str], list[str]]] = []
    for lookup in font["GSUB"].table.LookupList.Lookup:
        for subtable in lookup.SubTable:
            kind = lookup.LookupType
            if kind == 7:  # extension: the real subtable is wrapped
                kind, subtable = subtable.ExtensionLookupType, subtable.ExtSubTable
            if kind == 1:
                rules += [([a], [b]) for a, b in subtable.mapping.items()]
            elif kind == 2:
                rules += [([a], list(b)) for a, b in subtable.mapping.items()]
            elif kind == 3:
                rules += [([a], list(b)) for a, b in subtable.alternates.items()]
            elif kind == 4:
                rules += [([first, *lig.Component], [lig.LigGlyph])
                          for first, ligs in subtable.ligatures.items() for lig in ligs]
            elif kind == 8:
                rules += [([a], [b]) for a, b in
                          zip(subtable.Coverage.glyphs, subtable.Substitute, strict=True)]
    return rules


def new_glyph_order(font: TTFont, rank: Callable[[int], tuple[int, int]]) -> list[str]:
    """The font's glyph names, most used first (see the module docstring)."""
    old_order: list[str] = font.getGlyphOrder()
    old_index = {name: i for i, name in enumerate(old_order)}
    first_cp: dict[str, int] = {}
    for cp, name in sorted(font.getBestCmap().items()):
        first_cp.setdefault(name, cp)
    # Sort key: mapped glyphs by their character's rank; a glyph that only a GSUB
    # substitution reaches (the "fi" ligature) right after the last of its inputs.
    key: dict[str, tuple[int, int, int, int]] = {
        name: (*rank(cp), 0, old_index[name]) for name, cp in first_cp.items()
    }
    rules = _substitutions(font)
    for depth in range(1, 4):
        for inputs, outputs in rules:
            if all(name in key for name in inputs):
                tier, value, _, _ = max(key[name] for name in inputs)
                for name in outputs:
                    derived = (tier, value, depth, old_index[name])
                    if name not in key or derived < key[name]:
                        key[name] = derived
    ranked = sorted(old_order, key=lambda name: key.get(name, (_UNREACHED, 0, 0, old_index[name])))
    glyf = font.get("glyf")

    order: list[str] = []
    seen: set[str] = set()

    def add(names: Iterable[str]) -> None:
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            order.append(name)
            if glyf is not None:
                glyph = glyf[name]
                if glyph.isComposite():
                    add(component.glyphName for component in glyph.components)

    add([old_order[0]])  # .notdef stays glyph 0
    # A format 0 cmap subtable (Macintosh, one byte per glyph id) needs glyph ids < 256.
    for subtable in font["cmap"].tables:
        if subtable.format == 0:
            add(sorted(set(subtable.cmap.values()), key=old_index.__getitem__))
    add(ranked)
    assert sorted(order) == sorted(old_order)
    return order


def reorder(source: Path, target: Path, rank: Callable[[int], tuple[int, int]]) -> None:
    font = TTFont(source, recalcTimestamp=False, recalcBBoxes=False)
    for tag in DROP_TABLES:
        if tag in font:
            del font[tag]
    _mark_modified(font, target.name)
    _skip_absent_coverage()
    font.ensureDecompiled()  # every table in memory, glyphs referenced by name
    # fontTools re-sorts coverage tables (and their parallel arrays) for the new ids.
    reorderGlyphs(font, new_glyph_order(font, rank))
    tmp = target.with_suffix(".tmp")
    font.save(tmp, reorderTables=True)
    tmp.replace(target)


def same_characters(source: Path, target: Path) -> list[str]:
    """Differences between two fonts in what they draw: every ``cmap`` subtable must map
    the same characters to glyphs with the same outline (components resolved), advance
    and side bearing, and the kerning pairs must be the same. Empty list: equivalent."""
    a, b = TTFont(source), TTFont(target)
    glyphs_a, glyphs_b = a.getGlyphSet(), b.getGlyphSet()
    problems: list[str] = []

    def drawing(font: TTFont, glyph_set: Any, name: str) -> tuple[object, ...]:
        pen = DecomposingRecordingPen(glyph_set)
        glyph_set[name].draw(pen)
        metrics = tuple(font[tag][name] for tag in ("hmtx", "vmtx") if tag in font)
        return (pen.value, metrics)

    if len(a["cmap"].tables) != len(b["cmap"].tables):
        problems.append("different number of cmap subtables")
    for sub_a, sub_b in zip(a["cmap"].tables, b["cmap"].tables, strict=False):
        where = f"cmap ({sub_a.platformID}, {sub_a.platEncID}, format {sub_a.format})"
        if sub_a.cmap.keys() != sub_b.cmap.keys():
            problems.append(f"{where}: different characters")
            continue
        pairs = {(sub_a.cmap[cp], sub_b.cmap[cp]) for cp in sub_a.cmap}
        differing = [pair for pair in pairs
                     if drawing(a, glyphs_a, pair[0]) != drawing(b, glyphs_b, pair[1])]
        if differing:
            problems.append(f"{where}: {len(differing)} glyphs drawn differently")
    if "kern" in a:
        to_b = {name_a: name_b for sub_a, sub_b in zip(a["cmap"].tables, b["cmap"].tables,
                                                        strict=False)
                for cp, name_a in sub_a.cmap.items() if (name_b := sub_b.cmap.get(cp))}
        kern_a = {(to_b.get(left), to_b.get(right)): value
                  for (left, right), value in a["kern"].kernTables[0].kernTable.items()}
        if kern_a != dict(b["kern"].kernTables[0].kernTable):
            problems.append("kerning pairs differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder with the original font files")
    parser.add_argument("target", type=Path, help="folder to write the reordered files to")
    parser.add_argument("--check", action="store_true",
                        help="only compare TARGET with SOURCE (same characters, outlines, "
                             "metrics and kerning); exit 1 if they differ")
    args = parser.parse_args(argv)
    # DejaVu's GSUB has ranges out of order; fontTools says so on reading and sorts them.
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    failed = False
    if not args.check:
        args.target.mkdir(parents=True, exist_ok=True)
    for name, script in FONTS.items():
        if args.check:
            problems = same_characters(args.source / name, args.target / name)
            print(f"{name}: " + ("; ".join(problems) if problems else "same drawing"))
            failed |= bool(problems)
            continue
        reorder(args.source / name, args.target / name, RANKS[script])
        digest = hashlib.sha256((args.target / name).read_bytes()).hexdigest()
        print(f"{name}: {(args.target / name).stat().st_size:,} bytes, sha256 {digest}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
