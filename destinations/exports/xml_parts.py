"""What the XML formats (SAF-T NO, XAF) share: element text checked against XML 1.0 and the
schema's length, a terse SubElement, and the software version written into headers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from importlib import metadata

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
