"""Checks the JSON bodies sent to the fake QuickBooks Online against Intuit's official V3 XSD.

Intuit publishes no OpenAPI description; its JSON uses the element names of the XSD
(``../shared/specs/qbo``). So a JSON body is turned into the XML element tree the XSD
describes and validated with ``xmlschema``:

* a JSON key is an element, a JSON array is the element repeated;
* keys that the complexType declares as attributes (``domain``, ``sparse``, ``status``;
  ``bId`` and ``operation`` on a batch item) become attributes, and ``value`` is the text of
  a simple-content type (``{"value": "35", "name": "Checking"}`` is a ``ReferenceType``);
* JSON objects have no order but XSD sequences do, so children are put in the order of the
  complexType's content model (base type first) — only real problems are then reported;
* a member of a substitution group (``JournalEntry`` inside a ``BatchItemRequest``, which
  names the abstract ``IntuitObject``) takes the place of the group's head.

What is checked: unknown elements and attributes, values that are not of the element's type
(a non-decimal ``Amount``, a ``PostingType`` outside Debit/Credit, a malformed ``TxnDate``),
an element repeated more often than allowed, missing required elements, enumerations.

What cannot be checked this way:

* JSON types: ``"Amount": "100.00"`` (a string) and ``"Amount": 100.0`` become the same XML
  text, so both pass; QBO's JSON parser accepts both as well.
* ``null``: a key whose value is ``null`` is treated as absent.
* Rules that live only in the XSD's prose annotations or in the API docs: "Required: ALL",
  maximum string lengths ("Max. length: 4000 characters"), which fields are read-only or
  required per operation (create vs. sparse update), minor-version differences. The fake's
  business rules (balanced journal entries, existing references) cover what tests need.
* ``sparse`` is not JSON-only: the XSD declares it (with ``domain`` and ``status``) as an
  attribute of every entity, so it is checked as an ``xs:boolean``.
* JSON-only envelope fields (``time`` in replies, the ``minorversion`` query parameter) are
  not part of any XSD element and are not looked at.

The schema is built once per process (about 0.7 s): ``IntuitRestServiceDef.xsd`` is the
entry point because it declares the global elements (``JournalEntry``, ``IntuitBatchRequest``)
and includes ``Finance.xsd``, which includes the base and name types.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from xml.etree.ElementTree import Element

NAMESPACE = "http://schema.intuit.com/finance/v3"
QBO_XSD_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "qbo"
_ENTRY_POINT = "IntuitRestServiceDef.xsd"
_LAST = float("inf")  # not money: a sort key; children the XSD does not declare go last, where xmlschema reports them


@dataclass(frozen=True)
class SpecViolation:
    """One way a request differs from the official description; ``path`` is a JSON path."""

    entity: str
    path: str
    message: str


@functools.cache
def qbo_schema(xsd_dir: Path = QBO_XSD_DIR):
    """The V3 schema, built once per process and directory."""
    import xmlschema

    entry_point = Path(xsd_dir) / _ENTRY_POINT
    if not entry_point.is_file():
        raise FileNotFoundError(f"{entry_point} is missing: the QuickBooks Online XSD is expected in "
                                "../shared/specs/qbo beside the checkout")
    return xmlschema.XMLSchema(str(entry_point))


def check_payload(entity: str, payload: object, xsd_dir: Path = QBO_XSD_DIR) -> list[SpecViolation]:
    """What is wrong with ``payload`` as a ``<entity>`` element (``JournalEntry``, ``IntuitBatchRequest``, ...)."""
    schema = qbo_schema(xsd_dir)
    if entity not in schema.elements:
        return [SpecViolation(entity, "", f"{entity} is not a global element of the QBO V3 schema")]
    if not isinstance(payload, dict):
        return [SpecViolation(entity, "", f"the body must be a JSON object, got {type(payload).__name__}")]
    paths: dict[Element, str] = {}
    root = _element(entity, payload, schema.elements[entity], "", paths)
    return [_violation(entity, error, paths) for error in schema.iter_errors(root)]


def _element(name: str, value: object, xsd_element, path: str, paths: dict[Element, str]) -> Element:
    element = Element(f"{{{NAMESPACE}}}{name}")
    paths[element] = path
    xsd_type = xsd_element.type if xsd_element is not None else None
    if isinstance(value, dict):
        _fill_object(element, value, xsd_type, path, paths)
    else:
        element.text = _text(value)
    return element


def _fill_object(element: Element, value: dict, xsd_type, path: str, paths: dict[Element, str]) -> None:
    attributes = _attribute_names(xsd_type)
    members = _members(xsd_type)
    children = []
    for key, item in value.items():
        if item is None:
            continue
        if key in attributes and not isinstance(item, (dict, list)):
            element.set(key, _text(item))
        elif key == "value" and _has_simple_content(xsd_type):
            element.text = _text(item)
        else:
            position, xsd_child = members.get(key, (_LAST, None))
            children.append((position, key, item, xsd_child))
    for _, key, item, xsd_child in sorted(children, key=lambda child: child[0]):
        child_path = f"{path}.{key}" if path else key
        items = item if isinstance(item, list) else [item]
        if not items and xsd_child is None:
            items = [{}]  # an empty array under an undeclared name is still an undeclared name
        for index, each in enumerate(items):
            each_path = f"{child_path}[{index}]" if isinstance(item, list) else child_path
            element.append(_element(key, each, xsd_child, each_path, paths))


def _is_complex(xsd_type) -> bool:
    return xsd_type is not None and xsd_type.is_complex()


def _has_simple_content(xsd_type) -> bool:
    return _is_complex(xsd_type) and xsd_type.has_simple_content()


def _attribute_names(xsd_type) -> set[str]:
    return set(xsd_type.attributes) if _is_complex(xsd_type) else set()


@functools.cache
def _members(xsd_type) -> dict[str, tuple[int, object]]:
    """Child name -> (position in the content model, XSD element), substitutes in their head's place."""
    if not _is_complex(xsd_type) or xsd_type.has_simple_content() or xsd_type.content is None:
        return {}
    members: dict[str, tuple[int, object]] = {}
    for position, xsd_element in enumerate(xsd_type.content.iter_elements()):
        candidates = list(xsd_element.iter_substitutes()) if xsd_element.abstract else [xsd_element]
        for candidate in candidates:
            members.setdefault(candidate.local_name, (position, candidate))
    return members


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # 1e-05 is JSON but not xs:decimal; the number itself is fine
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


_QUALIFIED = re.compile(r"\{" + re.escape(NAMESPACE) + r"\}")
_UNEXPECTED = re.compile(r"Unexpected child with tag '(?:\{[^}]*\})?([^']+)'")
_PYTHON_CLASS = re.compile(r"for <class '[^']*'>")


def _violation(entity: str, error, paths: dict[Element, str]) -> SpecViolation:
    """A violation named by JSON path; an unexpected child is named itself, not its parent."""
    element = getattr(error, "elem", None)
    path = paths.get(element, "") if element is not None else ""
    reason = " ".join(_QUALIFIED.sub("", error.reason or str(error)).split())
    unexpected = _UNEXPECTED.search(error.reason or "")
    if unexpected:
        name = unexpected.group(1)
        return SpecViolation(entity, f"{path}.{name}" if path else name,
                             f"unexpected element {name!r}: not declared there, or repeated more often than allowed")
    type_name = getattr(error.validator, "prefixed_name", None)
    if type_name:
        reason = _PYTHON_CLASS.sub(f"for {type_name}", reason)
    return SpecViolation(entity, path, reason)
