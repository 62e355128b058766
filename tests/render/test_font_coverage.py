"""What the bundled fonts can print (`render/coverage.py`), read by HarfBuzz, is exactly
what fontTools reads from the same character maps."""

from __future__ import annotations

import pytest
from fontTools.ttLib import TTFont

from invoicing.render.coverage import REGULAR_FACES, covered, mapped_code_points
from invoicing.render.pdf import DEFAULT_TEMPLATES_DIR


@pytest.mark.parametrize("face", REGULAR_FACES)
def test_harfbuzz_reads_the_character_map_fonttools_reads(face: str) -> None:
    path = DEFAULT_TEMPLATES_DIR / "fonts" / face
    font = TTFont(path, lazy=True)
    try:
        expected = sorted(font.getBestCmap())
    finally:
        font.close()
    assert mapped_code_points(path) == expected


def test_the_covered_characters_are_every_face_together() -> None:
    assert len(covered()) == 39_503
    assert {"A", "é", "Ж", "한", "汉", "€", "₩", "¥"} <= covered()
    assert "ไ" not in covered() and "ज" not in covered()
