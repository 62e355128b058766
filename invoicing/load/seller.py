"""The seller file (``--seller``, default ``templates/seller.toml``): who issues the
documents.

The seller's name, address, tax id and e-mail print on every page, and its country,
VAT id and 0 % VAT declarations go into every EN 16931 e-invoice, so the file is an
input like the usage and the price book (SPEC §8): its SHA-256 is in the manifest and
the inputs digest, and a change to it is a changed input for ``run``, ``diff``,
``reissue`` and ``verify``. Its text travels with each document, so a cluster worker
prints exactly the seller the coordinating process read.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invoicing.core.documents import postal_line
from invoicing.core.errors import InputError, Source
from invoicing.core.paths import DEFAULT_SELLER_FILE

#: The seller file used when ``--seller`` is not given.
DEFAULT_SELLER = DEFAULT_SELLER_FILE
#: How errors name the default seller file.
DEFAULT_LABEL = "templates/seller.toml"


@dataclass(frozen=True)
class Seller:
    """The parsed seller file.

    Attributes:
      label: how errors name the file (as typed, or ``templates/seller.toml``).
      sha256: hex digest of the file's bytes.
      text: the file's TOML text (sent with each document for the e-invoice XML).
      data: the parsed TOML.
      lines: the seller block printed on every page (name, address lines, tax id, e-mail).
    """

    label: str
    sha256: str
    text: str
    data: dict[str, Any]
    lines: tuple[str, ...]


def block_lines(data: dict[str, Any]) -> tuple[str, ...]:
    """The seller block's lines: name, address lines, post code and city, tax id, e-mail
    (empty ones left out)."""
    lines = [str(data["name"]), *str(data.get("address", "")).strip().splitlines(),
             postal_line(data.get("country"), data.get("postcode"), data.get("city")) or ""]
    if data.get("tax_id"):
        lines.append(str(data["tax_id"]))
    if data.get("email"):
        lines.append(str(data["email"]))
    return tuple(line.strip() for line in lines if line.strip())


def load_seller(path: Path | None = None, label: str | None = None) -> Seller:
    """Read the seller file; a missing file, bad TOML or a missing name is an input error."""
    path = path if path is not None else DEFAULT_SELLER
    label = label or (DEFAULT_LABEL if path == DEFAULT_SELLER else str(path))
    if not path.is_file():
        raise InputError(Source(label), "seller file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(Source(label), f"not valid TOML: {exc}") from None
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise InputError(Source(label), "key 'name' missing: the seller's name prints on "
                         "every document")
    for key in ("address", "tax_id", "email", "country", "vat_id"):
        if key in data and not isinstance(data[key], str):
            raise InputError(Source(label), f"key {key!r}: must be a string")
    return Seller(label, hashlib.sha256(raw).hexdigest(), text, data, block_lines(data))
