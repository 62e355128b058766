"""Render stage: what the PDF says, that it is safe, and that it is reproducible.

PDFs are checked through their extracted text (pypdf), because that is what a
customer copies and an auditor searches. One `InvoiceRenderer` is shared by the
whole module, as the batch shares one across customers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from pypdf import PdfReader

from invoicing.core.documents import InvoiceDocument, Line, Party
from invoicing.render import engine as render_engine
from invoicing.render import evidence_text, i18n
from invoicing.render.engine import parse_as_xml
from invoicing.render.pdf import (
    DEFAULT_TEMPLATES_DIR,
    WORD_JOINER,
    InvoiceRenderer,
    RenderError,
    ResourceRefusedError,
    TemplatesOnlyFetcher,
    css_string,
    keep_words,
    page_counter_css,
)
from tests.documents_factory import CUSTOMERS, evidence_lines, make_app, make_document, money

REPO = Path(__file__).resolve().parents[2]
HEADER_LABELS = ("Item", "Details", "Quantity", "Unit price", "Amount")


@pytest.fixture(scope="module")
def renderer() -> InvoiceRenderer:
    return InvoiceRenderer()


def pages_text(pdf: bytes) -> list[str]:
    """Extracted text per page, whitespace collapsed (thin spaces, wrapped cells)."""
    reader = PdfReader(BytesIO(pdf))
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def text_of(pdf: bytes) -> str:
    return " ".join(pages_text(pdf))


def compact(text: str) -> str:
    """Text without any whitespace: Korean and Chinese lines may wrap inside a word."""
    return "".join(text.split())


def assert_in_cjk(expected: str, text: str) -> None:
    assert compact(expected) in compact(text), expected


def embedded_fonts(pdf: bytes) -> set[str]:
    """Base names of the fonts embedded in the PDF, subset prefix removed."""
    reader = PdfReader(BytesIO(pdf))
    names: set[str] = set()
    for page in reader.pages:
        fonts = page["/Resources"].get_object().get("/Font", {})
        for ref in fonts.get_object().values():
            base = str(ref.get_object()["/BaseFont"]).lstrip("/")
            names.add(base.split("+", 1)[-1])
    return names


# --- Babel formatting ----------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        ("1234567", "KRW", "ko_KR", "₩1,234,567"),
        ("1234.5", "CNY", "zh_CN", "¥1,234.50"),
        ("1234.5", "USD", "en_US", "$1,234.50"),
        ("0", "USD", "en_US", "$0.00"),
        ("1234", "JPY", "ja_JP", "￥1,234"),
        ("1234.50", "USD", "ko_KR", "US$1,234.50"),
        ("-1284.74", "USD", "en_US", "-$1,284.74"),
        ("-0", "KRW", "ko_KR", "₩0"),
        ("399.000000", "USD", "en_US", "$399.00"),  # Parquet Decimal(38, 6) scale
    ],
)
def test_format_money_shows_exactly_the_minor_unit(
    amount: str, currency: str, locale: str, expected: str
) -> None:
    assert i18n.format_money(Decimal(amount), currency, locale) == expected


def test_format_money_refuses_unrounded_amounts_and_floats() -> None:
    with pytest.raises(ValueError, match="decimal digit"):
        i18n.format_money(Decimal("1.005"), "USD", "en_US")
    with pytest.raises(ValueError, match="decimal digit"):
        i18n.format_money(Decimal("1000.5"), "KRW", "ko_KR")
    with pytest.raises(TypeError):
        i18n.format_money(1.5, "USD", "en_US")  # type: ignore[arg-type]


def test_unit_price_keeps_every_digit() -> None:
    assert i18n.format_unit_price(Decimal("0.0015"), "USD", "en_US") == "$0.0015"
    assert i18n.format_unit_price(Decimal("999"), "CNY", "zh_CN") == "¥999.00"
    assert i18n.format_unit_price(Decimal("149.990000"), "USD", "en_US") == "$149.99"
    assert i18n.format_rate(Decimal("0.100000"), "ko_KR") == "10%"
    assert i18n.format_rate(Decimal("0.055"), "en_US") == "5.5%"


def test_catalogue_fallback_keeps_locale_formatting(renderer: InvoiceRenderer) -> None:
    """ja_JP has no catalogue: English labels, Japanese money and dates."""
    doc = make_document("ja_JP", customer=CUSTOMERS["en_US"], currency="JPY")
    html = renderer.render_html(doc)
    assert "Amount due" in html
    assert "2026年11月1日" in html
    assert i18n.format_money(doc.total, "JPY", "ja_JP") in html
    assert i18n.translations("ja_JP").gettext("Invoice") == "Invoice"
    assert i18n.translations("ko_KR").gettext("Invoice") == "청구서"


def test_catalogues_cover_every_template_message() -> None:
    """Every msgid of the templates (the invoice's and the e-mails') and of the evidence
    module is in each .po, translated, with the same placeholders."""
    templates = [DEFAULT_TEMPLATES_DIR / "invoice.html",
                 *sorted((DEFAULT_TEMPLATES_DIR / "email").iterdir())]
    messages = [
        message
        for template in templates
        for message in extract_from_file(
            "jinja2.ext:babel_extract",
            str(template),
            options={"extensions": "jinja2.ext.i18n", "trimmed": "true"},
        )
    ]
    # The evidence of a line and the item and plan labels: one module for the page, the
    # reports and the e-invoice, its msgids marked with N_ and NP_ (with a plural).
    messages += extract_from_file("python", evidence_text.__file__,
                                  keywords={"N_": None, "NP_": (1, 2)})
    extracted = {msg if isinstance(msg, str) else msg[0] for _, msg, _, _ in messages}
    assert i18n.available_locales() == ("en_US", "ko_KR", "zh_CN")
    for locale in i18n.available_locales():
        with i18n.catalogue_path(locale).open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
        assert ids == extracted, locale
        assert not list(catalog.check()), locale  # python-format placeholders match
        if locale != i18n.FALLBACK_LOCALE:
            untranslated = [m.id for m in catalog if m.id and not all(_strings(m.string))]
            assert not untranslated, (locale, untranslated)
            assert not [m.id for m in catalog if m.id and m.fuzzy], locale


def _strings(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


# --- Content -------------------------------------------------------------------


def test_korean_invoice_prints_hangul_name_and_exact_total(renderer: InvoiceRenderer) -> None:
    doc = make_document("ko_KR")
    pdf = renderer.render_pdf(doc)
    text = text_of(pdf)
    assert doc.total == Decimal("1839449")
    assert "주식회사 한빛메신저" in text
    assert "₩1,839,449" in text
    for expected in (
        "2026년 10월 1일 기준 플랜: 프로 버전",
        "31일 중 10일 플래그십 버전 이용",
        "최대 DAU 23,456 (2026년 10월 14일)",
        "2블록 × ₩195,000 (1블록 = 10,000)",
        "2026년 11월 29일까지 무료 체험",
        "부가가치세 (10%) ₩167,223",
    ):
        assert_in_cjk(expected, text)
    assert embedded_fonts(pdf) <= {"Invoice-Hangul", "Invoice-Hangul-Bold"}


def test_chinese_invoice_prints_chinese_name_and_exact_total(renderer: InvoiceRenderer) -> None:
    doc = make_document("zh_CN")
    pdf = renderer.render_pdf(doc)
    text = text_of(pdf)
    assert doc.total == Decimal("5265.42")
    assert "上海星云通讯有限公司" in text
    assert "¥5,265.42" in text
    for expected in (
        "2026年10月1日 生效套餐：专业版",
        "旗舰版：31 天中使用 10 天",
        "免费试用至 2026年11月29日",
        "第 1 页，共 1 页",
    ):
        assert_in_cjk(expected, text)
    assert embedded_fonts(pdf) <= {"Invoice-Hans", "Invoice-Hans-Bold"}


def test_english_invoice_falls_back_to_cjk_fonts_for_a_korean_name(
    renderer: InvoiceRenderer,
) -> None:
    """The font stack renders Hangul and Chinese names with our files, never system fonts."""
    customer = replace(CUSTOMERS["en_US"], name="한빛 Messenger / 星云通讯")
    pdf = renderer.render_pdf(make_document("en_US", customer=customer))
    assert "한빛 Messenger / 星云通讯" in text_of(pdf)
    fonts = embedded_fonts(pdf)
    assert any(name.startswith("Invoice-Hangul") for name in fonts), fonts
    assert any(name.startswith("Invoice-Hans") for name in fonts), fonts
    assert all(name.startswith("Invoice-") for name in fonts), fonts


def test_every_evidence_kind_is_printed(renderer: InvoiceRenderer) -> None:
    text = text_of(renderer.render_pdf(make_document("en_US")))
    for expected in (
        "Plan in force on October 1, 2026: Pro",
        "Peak DAU 23,456 on October 14, 2026",
        "Free quota 10,000, excess 13,456",
        "2 blocks of 10,000 × $149.99",
        "Peak group count 100,001 on October 30, 2026",
        "1 block of 100,000 × $149.99",
        "Tier: 3,000 members per group",
        "Active 12 days (Oct 5 – 16, 2026)",
        "Free trial until November 29, 2026",
        "10 of 31 days on Flagship",
        "USD@2026-01-01, effective from January 1, 2026",
        "Billing period Oct 1 – 31, 2026",
        "Due date November 3, 2026",
        "Run 2026-10-3f9a2c71",
        "Inputs sha256:3f9a2c710000",
        "Page 1 of 2",
    ):
        assert expected in text, expected


def test_addon_names_and_tiers_are_localized(renderer: InvoiceRenderer) -> None:
    lines = (
        Line("history_retention_days", "History 180 days", 1, Decimal("79000"),
             Decimal("79000"), plan="flagship", tier="180", active_days=1,
             first_active=date(2026, 10, 31), last_active=date(2026, 10, 31)),
        Line("avchatroom_unlimited", "Unlimited AVChatRoom", 1, Decimal("129000"),
             Decimal("129000"), plan="pro", tier="on", active_days=20,
             first_active=date(2026, 10, 12), last_active=date(2026, 10, 31)),
    )  # fmt: skip
    doc = make_document("ko_KR", apps=(make_app(1400000009, "방송", lines, currency="KRW"),))
    text = text_of(renderer.render_pdf(doc))
    for expected in (
        "메시지 기록 저장 기간 연장",
        "등급: 메시지 기록 180일 저장",
        "사용 1일 (2026년 10월 31일)",
        "라이브 방송 그룹(AvChatRoom) 생성 수량 무제한 확장",
        "사용 20일 (2026년 10월 12일~31일)",
    ):
        assert_in_cjk(expected, text)


def test_unknown_item_fails_loudly(renderer: InvoiceRenderer) -> None:
    bogus = Line("sms_pack", "SMS pack", 1, Decimal("1.00"), Decimal("1.00"))
    doc = make_document("en_US", apps=(make_app(1, "x", (bogus,)),))
    with pytest.raises(Exception, match="sms_pack"):
        renderer.render_html(doc)


# --- Escaping and resource isolation ----------------------------------------------


def test_customer_markup_is_escaped(renderer: InvoiceRenderer) -> None:
    customer = replace(CUSTOMERS["en_US"], name="<b>x</b> & y")
    doc = make_document("en_US", customer=customer)
    html = renderer.render_html(doc)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in html
    assert "<b>x</b>" not in html
    assert "<b>x</b> & y" in text_of(renderer.render_pdf(doc))


def test_hostile_customer_data_prints_as_text(renderer: InvoiceRenderer) -> None:
    """An <img>/url() in customer data must not be fetched: it is text.

    The fetcher stops the render on any refused URL, so a render that succeeds
    proves nothing was requested.
    """
    customer = Party(
        customer_id="C-666",
        name='<img src="file:///etc/passwd">',
        email="x@example.com",
        address='url(http://example.com/x.css)\n</style><link rel="stylesheet" href="http://e.x/a.css">',
        country="US",
        tax_id=None,
    )
    pdf = renderer.render_pdf(
        make_document("en_US", customer=customer, apps=(make_app(7, "<script>1</script>"),))
    )
    text = text_of(pdf)
    assert '<img src="file:///etc/passwd">' in text
    assert "url(http://example.com/x.css)" in text
    assert "<script>1</script>" in text
    assert "root:" not in text


def test_address_keeps_its_line_breaks(renderer: InvoiceRenderer) -> None:
    pdf = renderer.render_pdf(make_document("en_US"))
    lines = PdfReader(BytesIO(pdf)).pages[0].extract_text().splitlines()
    assert "500 Market Street, Suite 400" in lines
    assert "San Francisco, CA 94105" in lines


@pytest.fixture
def fetcher() -> TemplatesOnlyFetcher:
    return TemplatesOnlyFetcher(DEFAULT_TEMPLATES_DIR)


def test_fetcher_serves_files_inside_templates(fetcher: TemplatesOnlyFetcher) -> None:
    response = fetcher.fetch(DEFAULT_TEMPLATES_DIR.as_uri() + "/invoice.css")
    assert b"@font-face" in response.read()
    response.close()


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://example.com/x.css",
        "https://example.com/font.ttf",
        "data:text/css,body{}",
        "ftp://example.com/x",
        "file://otherhost" + str(DEFAULT_TEMPLATES_DIR) + "/invoice.css",
        DEFAULT_TEMPLATES_DIR.as_uri() + "/../pyproject.toml",
        DEFAULT_TEMPLATES_DIR.as_uri() + "/fonts/../../invoicing/render/pdf.py",
        DEFAULT_TEMPLATES_DIR.as_uri() + "/%2e%2e/pyproject.toml",
        DEFAULT_TEMPLATES_DIR.as_uri() + "/no-such-file.css",
    ],
)
def test_fetcher_refuses_everything_else(fetcher: TemplatesOnlyFetcher, url: str) -> None:
    with pytest.raises(ResourceRefusedError):
        fetcher.fetch(url)


def test_fetcher_refuses_symlink_out_of_templates(tmp_path: Path) -> None:
    root = tmp_path / "templates"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (root / "link.txt").symlink_to(secret)
    with pytest.raises(ResourceRefusedError):
        TemplatesOnlyFetcher(root).fetch((root / "link.txt").as_uri())


def _mini_templates(tmp_path: Path, html: str, css: str = "body { margin: 0 }") -> Path:
    root = tmp_path / "templates"
    root.mkdir()
    (root / "invoice.html").write_text(html)
    (root / "invoice.css").write_text(css)
    (tmp_path / "outside.css").write_text("body { color: red }")
    return root


@pytest.mark.parametrize(
    "tag",
    [
        '<img src="file:///etc/passwd">',
        '<link rel="stylesheet" href="http://example.com/x.css">',
        '<link rel="stylesheet" href="../outside.css">',
    ],
)
def test_template_resource_outside_templates_stops_the_render(tmp_path: Path, tag: str) -> None:
    """The fetcher is really wired into WeasyPrint: a bad template URL fails the render."""
    root = _mini_templates(tmp_path, f"<html><body>{tag}{{{{ doc.invoice_number }}}}</body></html>")
    with pytest.raises(RenderError, match="refused"):
        InvoiceRenderer(root).render_pdf(make_document("en_US"))


def test_stylesheet_import_from_network_stops_the_renderer(tmp_path: Path) -> None:
    root = _mini_templates(tmp_path, "<p>x</p>", css='@import url("http://example.com/x.css");')
    with pytest.raises(RenderError):
        InvoiceRenderer(root)


# --- Pagination ------------------------------------------------------------------


def test_150_apps_paginate_with_page_x_of_y_and_headers(renderer: InvoiceRenderer) -> None:
    """150 one-line apps: every page numbered "Page X of Y", header labels on page 2."""
    plan_fee = evidence_lines("USD")[:1]
    apps = tuple(make_app(1400000000 + i, f"App {i:03d}", plan_fee) for i in range(150))
    doc = make_document("en_US", apps=apps)
    pages = pages_text(renderer.render_pdf(doc))
    assert len(pages) > 5
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
    assert all(label in pages[1] for label in HEADER_LABELS)
    assert "$59,850.00" in pages[-1]  # 150 x $399.00
    assert "App 149" in pages[-1]


def test_long_table_repeats_its_header_on_the_next_page(renderer: InvoiceRenderer) -> None:
    """One app with 40 lines: page 2 continues the table under a repeated header, which
    names the app again (a reader of page 2 alone knows whose lines these are)."""
    lines = evidence_lines("USD") * 8
    doc = make_document("en_US", apps=(make_app(1400000001, "Big app", lines),))
    pages = pages_text(renderer.render_pdf(doc))
    assert len(pages) >= 2
    assert pages[1].count("Big app SDKAppID 1400000001") == 1
    assert all(label in pages[1] for label in HEADER_LABELS)


def test_korean_page_counter_follows_korean_word_order(renderer: InvoiceRenderer) -> None:
    lines = evidence_lines("KRW") * 8
    doc = make_document("ko_KR", apps=(make_app(1400000001, "큰 앱", lines, currency="KRW"),))
    pages = pages_text(renderer.render_pdf(doc))
    assert_in_cjk(f"{len(pages)}페이지 중 2페이지", pages[1])


# --- Draft and metadata ------------------------------------------------------------


def test_draft_marks_every_page(renderer: InvoiceRenderer) -> None:
    lines = evidence_lines("USD") * 8
    doc = make_document("en_US", apps=(make_app(1400000001, "Big app", lines),))
    pdf = renderer.render_pdf(doc, draft=True)
    pages = pages_text(pdf)
    assert len(pages) >= 2
    assert all("DRAFT" in page for page in pages)
    assert PdfReader(BytesIO(pdf)).metadata.title == "DRAFT IM-202610-000001"
    assert "DRAFT" not in text_of(renderer.render_pdf(doc))


def test_pdf_metadata_comes_from_the_document(renderer: InvoiceRenderer) -> None:
    reader = PdfReader(BytesIO(renderer.render_pdf(make_document("ko_KR"))))
    meta = reader.metadata
    assert meta.title == "IM-202610-000001"
    assert meta.author == "Nimbus IM Cloud Ltd."
    assert meta.subject.startswith("IM 서비스 청구서")
    assert meta["/CreationDate"] == meta["/ModDate"] == "D:20261101"
    assert reader.trailer["/Root"]["/Lang"] == "ko-KR"
    assert 'lang="ko-KR"' in InvoiceRenderer().render_html(make_document("ko_KR"))


# --- Reproducibility -----------------------------------------------------------------

SUBPROCESS_RENDER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from tests.documents_factory import make_document
    from invoicing.render.pdf import InvoiceRenderer
    sys.stdout.buffer.write(InvoiceRenderer().render_pdf(make_document({locale!r})))
    """
)


@pytest.fixture(scope="module")
def rendered_twice(renderer: InvoiceRenderer) -> Iterator[tuple[InvoiceDocument, bytes, bytes]]:
    doc = make_document("ko_KR")
    first = renderer.render_pdf(doc)
    renderer.render_pdf(make_document("zh_CN"))  # another document in between
    yield doc, first, renderer.render_pdf(doc)


def test_same_document_gives_identical_bytes(
    rendered_twice: tuple[InvoiceDocument, bytes, bytes],
) -> None:
    _, first, second = rendered_twice
    assert first == second


def test_identical_bytes_in_a_fresh_process(
    rendered_twice: tuple[InvoiceDocument, bytes, bytes],
) -> None:
    _, first, _ = rendered_twice
    script = SUBPROCESS_RENDER.format(repo=str(REPO), locale="ko_KR")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, timeout=120
    )
    assert result.stdout == first


def test_fonttools_subsets_are_stamped_with_the_issue_date(
    renderer: InvoiceRenderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without libharfbuzz-subset, fontTools stamps font subsets with the clock.

    The renderer pins SOURCE_DATE_EPOCH to the issue date while writing, so the
    fallback path is reproducible too, and the variable is restored afterwards.
    """
    import pikepdf
    import weasyprint.pdf.fonts
    from fontTools.misc.timeTools import epoch_diff
    from fontTools.ttLib import TTFont

    monkeypatch.setattr(weasyprint.pdf.fonts, "harfbuzz_subset", None)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    pdf = pikepdf.open(BytesIO(renderer.render_pdf(make_document("en_US"))))
    issue_epoch = 1793491200  # 2026-11-01T00:00:00Z
    stamps = {
        TTFont(BytesIO(obj.FontFile2.read_bytes()))["head"].modified + epoch_diff
        for obj in pdf.objects
        if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == "/FontDescriptor"
    }
    assert stamps == {issue_epoch}
    assert "SOURCE_DATE_EPOCH" not in os.environ


def test_pdf_identifier_depends_on_content(renderer: InvoiceRenderer) -> None:
    doc = make_document("en_US")
    other = replace(doc, invoice_number="IM-202610-000002")
    id_a = PdfReader(BytesIO(renderer.render_pdf(doc))).trailer["/ID"][0]
    id_b = PdfReader(BytesIO(renderer.render_pdf(other))).trailer["/ID"][0]
    assert id_a != id_b


# --- Render shortcuts: same bytes as stock WeasyPrint ------------------------------------


def _shortcut_documents() -> list[tuple[InvoiceDocument, bool]]:
    hostile = Party(
        customer_id="C-666",
        name='<b>한빛</b> & "星云" \'x\' ₩¥$',
        email="x@example.com",
        address="url(http://example.com/x.css)\n</style><p>line 2</p>\n\n  indented",
        country="US",
        tax_id="<tax>",
    )
    long_korean = make_app(1400000001, "큰 앱", evidence_lines("KRW") * 8, currency="KRW")
    return [
        (make_document("en_US"), False),
        (make_document("ko_KR"), False),
        (make_document("zh_CN"), False),
        (make_document("ja_JP"), False),
        (make_document("ko_KR", apps=(long_korean,)), True),
        (make_document("en_US", customer=hostile), False),
    ]


@pytest.mark.parametrize("index", range(len(_shortcut_documents())))
def test_shortcuts_give_the_bytes_of_stock_weasyprint(
    renderer: InvoiceRenderer, monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    """`render_engine.html_page` parses with expat and drops unused user-agent rules;
    neither may change a byte of the PDF compared with ``weasyprint.HTML(string=...)``."""
    doc, draft = _shortcut_documents()[index]
    fast = renderer.render_pdf(doc, draft=draft)
    assert parse_as_xml(renderer.render_html(doc, draft=draft)) is not None
    monkeypatch.setattr(render_engine, "_page_class", None)  # stock weasyprint.HTML
    assert renderer.render_pdf(doc, draft=draft) == fast


def test_render_engine_changes_no_byte(renderer: InvoiceRenderer) -> None:
    """Prepared font faces, shared font bytes, the computed-value shortcut, expat parsing
    and the lighter user-agent stylesheet: the same PDFs as stock WeasyPrint 70, including
    a glyph no bundled font has (.notdef)."""
    assert render_engine.install()
    missing_glyph = replace(CUSTOMERS["en_US"], name="Acme \U0001F600 Chat")
    docs = [*_shortcut_documents(), (make_document("en_US", customer=missing_glyph), False)]
    fast = [renderer.render_pdf(doc, draft=draft) for doc, draft in docs]
    render_engine.uninstall()
    try:
        stock = [renderer.render_pdf(doc, draft=draft) for doc, draft in docs]
    finally:
        assert render_engine.install()
    assert [len(pdf) for pdf in fast] == [len(pdf) for pdf in stock]
    assert fast == stock


def test_markup_expat_cannot_read_goes_to_the_html5_parser(renderer: InvoiceRenderer) -> None:
    """A control character (invalid in XML) or a line break inside a tag: tinyhtml5 reads
    the page, as before, and the invoice still renders."""
    customer = replace(CUSTOMERS["en_US"], name="Acme\x01 Chat")
    doc = make_document("en_US", customer=customer)
    assert parse_as_xml(renderer.render_html(doc)) is None
    assert renderer.render_pdf(doc).startswith(b"%PDF-")
    assert parse_as_xml('<p title="a\nb">x</p>') is None
    assert parse_as_xml("<p>a &nbsp; b</p>") is None
    assert parse_as_xml('<p title="a b">x</p>') is not None


def test_user_agent_stylesheet_leaves_out_only_universal_pseudo_element_rules() -> None:
    """The six universal rules go (``::marker`` comes back for ``li`` only); any other
    rule of WeasyPrint's stylesheet stays as it is."""
    stock = "p { a: b }\n::marker { c: d }\n::footnote-call { e: f }\n" + "".join(
        f"::{name} {{ }}\n" for name in
        ("footnote-marker", "note-call", "note-callback", "note-marker"))
    trimmed = render_engine.user_agent_css(stock)
    assert " ".join(trimmed.split()) == "p { a: b } li::marker { c: d }"
    with pytest.raises(ValueError, match="user-agent pseudo-element rules"):
        render_engine.user_agent_css(stock.replace("::note-call { }", "::x { }"))


def test_keep_words_joins_korean_words_only() -> None:
    assert keep_words("플랜 요금", "ko_KR") == f"플{WORD_JOINER}랜 요{WORD_JOINER}금"
    assert keep_words("<b>", "ko_KR") == f"&lt;{WORD_JOINER}b{WORD_JOINER}&gt;"
    assert keep_words("Plan fee", "en_US") == "Plan fee"
    assert keep_words("套餐 费用", "zh_CN") == "套餐 费用"


def test_factory_document_is_consistent() -> None:
    """Guard for the helper itself: totals follow R7 for every locale."""
    for locale in ("en_US", "ko_KR", "zh_CN"):
        doc = make_document(locale)
        assert doc.subtotal == sum(app.subtotal for app in doc.apps)
        assert doc.tax == money(doc.subtotal * doc.tax_rate, doc.currency)
        assert doc.total == doc.subtotal + doc.tax


# --- Credit notes ----------------------------------------------------------------------



def negated(doc: InvoiceDocument) -> InvoiceDocument:
    """The document's lines and totals with their signs flipped, as a reissue credits them."""
    apps = tuple(
        replace(
            app,
            lines=tuple(replace(line, amount=-line.amount) for line in app.lines),
            subtotal=-app.subtotal,
        )
        for app in doc.apps
    )
    return replace(doc, apps=apps, subtotal=-doc.subtotal, tax=-doc.tax, total=-doc.total)


def test_credit_note_is_titled_and_linked(renderer: InvoiceRenderer) -> None:
    doc = replace(  # type: ignore[call-arg,unused-ignore]
        negated(make_document("en_US")),
        invoice_number="CN-202610-000001",
        kind="credit_note",
        credits_invoice="IM-202610-000001",
        revision=1,
    )
    text = text_of(renderer.render_pdf(doc))
    assert "Credit note CN-202610-000001" in text
    assert "Credits invoice IM-202610-000001" in text
    assert "Amount credited -$1,284.74" in text
    assert "Due date" not in text and "Amount due" not in text


def test_footer_prints_run_version_and_inputs_exactly(renderer: InvoiceRenderer) -> None:
    """The footer is a CSS string: characters that need escaping print as themselves,
    and a space after an escaped character survives (CSS ends an escape with one)."""
    doc = make_document("en_US", run_id="2026-10-<&\"x'> y", inputs_digest="ab" * 32)
    for page in pages_text(renderer.render_pdf(doc)):
        assert "Run 2026-10-<&\"x'> y · invoicing 0.1.0 · Inputs sha256:abababababab" in page
    assert page_counter_css("Page {page} of {pages}") == (
        '"Page " counter(page) " of " counter(pages)')
    assert str(css_string('a"b c')) == '"a\\000022 b c"'
