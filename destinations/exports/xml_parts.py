"""What the XML formats (SAF-T NO, XAF) share: element text checked against XML 1.0 and the
schema's length, a terse SubElement, and the software version written into headers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from importlib import metadata
from xml.sax.saxutils import escape, quoteattr

from destinations.exports.ledger import ExportRefused

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def checked_text(value: object, limit: int, where: str, name: str, standard: str) -> str:
    """``value`` as element text, refused when XML cannot carry it or it exceeds the schema's length."""
    result = "" if value is None else str(value)
    bad = _NOT_XML.search(result)
    if bad:
        raise ExportRefused(f"{where}: {name} {result!r} contains {bad.group()!r}, which XML 1.0 cannot carry")
    if len(result) > limit:
        raise ExportRefused(f"{where}: {name} {result!r} has {len(result)} characters; {standard} allows {limit}")
    return result


def add(parent: ET.Element, tag: str, value: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if value is not None:
        element.text = value
    return element


def software_version() -> str:
    try:
        return metadata.version("ledgerflow")
    except metadata.PackageNotFoundError:
        return "unknown"


def prefixed_xml(root: ET.Element, prefixes: dict[str, str]) -> bytes:
    """The document with the prefixes its standard conventionally uses (``{namespace: "cbc:"}``, ``""``
    for the default namespace), indented, UTF-8. ElementTree's own serialiser picks ``ns0:`` names
    and refuses a default namespace beside unqualified attributes such as UBL's currencyID."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + "".join(_prefixed(root, prefixes, 0))).encode("utf-8")


def _prefixed(element: ET.Element, prefixes: dict[str, str], depth: int):
    namespace, _, local = element.tag[1:].partition("}")
    tag = prefixes[namespace] + local
    attributes = "".join(f" {key}={quoteattr(value)}" for key, value in element.attrib.items())
    indent = "  " * depth
    if len(element):
        yield f"{indent}<{tag}{attributes}>\n"
        for child in element:
            yield from _prefixed(child, prefixes, depth + 1)
        yield f"{indent}</{tag}>\n"
    else:
        yield f"{indent}<{tag}{attributes}>{escape(element.text or '')}</{tag}>\n"
