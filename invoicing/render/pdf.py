"""Stage 6, render: one `InvoiceDocument` in, one PDF (or its HTML) out.

`InvoiceRenderer` is built once per run and reused for every customer. WeasyPrint's
start-up, parsing the stylesheet and registering the big CJK fonts cost about a second,
so the Jinja2 environment, the parsed `CSS` and the `FontConfiguration` live as long as
the renderer does (STYLE.md, "keep one renderer alive across many documents"). What
remains per invoice (~100 ms of CPU for one page) is mostly WeasyPrint's layout and
drawing, in Python; `compress_streams_once` and the guarded changes of `render_engine`
trim what can be trimmed without changing a byte, and the template avoids what makes
WeasyPrint measure boxes more than once: flex and grid, automatic table layout, floats
without a width (see invoice.css).

The stage is split by job:

* this module: the renderer (Jinja2 environment, HTML, PDF bytes);
* `invoicing.render.security`: what WeasyPrint may fetch (`TemplatesOnlyFetcher`);
* `invoicing.render.filters`: the template's Jinja2 filters;
* `invoicing.render.engine`: speed-ups inside WeasyPrint 70.0, guarded (stock WeasyPrint
  otherwise);
* `invoicing.render.pool`: many documents on all cores.

Three properties matter more than looks:

* Customer data is untrusted. Every template is autoescaped, and WeasyPrint may
  read nothing but files inside the templates folder (`TemplatesOnlyFetcher`).
* The output is byte-reproducible. Dates in the PDF come from the invoice's
  issue date, and the PDF ``/ID`` is a hash of the rendered HTML, so rerunning
  a month gives the same ``pdf_sha256`` in ``invoices.parquet``.
* Labels come from the gettext catalogue (`invoicing.render.i18n.translations`) and
  every figure is formatted by `invoicing.render.i18n`; the template adds no arithmetic.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import tomllib
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

import pydyf
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from weasyprint import CSS, Attachment
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError

from invoicing.core import scratch
from invoicing.core.documents import InvoiceDocument
from invoicing.core.paths import TEMPLATES_DIR
from invoicing.render import einvoice, i18n
from invoicing.render import engine as render_engine
from invoicing.render.attachment import ATTACHMENT_NAME, attachment_csv
from invoicing.render.filters import (
    FILTERS,
    PAGE_TOKEN,
    PAGES_TOKEN,
    WORD_JOINER,
    css_string,
    format_tier,
    keep_words,
    page_counter_css,
)
from invoicing.render.security import ResourceRefusedError, TemplatesOnlyFetcher

#: Names importable from here (the renderer, and the filters and fetcher it uses).
__all__ = [
    "DEFAULT_TEMPLATES_DIR", "PAGES_TOKEN", "PAGE_TOKEN", "PDF_VARIANT", "STYLESHEET_NAME",
    "TEMPLATE_NAME", "WORD_JOINER", "InvoiceRenderer", "RenderError", "ResourceRefusedError",
    "TemplatesOnlyFetcher", "compress_streams_once", "css_string", "format_tier",
    "keep_words", "page_counter_css",
]

DEFAULT_TEMPLATES_DIR = TEMPLATES_DIR
#: Archival PDF that may carry attachments (ISO 19005-3, level B).
PDF_VARIANT = "pdf/a-3b"
TEMPLATE_NAME = "invoice.html"
STYLESHEET_NAME = "invoice.css"


class RenderError(Exception):
    """A document could not be rendered (missing template resource, refused URL, ...).

    WeasyPrint reports a fatal fetch failure as a ``BaseException``; it is turned
    into this ordinary exception so the CLI can print one line and exit non-zero.
    """


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
        self.env.filters.update(FILTERS)
        # The i18n extension compiles `{% trans %}` differently for new-style
        # gettext (variables substituted and escaped by the gettext wrapper), so
        # that style must be switched on before the template is compiled.
        self.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
        self.template = self.env.get_template(TEMPLATE_NAME)
        render_engine.install()  # logs a warning and leaves WeasyPrint stock if it cannot
        # WeasyPrint copies the @font-face files (~16 MB) into a `tempfile.mkdtemp` folder
        # when the stylesheet is parsed and keeps using it; making it inside our own
        # folder lets `close` (or this process's exit) remove it (core/scratch.py).
        self.scratch = scratch.make_folder("fonts")
        try:
            with scratch.tempdir_inside(self.scratch):
                self.font_config = FontConfiguration()
                self.css = CSS(
                    url=self.base_url + STYLESHEET_NAME,
                    base_url=self.base_url,
                    url_fetcher=self.url_fetcher,
                    font_config=self.font_config,
                )
        except FatalURLFetchingError as exc:
            self.close()
            raise RenderError(f"cannot load {STYLESHEET_NAME}: {exc.__cause__ or exc}") from exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Remove the renderer's temporary font files; it renders nothing afterwards."""
        scratch.remove(self.scratch)

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
                **page_context(doc, self.templates_dir),
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
                page = render_engine.html_page(html, self.base_url, self.url_fetcher)
                pdf = page.write_pdf(
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


#: zlib level of the PDF streams. pydyf uses 9; 6 deflates the font subsets and page
#: content of an invoice 2-3 times faster for files 0.5-1% larger (8 ms less per
#: Chinese invoice, whose two font subsets are ~200 KB before compression).
FLATE_LEVEL = 6


def compress_streams_once(document: object, pdf: pydyf.PDF) -> None:
    """`write_pdf` finisher: deflate each compressible stream once, at `FLATE_LEVEL`.

    A `pydyf.Stream` made with ``compress=True`` deflates (level 9) every time its
    ``data`` is read, and `pydyf.PDF.write` reads every object's data twice when the PDF
    has an identifier, which ours must have (PDF/A): once to write it, once more to
    hash the whole file for the second ``/ID`` entry. Nothing changes the streams after
    the finisher, so each is deflated here, through pydyf's public attributes
    (``stream``, ``extra``, ``compress``), and then written as it is.
    """
    for obj in pdf.objects:
        if type(obj) is pydyf.Stream and obj.compress:
            content = b"\n".join(_stream_item_bytes(item) for item in obj.stream)
            obj.stream = [zlib.compress(content, FLATE_LEVEL)]
            obj.extra["Filter"] = "/FlateDecode"
            obj.compress = False


def _stream_item_bytes(item: Any) -> bytes:
    """A stream item as pydyf writes it: bytes as they are; anything else as the one
    element of a `pydyf.Array`, whose brackets are dropped."""
    if isinstance(item, bytes):
        return item
    data: bytes = pydyf.Array((item,)).data
    return data[1:-1]


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
# --- EN 16931 e-invoices for EU customers ------------------------------------------------


@cache
def _einvoice_seller(path: Path) -> einvoice.EInvoiceSeller:
    return einvoice.load_seller(path)


@cache
def _einvoice_seller_of(text: str) -> einvoice.EInvoiceSeller:
    """The seller a document carries (the run's seller file), parsed once per process."""
    return einvoice.seller_from(tomllib.loads(text), "seller file")


def _document_seller(doc: InvoiceDocument, templates_dir: Path
                     ) -> einvoice.EInvoiceSeller | None:
    """The e-invoice facts of the document's seller file (the run's), or of the renderer's
    ``seller.toml`` for a document that carries none; None when neither exists."""
    if doc.seller_file:
        return _einvoice_seller_of(doc.seller_file)
    path = templates_dir / "seller.toml"
    return _einvoice_seller(path) if path.is_file() else None


def page_context(doc: InvoiceDocument, templates_dir: Path) -> dict[str, Any]:
    """What the page prints from the seller file: EU VAT facts and payment instructions.

    ``vat`` is None for a customer outside the EU (its page keeps "Tax"); ``payment`` is
    None when the seller file has no ``[payment]``. A missing seller file gives neither.
    """
    seller = _document_seller(doc, templates_dir)
    if seller is None:
        return {"vat": None, "payment": None}
    return {"vat": einvoice.page_vat(doc, seller), "payment": einvoice.payment_for(doc, seller)}


def einvoice_parts(doc: InvoiceDocument, line_items: Attachment, stamp: datetime,
                   templates_dir: Path, draft: bool = False
                   ) -> tuple[list[Attachment], Callable[[object, pydyf.PDF], None]]:
    """The attachments and `write_pdf` finisher of one document.

    Every document embeds its line items. A document whose e-invoice format embeds its XML
    (Factur-X) also gets that XML, as the ``Alternative`` form of the page with the line
    items a ``Supplement``, and the format's XMP metadata. Formats that write their XML
    beside the PDF (Peppol) leave the PDF as it is; so do customers without a format, whose
    PDFs are exactly what they were before e-invoices existed. Drafts never carry an XML
    an accounting system could book.
    """
    fmt = einvoice.format_of(doc.customer, doc.kind)
    if draft or fmt is None or fmt.embedded_name is None:
        return [line_items], compress_streams_once
    seller = _document_seller(doc, templates_dir)
    if seller is None:
        raise FileNotFoundError(templates_dir / "seller.toml")
    xml = Attachment(
        file_obj=io.BytesIO(fmt.build(doc, seller)),
        name=fmt.embedded_name,
        description=f"{fmt.title} e-invoice",
        created=stamp,
        modified=stamp,
        relationship="Alternative",
    )
    line_items.relationship = "Supplement"
    return [xml, line_items], partial(_finish_embedded, fmt.embedded_name,
                                      fmt.xmp_extension or b"")


def _finish_embedded(name: str, xmp: bytes, document: object, pdf: pydyf.PDF) -> None:
    """`write_pdf` finisher of a PDF with an embedded e-invoice: XMP extension, XML MIME
    type, then compress.

    WeasyPrint appends extra XMP after its ``rdf:RDF`` element, where Factur-X readers do
    not look, so the format's descriptions are spliced into that element instead; and it
    types ``.xml`` files ``application/xml`` where Factur-X asks for ``text/xml``.
    """
    metadata = pdf.objects[int(pdf.catalog["Metadata"].split()[0])]
    content = metadata.stream[0]
    metadata.stream[0] = content.replace(b"</rdf:RDF>", xmp + b"</rdf:RDF>")
    for obj in pdf.objects:
        if isinstance(obj, dict) and obj.get("Type") == "/Filespec" and obj.get("UF") == name:
            pdf.objects[int(obj["EF"]["F"].split()[0])].extra["Subtype"] = "/text#2Fxml"
    compress_streams_once(document, pdf)
