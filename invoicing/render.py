"""Render stage: one `InvoiceDocument` in, one PDF (or its HTML) out.

`InvoiceRenderer` is built once per run and reused for every customer. WeasyPrint's
start-up, parsing the stylesheet and registering the big CJK fonts cost about a second,
so the Jinja2 environment, the parsed `CSS` and the `FontConfiguration` live as long as
the renderer does (STYLE.md, "keep one renderer alive across many documents"). What
remains per invoice (~100 ms of CPU for one page) is mostly WeasyPrint's layout and
drawing, in Python; `InvoiceHTML`, `_compress_streams_once` and `render_engine` trim
what can be trimmed without changing a byte (parser, user-agent stylesheet, double
compression, font subsetting, computed styles), and the template avoids what makes
WeasyPrint measure boxes more than once: flex and grid, automatic table layout, floats
without a width (see invoice.css).

Three properties matter more than looks:

* Customer data is untrusted. Every template is autoescaped, and WeasyPrint may
  read nothing but files inside the templates folder (`TemplatesOnlyFetcher`),
  so an address holding ``<img src="file:///etc/passwd">`` prints as text and a
  stylesheet can never reach the network.
* The output is byte-reproducible. Dates in the PDF come from the invoice's
  issue date, and the PDF ``/ID`` is a hash of the rendered HTML, so rerunning
  a month gives the same ``pdf_sha256`` in ``invoices.parquet``.
* Labels come from the gettext catalogue (`invoicing.i18n.translations`) and
  every figure is formatted by `invoicing.i18n`; the template adds no arithmetic.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname
from xml.etree import ElementTree

import cssselect2
import pydyf
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from weasyprint import CSS, HTML, Attachment
from weasyprint import html as weasyprint_html
from weasyprint.css.counters import CounterStyle
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from invoicing import einvoice, i18n, render_engine
from invoicing.documents import InvoiceDocument
from invoicing.evidence import ATTACHMENT_NAME, attachment_csv

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
#: Archival PDF that may carry attachments (ISO 19005-3, level B).
PDF_VARIANT = "pdf/a-3b"
TEMPLATE_NAME = "invoice.html"
STYLESHEET_NAME = "invoice.css"

#: Placeholders the template passes through gettext for the page counter; the
#: translated text around them becomes CSS strings (see `page_counter_css`).
PAGE_TOKEN = "{page}"
PAGES_TOKEN = "{pages}"


class RenderError(Exception):
    """A document could not be rendered (missing template resource, refused URL, ...).

    WeasyPrint reports a fatal fetch failure as a ``BaseException``; it is turned
    into this ordinary exception so the CLI can print one line and exit non-zero.
    """


class ResourceRefusedError(ValueError):
    """WeasyPrint asked for a resource outside the templates folder."""


class TemplatesOnlyFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that serves only files inside one folder.

    WeasyPrint 70 expects a `URLFetcher` instance (it reads ``_fail_on_errors``
    from it), so this subclasses it and replaces `fetch`. Everything that is not
    a ``file:`` URL resolving, after symlinks and ``..`` are resolved, to a file
    under ``root`` is refused: ``http(s):``, ``data:``, ``file:///etc/passwd``,
    ``fonts/../../secret``. ``fail_on_errors`` makes a refused or missing
    resource stop the rendering instead of printing a PDF with a fallback font
    or a missing logo.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(allowed_protocols=("file",), fail_on_errors=True)
        self.root = root.resolve()

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        """Return the file behind ``url`` or raise `ResourceRefusedError`."""
        path = self.resolve(url)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(
            url=path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type}
        )

    def resolve(self, url: str) -> Path:
        """Map an allowed ``file:`` URL to its real path inside the root, or raise."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "file":
            raise ResourceRefusedError(f"refused non-file URL: {url}")
        if parts.netloc not in ("", "localhost"):
            raise ResourceRefusedError(f"refused file URL on another host: {url}")
        path = Path(url2pathname(parts.path)).resolve()  # url2pathname percent-decodes
        if not path.is_relative_to(self.root):
            raise ResourceRefusedError(f"refused file outside {self.root}: {url}")
        if not path.is_file():
            raise ResourceRefusedError(f"no such template resource: {url}")
        return path


class InvoiceRenderer:
    """Render invoices to HTML and PDF; create once, call for many documents.

    The gettext functions of the Jinja2 environment are swapped per document
    under a lock, so concurrent calls are safe but serialised; to render in
    parallel, give each worker process its own renderer.
    """

    def __init__(self, templates_dir: Path | None = None) -> None:
        self.templates_dir = (templates_dir or DEFAULT_TEMPLATES_DIR).resolve()
        self.url_fetcher = TemplatesOnlyFetcher(self.templates_dir)
        self.base_url = self.templates_dir.as_uri() + "/"
        self._lock = threading.Lock()
        self.env = Environment(
            loader=FileSystemLoader(self.templates_dir),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # `{% trans %}` blocks span lines in the template; trimming keeps the
        # msgids in the catalogue on one line.
        self.env.policies["ext.i18n.trimmed"] = True
        self.env.filters.update(
            format_money=i18n.format_money,
            format_unit_price=i18n.format_unit_price,
            format_date=i18n.format_date,
            format_date_range=i18n.format_date_range,
            format_int=i18n.format_int,
            format_rate=i18n.format_rate,
            format_tier=format_tier,
            keep_words=keep_words,
            page_counter_css=page_counter_css,
            css_string=css_string,
        )
        # The i18n extension compiles `{% trans %}` differently for new-style
        # gettext (variables substituted and escaped by the gettext wrapper), so
        # that style must be switched on before the template is compiled.
        self.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
        self.template = self.env.get_template(TEMPLATE_NAME)
        render_engine.install()
        self.font_config = FontConfiguration()
        try:
            self.css = CSS(
                url=self.base_url + STYLESHEET_NAME,
                base_url=self.base_url,
                url_fetcher=self.url_fetcher,
                font_config=self.font_config,
            )
        except FatalURLFetchingError as exc:
            raise RenderError(f"cannot load {STYLESHEET_NAME}: {exc.__cause__ or exc}") from exc

    def render_html(self, doc: InvoiceDocument, draft: bool = False) -> str:
        """Return the invoice as HTML, labels in the document's locale.

        ``draft=True`` adds a "DRAFT" watermark on every page and to the title,
        for previews that must never be mistaken for an issued invoice.
        """
        translations = i18n.translations(doc.locale)
        with self._lock:
            self.env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
            return _drop_indentation(self.template.render(
                doc=doc,
                draft=draft,
                html_lang=i18n.html_lang(doc.locale),
                loc=doc.locale,
                cur=doc.currency,
                page_token=PAGE_TOKEN,
                pages_token=PAGES_TOKEN,
            ))

    def render_pdf(self, doc: InvoiceDocument, draft: bool = False) -> bytes:
        """Return the invoice as PDF bytes, identical for identical documents.

        The PDF ``/ID`` is the first 16 bytes of the SHA-256 of the HTML (which
        holds every printed figure plus run id and inputs digest), and the PDF
        dates come from ``<meta name="dcterms.created">`` set to the issue date,
        so no clock or random value reaches the file. The embedded font subsets
        are pinned too (see `_source_date_epoch`).

        Bytes are identical for the same document *and the same stack*: another
        WeasyPrint, HarfBuzz or fontTools version, or a machine with/without
        ``libharfbuzz-subset``, subsets fonts differently.
        """
        html = self.render_html(doc, draft=draft)
        identifier = hashlib.sha256(html.encode("utf-8")).digest()[:16]
        stamp = datetime(doc.issue_date.year, doc.issue_date.month, doc.issue_date.day,
                         tzinfo=UTC)
        # PDF/A-3b allows embedded files: the document's own line items travel with it
        # (AFRelationship "Data": the data the document renders), so an auditor can
        # extract the numbers and `verify` can compare them with a recomputation.
        line_items = Attachment(
            file_obj=io.BytesIO(attachment_csv(doc)),
            name=ATTACHMENT_NAME,
            description="Line items of this document (columns of line_items.parquet)",
            created=stamp,
            modified=stamp,
            relationship="Data",
        )
        attachments, finisher = einvoice_parts(doc, line_items, stamp, self.templates_dir,
                                               draft)
        try:
            with self._lock, _source_date_epoch(doc.issue_date):
                pdf = InvoiceHTML.from_markup(html, self.base_url, self.url_fetcher).write_pdf(
                    stylesheets=[self.css],
                    font_config=self.font_config,
                    pdf_identifier=identifier,
                    pdf_variant=PDF_VARIANT,
                    attachments=attachments,
                    finisher=finisher,
                )
        except FatalURLFetchingError as exc:
            raise RenderError(
                f"{doc.invoice_number}: template resource refused or missing: "
                f"{exc.__cause__ or exc}"
            ) from exc
        if not isinstance(pdf, bytes):  # write_pdf() without a target returns bytes
            raise RenderError(f"{doc.invoice_number}: WeasyPrint returned no PDF bytes")
        return pdf


#: A line break and indentation between two tags of the template.
_INDENTATION = re.compile(r">\n[ \t]*(?=<)")


def _drop_indentation(html: str) -> str:
    """Remove the template's line breaks and indentation between tags.

    Each of those runs of white space becomes a text box that WeasyPrint builds,
    styles and then collapses away (about 2% of the render time). Only white space
    between a tag's ``>`` and the next ``<`` at the start of a line goes: text,
    including customer text (escaped, so it holds no ``<``), is untouched. The
    template keeps inline elements that need a space between them on one line.
    """
    return _INDENTATION.sub(">", html)


#: Rules of WeasyPrint's HTML user-agent stylesheet that start with a bare pseudo-element
#: (``::marker``, ``::footnote-call``, ``::note-call`` ...). See `user_agent_stylesheet`.
_UNIVERSAL_PSEUDO_ELEMENT_RULE = re.compile(r"^::[a-z-]+\s*\{[^}]*\}\s*$", re.MULTILINE)


@cache
def user_agent_stylesheet() -> CSS:
    """WeasyPrint's own HTML user-agent stylesheet, less its universal pseudo-element rules.

    ``::marker {...}``, ``::footnote-call {...}`` and the four other rules like them
    match every element, so WeasyPrint computes six pseudo-element styles for each
    element of every invoice, and throws them away: they only matter for list items,
    footnotes and notes, which the invoice has none of. Leaving them out saves about a
    twentieth of the render time and changes no byte of the PDF (tests/test_render.py
    compares against the stock stylesheet). ``::marker`` is kept for ``li``.
    """
    rules = _UNIVERSAL_PSEUDO_ELEMENT_RULE.findall(weasyprint_html.UA)
    text = _UNIVERSAL_PSEUDO_ELEMENT_RULE.sub("", weasyprint_html.UA)
    text += "".join("\nli" + rule for rule in rules if rule.startswith("::marker"))
    return CSS(string=text, counter_style=CounterStyle())


#: A start tag with a tab, CR or LF inside (an attribute value holding one, say): an XML
#: parser would turn it into a space where an HTML parser keeps it.
_WHITESPACE_IN_TAG = re.compile(r"<[^<>]*[\t\r\n][^<>]*>")


def parse_as_xml(html: str) -> ElementTree.Element | None:
    """The element tree of an invoice page, read by expat, or None if it cannot be.

    The template writes well-formed XHTML-compatible markup (void elements closed
    with ``/>``, every value escaped), so the C XML parser builds the same tree as
    WeasyPrint's pure-Python HTML5 parser (tinyhtml5) in about a twentieth of the
    time; parsing was 7% of the render time. Markup the two parsers could read
    differently is left to tinyhtml5: anything expat rejects (a control character
    in a customer name, an HTML entity) and tags with a tab or line break inside.
    tests/test_render.py checks that both give byte-identical PDFs.
    """
    if _WHITESPACE_IN_TAG.search(html):
        return None
    try:
        return ElementTree.fromstring(html)
    except (ElementTree.ParseError, ValueError):
        return None


class InvoiceHTML(HTML):
    """`weasyprint.HTML` read by `parse_as_xml` and styled with `user_agent_stylesheet`.

    Both shortcuts rely on WeasyPrint 70 internals (the attributes ``HTML.__init__``
    sets, the ``_ua_stylesheets`` hook); the same-bytes tests in tests/test_render.py
    fail if an upgrade changes them.
    """

    @classmethod
    def from_markup(cls, html: str, base_url: str, url_fetcher: URLFetcher) -> InvoiceHTML:
        """Like ``InvoiceHTML(string=html, ...)``, parsed by `parse_as_xml` when it can be.

        Sets what ``HTML.__init__`` (WeasyPrint 70) sets after parsing. The page has no
        ``<base>`` element (customer data is escaped), so ``base_url`` is used as is.
        """
        root = parse_as_xml(html)
        if root is None:
            return cls(string=html, base_url=base_url, url_fetcher=url_fetcher)
        page = cls.__new__(cls)
        page.base_url = base_url
        page.url_fetcher = url_fetcher
        page.media_type = "print"
        page.wrapper_element = cssselect2.ElementWrapper.from_html_root(
            root, content_language=None)
        page.etree_element = page.wrapper_element.etree_element
        return page

    def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:
        stock: list[CSS] = super()._ua_stylesheets(forms)
        return [user_agent_stylesheet(), *stock[1:]]


#: zlib level of the PDF streams. pydyf uses 9; 6 deflates the font subsets and page
#: content of an invoice 2-3 times faster for files 0.5-1% larger (8 ms less per
#: Chinese invoice, whose two font subsets are ~200 KB before compression).
FLATE_LEVEL = 6


class _OnceCompressedStream(pydyf.Stream):
    """A `pydyf.Stream` that is deflated once, at `FLATE_LEVEL`.

    ``pydyf.Stream.data`` deflates (level 9) on every access, and `pydyf.PDF.write`
    reads every object's data twice when the PDF has an identifier, which ours must
    have (PDF/A): once to write it, once more to hash the whole file for the second
    ``/ID`` entry. Compressing the font subsets and page content twice was about a
    tenth of the render time of a Chinese invoice.
    """

    stream: list[Any]
    extra: Any
    compress: bool

    @property
    def data(self) -> bytes:
        cached: bytes | None = self.__dict__.get("_data")
        if cached is None:
            if self.compress:
                content = b"\n".join(pydyf._to_bytes(item) for item in self.stream)
                self.stream = [zlib.compress(content, FLATE_LEVEL)]
                self.extra["Filter"] = "/FlateDecode"
                self.compress = False  # already done: pydyf writes it as it is
            cached = self.__dict__["_data"] = super().data
        return cached


def _compress_streams_once(document: object, pdf: pydyf.PDF) -> None:
    """`write_pdf` finisher: nothing changes the streams any more; deflate each once."""
    for obj in pdf.objects:
        if type(obj) is pydyf.Stream:
            obj.__class__ = _OnceCompressedStream


@contextmanager
def _source_date_epoch(day: date) -> Iterator[None]:
    """Pin ``SOURCE_DATE_EPOCH`` to ``day`` (UTC midnight) while a PDF is written.

    Without ``libharfbuzz-subset`` WeasyPrint subsets fonts with fontTools, which
    stamps each subset's ``head.modified`` with the current time unless
    ``SOURCE_DATE_EPOCH`` is set; the PDF bytes would then change every second.
    The variable is process-wide, so it is restored afterwards and the caller
    holds the renderer's lock.
    """
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    epoch = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    os.environ["SOURCE_DATE_EPOCH"] = str(int(epoch))
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous


def format_tier(tier: str, locale: str) -> str:
    """Format an add-on tier: numeric tiers (``"3000"``) get the locale's grouping."""
    return i18n.format_int(int(tier), locale) if tier.isdigit() else tier


#: U+2060 WORD JOINER: zero width, no glyph, forbids a line break on either side (UAX 14).
WORD_JOINER = "\u2060"


def keep_words(text: str, locale: str) -> Markup:
    """Keep each space-separated word of a Korean label on one line.

    Korean separates words with spaces, but line breaking (UAX 14) may split a
    word between any two syllables, and WeasyPrint 70 ignores ``word-break:
    keep-all``. A word joiner between the characters of each word forbids those
    breaks: the label prints and extracts exactly as before, and lines still break
    at the spaces. (A no-wrap ``<span>`` per word did the same at the cost of an
    inline box per word, about a tenth of the render time of a Korean invoice.)
    Other languages are returned escaped and unchanged: Chinese has no spaces, so
    joining its characters would stop its lines from breaking at all.
    """
    if not locale.startswith("ko"):
        return escape(text)
    # Join the characters of the plain text (not of its escaped form, whose entities
    # such as "&amp;" must stay whole), escaping each character.
    plain = _plain(text)
    return Markup(" ").join(
        Markup(WORD_JOINER).join(escape(char) for char in word)
        for word in plain.split(" ") if word
    )


_TOKEN_RE = re.compile("(" + re.escape(PAGE_TOKEN) + "|" + re.escape(PAGES_TOKEN) + ")")


def page_counter_css(label: str) -> Markup:
    """Turn a translated "Page {page} of {pages}" into a CSS ``content`` value.

    Page numbers only exist in CSS (``counter(page)``), and word order differs
    between languages ("3페이지 중 1페이지"), so the translated sentence is
    split at the placeholders and each piece becomes an escaped CSS string.
    Characters that could end a string or the ``<style>`` element are written as
    CSS hex escapes; the result is safe inside ``<style>``.
    """
    pieces: list[str] = []
    for token in _TOKEN_RE.split(str(label)):
        if token == PAGE_TOKEN:
            pieces.append("counter(page)")
        elif token == PAGES_TOKEN:
            pieces.append("counter(pages)")
        elif token:
            pieces.append(_css_string(token))
    return Markup(" ".join(pieces) or '""')


def css_string(text: str) -> Markup:
    """Jinja2 filter: ``text`` as a quoted CSS string, safe inside ``<style>``.

    Markup (what autoescaped concatenation returns) is unescaped first: CSS strings
    are not HTML, and `_css_string` escapes every character that could end them.
    """
    return Markup(_css_string(_plain(text)))


def _plain(text: str) -> str:
    """The text itself: Markup (what gettext and autoescaped joins return) unescaped."""
    return text.unescape() if isinstance(text, Markup) else str(text)


def _css_string(text: str) -> str:
    """Quote ``text`` as a CSS string, hex-escaping anything that is not plain text."""
    out = []
    for char in text:
        if char.isalnum() or char in " .,:;()/-" or (ord(char) > 0x7F and char.isprintable()):
            out.append(char)
        else:
            # Six hex digits and a space: CSS takes one whitespace after an escape
            # as its end, so the space keeps a real space that follows.
            out.append(f"\\{ord(char):06x} ")
    return '"' + "".join(out) + '"'


# --- EN 16931 e-invoices (Factur-X) for EU customers ------------------------------------------


@cache
def _einvoice_seller(path: Path) -> einvoice.EInvoiceSeller:
    return einvoice.load_seller(path)


def einvoice_parts(doc: InvoiceDocument, line_items: Attachment, stamp: datetime,
                   templates_dir: Path, draft: bool = False
                   ) -> tuple[list[Attachment], Callable[[object, pydyf.PDF], None]]:
    """The attachments and `write_pdf` finisher of one document.

    Every document embeds its line items. A customer in an EU member state also gets the
    Factur-X EN 16931 XML (`einvoice`), the XML being the ``Alternative`` form of the page
    and the line items a ``Supplement``, and the Factur-X XMP metadata. Other customers'
    PDFs are exactly what they were before e-invoices existed; drafts never carry an XML
    an accounting system could book.
    """
    if draft or not einvoice.is_eu(doc.customer.country):
        return [line_items], _compress_streams_once
    seller = _einvoice_seller(templates_dir / "seller.toml")
    xml = Attachment(
        file_obj=io.BytesIO(einvoice.cii_xml(doc, seller)),
        name=einvoice.XML_NAME,
        description="Factur-X EN 16931 invoice (CII XML)",
        created=stamp,
        modified=stamp,
        relationship="Alternative",
    )
    line_items.relationship = "Supplement"
    return [xml, line_items], _finish_facturx


def _finish_facturx(document: object, pdf: pydyf.PDF) -> None:
    """`write_pdf` finisher of a Factur-X PDF: XMP extension, XML MIME type, then compress.

    WeasyPrint appends extra XMP after its ``rdf:RDF`` element, where Factur-X readers do
    not look, so the Factur-X descriptions are spliced into that element instead; and it
    types ``.xml`` files ``application/xml`` where Factur-X asks for ``text/xml``.
    """
    metadata = pdf.objects[int(pdf.catalog["Metadata"].split()[0])]
    content = metadata.stream[0]
    metadata.stream[0] = content.replace(b"</rdf:RDF>", einvoice.XMP_EXTENSION + b"</rdf:RDF>")
    for obj in pdf.objects:
        if isinstance(obj, dict) and obj.get("Type") == "/Filespec" and \
                obj.get("UF") == einvoice.XML_NAME:
            pdf.objects[int(obj["EF"]["F"].split()[0])].extra["Subtype"] = "/text#2Fxml"
    _compress_streams_once(document, pdf)
