"""One e-mail per document: subject and body in the customer's language, the published
files attached, and a Message-ID fixed by the document's content.

The subject and the two body parts (plain text and HTML) come from ``templates/email/``,
rendered by Jinja2 with the labels of the invoice's own gettext catalogues
(`invoicing.render.i18n`) and its Babel formatting, so the e-mail names the number, the
period, the amount and the due date exactly as the PDF prints them. The HTML part is
autoescaped; the plain-text part is text, not markup, and is printed as is. Header
values are set through `email.message.EmailMessage`, which encodes a customer's name in
``To:`` and refuses line breaks in headers.

The Message-ID is ``<SHA-256 of the PDF@sender's domain>``: the same document always
carries the same id, so a message sent twice after a crash is recognisably the same
message (mail clients and servers collapse such duplicates).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

from babel.dates import format_skeleton
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from invoicing.core.errors import InputError, Source
from invoicing.core.paths import TEMPLATES_DIR
from invoicing.deliver.documents import CREDIT_NOTE, Buyer, IssuedDocument, read_checked
from invoicing.render import i18n

EMAIL_TEMPLATES: Final = "email"
#: MIME types of the files a document may carry; anything else is sent as bytes.
MIME_TYPES: Final = {".pdf": ("application", "pdf"), ".xml": ("application", "xml")}
#: A deliverable address: an ASCII dot-atom local part and a domain of dot-separated labels.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


@dataclass(frozen=True)
class Sender:
    """Who the messages come from (the seller file's ``name`` and ``email``)."""

    name: str
    email: str

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[1]


def load_sender(seller_file: Path) -> Sender:
    """The sender from the seller file; exit 3 if it has no usable ``email``."""
    with seller_file.open("rb") as fh:
        data = tomllib.load(fh)
    email = str(data.get("email", "")).strip()
    if not is_address(email):
        raise InputError(Source(_shown(seller_file)),
                         f"key 'email' {'is not an e-mail address' if email else 'missing'}: "
                         "the documents are sent from the seller's address")
    return Sender(str(data.get("name", "")).strip(), email)


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(TEMPLATES_DIR.parent).as_posix()
    except ValueError:
        return str(path)


def is_address(text: str | None) -> bool:
    """True for one plain deliverable address (``ap@example.com``); False for a name, a
    list, a display-name form, a domain without a dot or a non-ASCII address."""
    if not text or len(text) > 254:
        return False
    return re.fullmatch(rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})+", text) is not None


def message_id(document: IssuedDocument, sender: Sender) -> str:
    return f"<{document.pdf_sha256}@{sender.domain}>"


def format_month(document: IssuedDocument, locale: str) -> str:
    """The billing month as the locale names it (``October 2026``, ``2026년 10월``)."""
    return format_skeleton("yMMMM", document.period_start, locale=locale)


@cache
def _environment(templates_dir: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir / EMAIL_TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False,
                                     default_for_string=False),
        undefined=StrictUndefined, extensions=["jinja2.ext.i18n"],
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.policies["ext.i18n.trimmed"] = True
    return env


def _facts(document: IssuedDocument, locale: str, gettext: Any) -> list[tuple[str, str]]:
    """The labelled figures of the body, labels from the catalogue, figures as the PDF
    prints them."""
    def money() -> str:
        return i18n.format_money(document.total, document.currency, locale)

    period = i18n.format_date_range(document.period_start, document.period_end, locale)
    if document.kind == CREDIT_NOTE:
        return [(gettext("Credit note number"), document.number),
                (gettext("Billing period"), period),
                (gettext("Credits invoice"), document.credits_invoice or ""),
                (gettext("Amount credited"), money())]
    facts = [(gettext("Invoice number"), document.number),
             (gettext("Billing period"), period),
             (gettext("Invoice date"), i18n.format_date(document.issue_date, locale)),
             (gettext("Amount due"), money())]
    if document.due_date is not None:
        facts.append((gettext("Due date"), i18n.format_date(document.due_date, locale)))
    if document.replaces_invoice:
        facts.append((gettext("Replaces invoice"), document.replaces_invoice))
    return facts


def build_message(document: IssuedDocument, buyer: Buyer, sender: Sender, when: datetime,
                  templates_dir: Path = TEMPLATES_DIR) -> EmailMessage:
    """The e-mail of one document to `buyer` (whose address `is_address` accepted),
    dated `when`, with its published files attached (checked against the manifest)."""
    translations = i18n.translations(buyer.locale)
    env = _environment(templates_dir)
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    files = [(a.name, read_checked(a)) for a in document.attachments]
    context = dict(
        credit_note=document.kind == CREDIT_NOTE, number=document.number,
        month=format_month(document, buyer.locale), name=buyer.name,
        total=i18n.format_money(document.total, document.currency, buyer.locale),
        facts=_facts(document, buyer.locale, translations.gettext),
        einvoice=len(files) > 1, seller=sender.name, lang=i18n.html_lang(buyer.locale),
    )
    subject = " ".join(env.get_template("subject.txt").render(context).split())
    msg = EmailMessage()
    msg["From"] = Address(sender.name, addr_spec=sender.email)
    msg["To"] = Address(" ".join(buyer.name.split()), addr_spec=buyer.email)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = message_id(document, sender)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    msg["X-Invoicing-Document"] = document.number
    msg.set_content(env.get_template("body.txt").render(context), cte="quoted-printable")
    msg.add_alternative(env.get_template("body.html").render(context, subject=subject),
                        subtype="html", cte="quoted-printable")
    for name, data in files:
        maintype, subtype = MIME_TYPES.get(Path(name).suffix, ("application", "octet-stream"))
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg
