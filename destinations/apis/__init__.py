"""Clients that post journal entries to accounting APIs, one module per system, registered here.

An API module offers ``SYSTEM``, ``BASE_URL``, ``TOKEN_URL``, ``AUTHORIZE_URL``, ``SCOPE`` and
``api(client, settings) -> AccountingApi`` (see ``destinations.apis.base``); the next accounting
system is one new module and one line below.
"""

from __future__ import annotations

import importlib
from types import ModuleType

API_SYSTEMS: dict[str, str] = {
    "xero": "destinations.apis.xero",
    "qbo": "destinations.apis.qbo",
}


def api_module(system: str) -> ModuleType:
    return importlib.import_module(API_SYSTEMS[system])
