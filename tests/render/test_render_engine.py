"""render_engine: guarded changes inside WeasyPrint 70.0, or stock WeasyPrint with a warning.

Every fallback must be loud (one WARNING line), leave nothing patched, and still render
the very same PDF bytes. The font cache paths (a face prepared at its second subset,
faces evicted beyond `MAX_FACES`) run here on real renders.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import weasyprint
import weasyprint.html
from weasyprint.css import ComputedStyle
from weasyprint.pdf import fonts as pdf_fonts

from invoicing.render import engine as render_engine
from invoicing.render import engine_fonts
from invoicing.render.pdf import InvoiceRenderer
from tests.documents_factory import make_document

STOCK_MISSING = ComputedStyle.__missing__
PACKAGE = Path(__file__).resolve().parents[2] / "invoicing"

#: What invoicing/ may import from WeasyPrint and pydyf at module level: their documented
#: public API (module -> names; "*" for ``import module``).
PUBLIC_IMPORTS = {
    "weasyprint": {"*", "CSS", "HTML", "Attachment"},
    "weasyprint.text.fonts": {"FontConfiguration"},
    "weasyprint.urls": {"URLFetcher", "URLFetcherResponse", "FatalURLFetchingError"},
    "pydyf": {"*"},
}


@pytest.fixture(scope="module")
def renderer() -> InvoiceRenderer:
    return InvoiceRenderer()


@pytest.fixture(scope="module")
def stock_pdfs(renderer: InvoiceRenderer) -> dict[str, bytes]:
    """One invoice per locale rendered on stock WeasyPrint (no change installed)."""
    render_engine.uninstall()
    try:
        return {loc: renderer.render_pdf(make_document(loc))
                for loc in ("en_US", "ko_KR", "zh_CN")}
    finally:
        assert render_engine.install()


@pytest.fixture
def fresh_engine() -> Iterator[None]:
    """Start uninstalled (empty face cache); end installed, as the other tests expect."""
    render_engine.uninstall()
    yield
    render_engine.uninstall()
    assert render_engine.install()


def assert_stock(caplog: pytest.LogCaptureFixture, reason: str) -> None:
    """Nothing patched, and exactly one warning saying why."""
    assert ComputedStyle.__missing__ is STOCK_MISSING
    assert render_engine._page_class is None
    assert not render_engine._patched
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert message.startswith("render shortcuts off, rendering with stock WeasyPrint")
    assert reason in message


def _module_level_imports(path: Path) -> Iterator[tuple[str, str]]:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            yield from ((alias.name, "*") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield from ((node.module, alias.name) for alias in node.names)


def test_no_private_weasyprint_name_is_imported_at_module_level() -> None:
    """Private names are imported inside `render_engine.install` only, so a WeasyPrint
    that renamed one cannot fail an import (after the month was priced)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for module, name in _module_level_imports(path):
            if module.split(".")[0] in ("weasyprint", "pydyf") and (
                    name not in PUBLIC_IMPORTS.get(module, set())):
                found.append(f"{path.name}: {module}.{name}")
        text = path.read_text(encoding="utf-8")
        # pydyf's private names (`pydyf._x`), not its public dunders (`__version__`)
        found += [f"{path.name}: pydyf._" for _ in re.findall(r"pydyf\._(?!_)", text)]
    assert found == []
    engine_imports = [module for module, _ in
                      _module_level_imports(PACKAGE / "render" / "engine.py")
                      if module.split(".")[0] in ("weasyprint", "pydyf", "cssselect2")]
    assert engine_imports == ["weasyprint"]


def test_install_patches_and_uninstall_restores(fresh_engine: None) -> None:
    stock_subset = pdf_fonts.Font._harfbuzz_subset
    assert render_engine.install()
    assert render_engine.install()  # idempotent
    assert ComputedStyle.__missing__ is not STOCK_MISSING
    assert pdf_fonts.Font._harfbuzz_subset is not stock_subset
    assert render_engine._page_class is not None
    render_engine.uninstall()
    assert ComputedStyle.__missing__ is STOCK_MISSING
    assert pdf_fonts.Font._harfbuzz_subset is stock_subset
    assert isinstance(render_engine.html_page("<p>x</p>", "file:///", None), weasyprint.HTML)
    assert type(render_engine.html_page("<p>x</p>", "file:///", None)) is weasyprint.HTML


def test_other_weasyprint_version_falls_back_to_the_same_bytes(
    fresh_engine: None, renderer: InvoiceRenderer, stock_pdfs: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(weasyprint, "__version__", "71.0")
    with caplog.at_level(logging.WARNING, logger="invoicing.render.engine"):
        assert not render_engine.install()
        assert not render_engine.install()  # decided once: no second warning
    assert_stock(caplog, "WeasyPrint is 71.0, not the 70.0 they were written for")
    assert renderer.render_pdf(make_document("ko_KR")) == stock_pdfs["ko_KR"]


def test_a_missing_private_name_falls_back_before_patching_anything(
    fresh_engine: None, renderer: InvoiceRenderer, stock_pdfs: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """``weasyprint.html.UA`` is checked after the computed-value and font changes are
    built: they must not be applied on their own."""
    monkeypatch.delattr(weasyprint.html, "UA")
    with caplog.at_level(logging.WARNING, logger="invoicing.render.engine"):
        assert not render_engine.install()
    assert_stock(caplog, "weasyprint.html.UA is missing")
    assert renderer.render_pdf(make_document("zh_CN")) == stock_pdfs["zh_CN"]


def test_html_init_setting_other_attributes_falls_back(
    fresh_engine: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """A WeasyPrint whose ``HTML.__init__`` sets another attribute set (simulated by
    expecting one more): pages built without it would lack it."""
    monkeypatch.setattr(render_engine, "HTML_ATTRIBUTES",
                        render_engine.HTML_ATTRIBUTES | {"new_attribute"})
    with caplog.at_level(logging.WARNING, logger="invoicing.render.engine"):
        assert not render_engine.install()
    assert_stock(caplog, "HTML.__init__ sets")


def test_other_user_agent_rules_fall_back(
    fresh_engine: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(weasyprint.html, "UA", weasyprint.html.UA + "\n::backdrop { x: y }\n")
    with caplog.at_level(logging.WARNING, logger="invoicing.render.engine"):
        assert not render_engine.install()
    assert_stock(caplog, "user-agent pseudo-element rules are")


def test_a_patch_that_fails_half_way_is_undone(
    fresh_engine: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """The computed-value change is applied first; a font patch that cannot be set (here
    on an object that takes no attributes) must take it back out."""
    monkeypatch.setattr(render_engine, "_font_patches",
                        lambda: [(object(), "__missing__", None)])
    with caplog.at_level(logging.WARNING, logger="invoicing.render.engine"):
        assert not render_engine.install()
    assert_stock(caplog, "patching failed")


def test_without_hb_subset_preprocess_only_the_font_change_is_left_out(
    fresh_engine: None, renderer: InvoiceRenderer, stock_pdfs: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    stock_subset = pdf_fonts.Font._harfbuzz_subset
    monkeypatch.setattr(engine_fonts, "_preprocess_function", lambda *args: None)
    with caplog.at_level(logging.WARNING, logger="invoicing.render.engine"):
        assert render_engine.install()
    assert [r.getMessage() for r in caplog.records] == [
        "font subsets from prepared faces off: no libharfbuzz-subset >= 6.0 with "
        "hb_subset_preprocess (same PDFs, slower)"]
    assert pdf_fonts.Font._harfbuzz_subset is stock_subset
    assert ComputedStyle.__missing__ is not STOCK_MISSING
    assert renderer.render_pdf(make_document("en_US")) == stock_pdfs["en_US"]


def _cached_faces() -> list[tuple[int, bool, bool]]:
    """(subsets, prepared?, bytes kept?) per cached face, least recently used first."""
    return [(face.subsets, face.prepared is not None, face.data is not None)
            for face in render_engine._faces.values()]


def test_a_face_is_prepared_at_its_second_subset(
    fresh_engine: None, stock_pdfs: dict[str, bytes],
) -> None:
    """First document: the stock subsetter, nothing kept but the pin. Second: the face
    is prepared and subset from it. Third: its font bytes are shared too. Every PDF
    has the bytes of stock WeasyPrint."""
    assert render_engine.install()
    renderer = InvoiceRenderer()  # its own fonts: faces the cache has not seen
    doc = make_document("en_US")
    assert renderer.render_pdf(doc) == stock_pdfs["en_US"]
    assert _cached_faces() == [(1, False, False), (1, False, False)]
    assert renderer.render_pdf(doc) == stock_pdfs["en_US"]
    assert _cached_faces() == [(2, True, True), (2, True, True)]
    assert renderer.render_pdf(doc) == stock_pdfs["en_US"]
    assert _cached_faces() == [(3, True, True), (3, True, True)]


def test_faces_beyond_max_faces_are_evicted_least_recently_used_first(
    fresh_engine: None, stock_pdfs: dict[str, bytes],
) -> None:
    """Two renderers with their own fonts open twelve faces over the three locales (six
    each: DejaVu, Nanum and the Chinese regular and bold); the cache keeps the eight used
    last, and the PDFs keep their bytes throughout."""
    assert render_engine.install()
    first, second = InvoiceRenderer(), InvoiceRenderer()
    for loc in ("en_US", "ko_KR", "zh_CN"):
        assert first.render_pdf(make_document(loc)) == stock_pdfs[loc]
    assert len(render_engine._faces) == 6
    oldest = next(iter(render_engine._faces))
    for loc in ("en_US", "ko_KR", "zh_CN"):
        assert second.render_pdf(make_document(loc)) == stock_pdfs[loc]
    assert len(render_engine._faces) == render_engine.MAX_FACES == 8
    assert oldest not in render_engine._faces
    # The first renderer's evicted faces come back as new entries and still subset right.
    for loc in ("en_US", "ko_KR", "zh_CN"):
        assert first.render_pdf(make_document(loc)) == stock_pdfs[loc]
    assert len(render_engine._faces) == 8


def test_install_without_names_the_changes_left_out(fresh_engine: None) -> None:
    """How benchmarks/render_instructions.py measures one change: leave it out."""
    with pytest.raises(ValueError, match="unknown render_engine changes"):
        render_engine.install(without=["descriptions"])
    stock_subset = pdf_fonts.Font._harfbuzz_subset
    assert render_engine.install(without=["page", "fonts"])
    assert render_engine._page_class is None
    assert pdf_fonts.Font._harfbuzz_subset is stock_subset
    assert ComputedStyle.__missing__ is not STOCK_MISSING
