"""What ledgerflow posts to an accounting API, and the small interface every API module offers.

An API module (``xero``, ``qbo``; registered in ``destinations.apis``) turns journal entries into
its system's objects and posts them. It never decides *whether* to post: ``flows.post`` does, from
the export ledger. Every object carries an idempotency key derived from its id and content hash,
and a reference by which it can be found again (after a crash between posting and recording, the
next run looks it up instead of posting it twice).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class LineToPost:
    account: str
    account_name: str
    description: str
    debit: Decimal
    credit: Decimal
    vat_code: str | None
    partner_id: str | None
    partner_name: str | None


@dataclass(frozen=True)
class JournalToPost:
    entry_id: str
    entry_date: date
    journal_code: str
    description: str
    document_ref: str
    currency: str
    content_hash: str
    lines: tuple[LineToPost, ...]


@dataclass(frozen=True)
class Outcome:
    object_id: str
    status: str  # posted | found (already there: recorded, not posted again) | failed
    external_id: str | None = None
    message: str | None = None  # the remote system's message, for a failure


class AccountingApi(Protocol):
    system: str

    def find_journal(self, journal: JournalToPost) -> str | None:
        """The remote id of this journal if it is already there (looked up by its reference)."""

    def post_journals(self, journals: list[JournalToPost]) -> list[Outcome]:
        """Post the journals (in as few calls as the API allows); one outcome per journal, in order."""

    def close(self) -> None: ...


def idempotency_key(system: str, object_id: str, content_hash: str, length: int) -> str:
    """The same object with the same content always gets the same key; different content, another."""
    digest = hashlib.sha256(f"{system}\x1f{object_id}\x1f{content_hash}".encode()).hexdigest()
    return f"lf-{digest}"[:length]


def short_reference(object_id: str, length: int = 21) -> str:
    """A reference of at most ``length`` characters for fields that short (QBO's DocNumber: 21):
    ``LF`` + base32 of the id's hash, the same for the same id."""
    digest = base64.b32encode(hashlib.sha256(object_id.encode()).digest()).decode().rstrip("=")
    return ("LF" + digest)[:length]


def json_bytes(document: object) -> bytes:
    """JSON with money as exact numbers: a Decimal is written as the shortest float text, which is
    checked to read back as the same decimal (true below 10^13 with 2 decimals), else refused."""

    def exact(value: object) -> object:
        if isinstance(value, Decimal):
            number = float(value)
            if Decimal(repr(number)) != value:
                raise ValueError(f"{value} cannot be written as an exact JSON number")
            return number
        if isinstance(value, dict):
            return {key: exact(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [exact(item) for item in value]
        return value

    return json.dumps(exact(document), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
