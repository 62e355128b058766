"""Where the package's own data lives: ``templates/`` beside the package (the invoice
template and stylesheet, the bundled fonts, the default seller file, the e-mail texts).

A plain constant in the lowest layer, so that reading it imports nothing heavy (the
renderer's module imports WeasyPrint, almost a second).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

TEMPLATES_DIR: Final = Path(__file__).resolve().parents[2] / "templates"
DEFAULT_SELLER_FILE: Final = TEMPLATES_DIR / "seller.toml"
