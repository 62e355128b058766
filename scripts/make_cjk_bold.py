"""Make templates/fonts/InvoiceHans-Bold.otf: the bold face of Chinese invoices.

    python scripts/make_cjk_bold.py NotoSansCJK-Bold.ttc templates/fonts/InvoiceHans-Bold.otf

WenQuanYi Micro Hei, the regular face of Chinese invoices, has no bold, and a bold
synthesised by Pango is barely visible in Han characters. Noto Sans CJK Bold (SIL OFL
1.1, Debian package fonts-noto-cjk, file
/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc) has a real one, but its collection
is ~20 MB. This script takes its Simplified Chinese face ("Noto Sans CJK SC") and keeps
only what invoices print in bold: Basic Latin and Latin-1, general punctuation, currency
signs, CJK punctuation, full-width forms and every character of GB 2312 (the 6,763 hanzi
in everyday use, with their symbols). OpenType layout (kerning, vertical and full-width
alternates) is kept for those glyphs, and the glyphs are renumbered compactly, so the
highest glyph id an invoice uses stays low (see fonts/README.md, "Glyph order").

The face is renamed "Invoice Hans" (name IDs 1-6 and 16-17): the OFL lets a modified
version be distributed under another name, and the PDFs name fonts after the CSS family.
The output is byte-reproducible (``head.modified`` is kept from the original).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

FACE_FAMILY = "Noto Sans CJK SC"
NEW_FAMILY = "Invoice Hans"
RANGES = [
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x00FF),  # Latin-1
    (0x2000, 0x206F),  # general punctuation
    (0x20A0, 0x20CF),  # currency signs
    (0x2100, 0x215F),  # letterlike symbols, number forms
    (0x2190, 0x21FF),  # arrows
    (0x2200, 0x22FF),  # mathematical operators (× ÷ −)
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0xFF00, 0xFFEF),  # half-width and full-width forms
]


def gb2312() -> set[int]:
    """Every character of GB 2312 (rows 0xA1-0xF7, cells 0xA1-0xFE)."""
    chars = set()
    for row in range(0xA1, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                chars.add(ord(bytes([row, cell]).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return chars


def sc_face(collection: Path) -> TTFont:
    for font in TTCollection(str(collection), recalcTimestamp=False).fonts:
        if font["name"].getDebugName(1) == FACE_FAMILY:
            return font
    raise SystemExit(f"{collection}: no face named {FACE_FAMILY!r}")


def rename(font: TTFont) -> None:
    name = font["name"]
    version = name.getDebugName(5) or ""
    new = {1: NEW_FAMILY, 2: "Bold", 3: f"{NEW_FAMILY} Bold; subset of Noto Sans CJK SC Bold",
           4: f"{NEW_FAMILY} Bold", 5: f"{version}; subset (scripts/make_cjk_bold.py)",
           6: "InvoiceHans-Bold", 16: NEW_FAMILY, 17: "Bold"}
    for record in list(name.names):
        if record.nameID in new:
            record.string = new[record.nameID]
    if "CFF " in font:
        cff = font["CFF "].cff
        cff.fontNames = ["InvoiceHans-Bold"]
        top = cff.topDictIndex[0]
        top.FullName, top.FamilyName = f"{NEW_FAMILY} Bold", NEW_FAMILY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collection", type=Path, help="NotoSansCJK-Bold.ttc")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    font = sc_face(args.collection)
    unicodes = gb2312() | {c for lo, hi in RANGES for c in range(lo, hi + 1)}
    options = subset.Options()
    options.layout_features = ["kern", "palt", "halt", "vert", "vrt2", "fwid", "hwid"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.recalc_timestamp = False
    options.desubroutinize = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=unicodes)
    subsetter.subset(font)
    rename(font)
    font.save(str(args.out))
    print(f"wrote {args.out}: {len(font.getGlyphOrder())} glyphs, "
          f"{args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
