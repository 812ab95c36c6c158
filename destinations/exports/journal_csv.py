"""The generic journal CSV: JOURNAL.csv of INTERFACES §3, plus a JSON manifest per file.

UTF-8, comma, header row, RFC 4180 quoting and CRLF line ends; ISO dates; money as
``1234.50``. Both files are pure functions of the entries they carry: no clock,
so a rerun writes the same bytes.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import polars as pl

from schemas.money import MONEY_DTYPE, format_money

COLUMNS = ("entry_id", "journal_code", "entry_date", "account", "account_name", "partner_id", "partner_name",
           "description", "debit", "credit", "currency", "vat_code", "document_ref")
FORMAT_ID = "ledgerflow.journal-csv"


def file_name(prefix: str, tenant: str, period_key: str, sequence: int) -> str:
    """``journal-demo-2026-03-14.csv``; a supplementary file for the same period gets ``_2``, ``_3``..."""
    suffix = "" if sequence == 1 else f"_{sequence}"
    return f"{prefix}-{tenant}-{period_key}{suffix}.csv"


def render(lines: pl.DataFrame) -> bytes:
    """Journal lines (already in entry, line order) -> CSV bytes."""
    frame = lines.select(COLUMNS).with_columns(pl.col("debit", "credit").cast(MONEY_DTYPE),
                                               pl.col("entry_date").dt.strftime("%Y-%m-%d"))
    return frame.write_csv(line_terminator="\r\n", quote_style="necessary").encode("utf-8")


def manifest(*, tenant: str, system_id: str, batch_id: str, period_kind: str, period_start: date,
             period_end: date, file: str, content: bytes, lines: pl.DataFrame, currency: str,
             file_format: str = FORMAT_ID) -> bytes:
    """The batch's manifest (JSON): what the file holds, its hash and totals, for the receiving side."""
    from destinations.delivery.local import sha256_of

    debit = lines.get_column("debit").sum() if lines.height else Decimal(0)
    credit = lines.get_column("credit").sum() if lines.height else Decimal(0)
    document = {
        "format": file_format,
        "format_version": 1,
        "tenant": tenant,
        "system_id": system_id,
        "batch_id": batch_id,
        "period": {"kind": period_kind, "start": period_start.isoformat(), "end": period_end.isoformat()},
        "file": file,
        "sha256": sha256_of(content),
        "bytes": len(content),
        "entries": lines.get_column("entry_id").n_unique() if lines.height else 0,
        "lines": lines.height,
        "currency": currency,
        "total_debit": format_money(debit),
        "total_credit": format_money(credit),
        "entry_ids": lines.get_column("entry_id").unique(maintain_order=True).to_list() if lines.height else [],
    }
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


NAME = "csv"


def write(export) -> list[tuple[str, bytes]]:
    """``ledgerflow export csv``: JOURNAL.csv itself, for the period (``journal-<start>_<end>.csv``)."""
    lines = export.journal
    return [(f"journal-{export.period_start}_{export.period_end}.csv", render(lines))]
