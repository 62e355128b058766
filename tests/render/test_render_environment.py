"""The renderer environment: what the manifest records and what a cluster worker must match."""

from __future__ import annotations

import hashlib
from pathlib import Path

from invoicing.render.environment import KEYS, differences, fingerprint, folder_digest


def test_the_font_digest_follows_every_byte_and_name(tmp_path: Path) -> None:
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / "A.ttf").write_bytes(b"glyphs")
    (tmp_path / "invoice.css").write_text("body {}")
    expected = hashlib.sha256(
        f"A.ttf\t{hashlib.sha256(b'glyphs').hexdigest()}\n".encode()).hexdigest()
    assert folder_digest(fonts) == expected
    assert folder_digest(tmp_path, skip=("fonts",)) == hashlib.sha256(
        f"invoice.css\t{hashlib.sha256(b'body {}').hexdigest()}\n".encode()).hexdigest()
    (fonts / "A.ttf").write_bytes(b"glyphz")
    assert folder_digest(fonts) != expected
    (fonts / "A.ttf").write_bytes(b"glyphs")
    (fonts / "A.ttf").rename(fonts / "B.ttf")
    assert folder_digest(fonts) != expected


def test_differences_name_each_fact_that_differs() -> None:
    here: dict[str, str | bool] = {key: "same" for key in KEYS}
    here["fonts_sha256"] = "a" * 64
    there = dict(here, weasyprint="71.0", fonts_sha256="b" * 64)
    assert differences(here, here) == []
    assert differences(here, there) == [
        "weasyprint same here, 71.0 there",
        f"fonts_sha256 {'a' * 12}… here, {'b' * 12}… there",
    ]
    assert fingerprint(here) != fingerprint(there)
    assert fingerprint(here) == fingerprint(dict(reversed(list(here.items()))))
