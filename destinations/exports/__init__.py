"""Export file formats, one module each, registered here (the only place).

A ledger format module offers ``NAME`` and ``write(export: LedgerExport) -> list[tuple[str, bytes]]``
(see ``destinations.exports.ledger``); an e-invoice format module offers ``NAME`` and
``write_invoices(invoices, company) -> list[tuple[str, bytes]]`` (see ``destinations.exports.invoices``).
Modules are imported when used, so the CLI stays fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

LEDGER_FORMATS: dict[str, str] = {
    "csv": "destinations.exports.journal_csv",
    "fec": "destinations.exports.fec",
    "sie4": "destinations.exports.sie4",
    "datev": "destinations.exports.datev",
    "saft-no": "destinations.exports.saft_no",
    "xaf": "destinations.exports.xaf",
    "beancount": "destinations.exports.beancount",
    "hledger": "destinations.exports.hledger",
}
INVOICE_FORMATS: dict[str, str] = {
    "ubl": "destinations.exports.ubl",
    "facturx": "destinations.exports.facturx",
}


def ledger_format(name: str) -> ModuleType | None:
    """The module writing ledger format ``name``, or None when ledgerflow has no such format (yet)."""
    return _module(LEDGER_FORMATS.get(name))


def invoice_format(name: str) -> ModuleType | None:
    """The module writing e-invoice format ``name``, or None when ledgerflow has no such format (yet)."""
    return _module(INVOICE_FORMATS.get(name))


def _module(module: str | None) -> ModuleType | None:
    if module is None:
        return None
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def available() -> list[str]:
    return [name for name in LEDGER_FORMATS if ledger_format(name) is not None] + \
        [name for name in INVOICE_FORMATS if invoice_format(name) is not None]
