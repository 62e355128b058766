"""The official checks of a Peppol BIS Billing 3.0 UBL file, offline.

Vendored under ``tests/rules/peppol-bis-3.0.18/`` (source and licences in its README):

* XSD: the OASIS UBL 2.1 Invoice and CreditNote schemas (lxml);
* Schematron: the CEN EN 16931 rules bound to UBL and the OpenPeppol BIS Billing 3.0
  rules, compiled to XSLT, run in-process by `saxonche`; every ``svrl:failed-assert`` and
  ``svrl:successful-report`` (warnings included) is a failure.

Each schema and stylesheet is compiled once per test process and reused.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

RULES = Path(__file__).resolve().parent / "rules" / "peppol-bis-3.0.18"
STYLESHEETS = ("CEN-EN16931-UBL.xslt", "PEPPOL-EN16931-UBL.xslt")
SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}


@cache
def _processor() -> Any:
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


@cache
def _stylesheet(name: str) -> Any:
    return _processor().new_xslt30_processor().compile_stylesheet(
        stylesheet_file=str(RULES / name))


def schematron_report(xml: bytes, name: str) -> tuple[int, list[str]]:
    """(rules fired, failures) of one rule set on ``xml``."""
    node = _processor().parse_xml(xml_text=xml.decode("utf-8"))
    svrl = etree.fromstring(_stylesheet(name).transform_to_string(xdm_node=node).encode("utf-8"))
    failures = [
        f"{el.get('id')} ({el.get('flag')}) at {el.get('location')}: "
        f"{' '.join(el.xpath('string(svrl:text)', namespaces=SVRL).split())}"
        for el in svrl.xpath("//svrl:failed-assert | //svrl:successful-report",
                             namespaces=SVRL)
    ]
    return len(svrl.xpath("//svrl:fired-rule", namespaces=SVRL)), failures


@cache
def _schema(kind: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(RULES / "ubl-2.1-xsd" / "maindoc" /
                                           f"UBL-{kind}-2.1.xsd")))


def xsd_errors(xml: bytes) -> list[str]:
    """[] when the XML is a valid UBL 2.1 Invoice or CreditNote, else the errors."""
    doc = etree.fromstring(xml)
    kind = etree.QName(doc).localname
    if kind not in ("Invoice", "CreditNote"):
        return [f"not a UBL Invoice or CreditNote: {kind}"]
    schema = _schema(kind)
    return [] if schema.validate(doc) else [str(e) for e in schema.error_log]


def validation_failures(xml: bytes) -> list[str]:
    """Everything the XSD, the CEN and the Peppol rules find wrong with ``xml`` ([] = valid)."""
    found = xsd_errors(xml)
    for name in STYLESHEETS:
        fired, failures = schematron_report(xml, name)
        assert fired > 20, f"{name} fired only {fired} rules: did it run?"
        found += failures
    return found
