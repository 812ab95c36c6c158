"""FEC, the French Fichier des Écritures Comptables (article A47 A-1 of the Livre des procédures fiscales).

One flat file per fiscal year, named ``<SIREN>FEC<closing date AAAAMMJJ>.txt``: a header row with the
18 fields of A47 A-1 in their legal order, then one row per journal line; tab separated, CRLF, dates
``AAAAMMJJ``, amounts with a decimal comma and no thousands separator, both Debit and Credit filled.
Encoded ISO-8859-15, one of the character sets A47 A-1 allows (ASCII, ISO 8859-15, EBCDIC); it carries
French accents and the euro sign, and anything outside it is refused rather than replaced.

EcritureNum numbers each journal's entries 1, 2, 3... in date order (A47 A-1 wants a continuous
sequence per journal). The journal carries no validation timestamp, so ValidDate is the entry date;
no document date either, so PieceDate is the entry date too. Amounts are in euros, so Montantdevise
and Idevise stay empty, and lettering (EcritureLet, DateLet) is not tracked by ledgerflow.
"""

from __future__ import annotations

import re
from decimal import Decimal

import polars as pl

from destinations.exports.ledger import ExportRefused, LedgerExport

NAME = "fec"
ENCODING = "iso-8859-15"
COLUMNS = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum",
           "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
           "ValidDate", "Montantdevise", "Idevise")
# JournalLib is mandatory and JOURNAL.csv has codes only; COMPANY.toml's [fec] journal_names overrides these.
JOURNAL_NAMES = {
    "SAL": "Ventes", "VT": "Ventes", "VE": "Ventes", "PUR": "Achats", "ACH": "Achats", "HA": "Achats",
    "BNK": "Banque", "BQ": "Banque", "CSH": "Caisse", "CAI": "Caisse", "OD": "Opérations diverses",
    "AN": "À nouveaux",
}
# Customer (411) and supplier (401) control accounts carry the partner as auxiliary account.
AUXILIARY_PREFIXES = ("411", "401")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def siren(export: LedgerExport) -> str:
    registration_id = (export.company.registration_id or "").replace(" ", "")
    if not re.fullmatch(r"\d{9}|\d{14}", registration_id):
        raise ExportRefused(f"COMPANY.toml: registration_id {export.company.registration_id!r}: the FEC file name "
                            "needs the SIREN (9 digits, or a 14-digit SIRET)")
    return registration_id[:9]


def file_name(export: LedgerExport) -> str:
    """``303265045FEC20261231.txt``: SIREN and the fiscal-year closing date (A47 A-1)."""
    return f"{siren(export)}FEC{export.fiscal_year()[1]:%Y%m%d}.txt"


def write(export: LedgerExport) -> list[tuple[str, bytes]]:
    name = file_name(export)
    closing = export.fiscal_year()[1]
    if export.period_end > closing:
        raise ExportRefused(f"period {export.period_start}..{export.period_end} runs past the fiscal-year closing "
                            f"date {closing}: a FEC covers one fiscal year")
    if export.company.currency != "EUR":
        raise ExportRefused(f"COMPANY.toml: currency {export.company.currency!r}: FEC amounts are in euros (EUR)")
    rows = ["\t".join(COLUMNS)]
    rows += ["\t".join(_check_text(row, field, value) for field, value in zip(COLUMNS, fields))
             for row, fields in _rows(export)]
    text = "\r\n".join(rows) + "\r\n"
    return [(name, text.encode(ENCODING))]


def _rows(export: LedgerExport):
    configured = _settings(export).get("journal_names", {})
    if not isinstance(configured, dict) or not all(isinstance(v, str) for v in configured.values()):
        raise ExportRefused(f"COMPANY.toml: [fec] journal_names {configured!r}: a table of journal code = \"name\"")
    journal_names = {**JOURNAL_NAMES, **configured}
    account_names = export.company.account_names
    numbers: dict[str, dict[str, int]] = {}
    # A line without a description takes its entry's first one (EcritureLib is mandatory).
    entry_text = dict(export.journal.group_by("entry_id").agg(pl.col("description").drop_nulls().first()).iter_rows())
    for row in export.journal.iter_rows(named=True):
        code, entry = row["journal_code"], row["entry_id"]
        per_journal = numbers.setdefault(code, {})
        number = per_journal.setdefault(entry, len(per_journal) + 1)
        if code not in journal_names:
            raise ExportRefused(f"entry {entry}: journal_code {code!r} has no JournalLib: add it to COMPANY.toml "
                                f"[fec] journal_names (e.g. {code} = \"Ventes\")")
        if not re.match(r"^\d{3}", row["account"]):
            raise ExportRefused(f"entry {entry}: account {row['account']!r}: FEC CompteNum must start with "
                                "three digits (PCG)")
        if row["currency"] != "EUR":
            raise ExportRefused(f"entry {entry}: currency {row['currency']!r}: FEC amounts are in euros (EUR)")
        account_name = row["account_name"] or account_names.get(row["account"])
        if not account_name:
            raise ExportRefused(f"entry {entry}: account {row['account']}: no account_name and not in COMPANY.toml "
                                "[[accounts]] (CompteLib is mandatory)")
        description = row["description"] or entry_text[entry]
        if not description:
            raise ExportRefused(f"entry {entry}: description is empty on every line (EcritureLib is mandatory)")
        aux_number, aux_name = _auxiliary(row)
        day = f"{row['entry_date']:%Y%m%d}"
        yield row, (code, journal_names[code], str(number), day, row["account"], account_name, aux_number,
                    aux_name, row["document_ref"] or entry, day, description, _amount(row["debit"]),
                    _amount(row["credit"]), "", "", day, "", "")


def _auxiliary(row: dict) -> tuple[str, str]:
    if not row["account"].startswith(AUXILIARY_PREFIXES):
        return "", ""
    partner_id, partner_name = row["partner_id"] or "", row["partner_name"] or ""
    if bool(partner_id) != bool(partner_name):
        missing = "partner_name" if partner_id else "partner_id"
        raise ExportRefused(f"entry {row['entry_id']}: account {row['account']}: {missing} is empty but "
                            "CompAuxNum and CompAuxLib go together")
    return partner_id, partner_name


def _settings(export: LedgerExport) -> dict:
    return (export.company.model_extra or {}).get("fec") or {}


def _amount(value: Decimal) -> str:
    return f"{Decimal(value):.2f}".replace(".", ",")


def _check_text(row: dict, field: str, value: str) -> str:
    if _CONTROL.search(value):
        raise ExportRefused(f"entry {row['entry_id']}: {field} {value!r} contains a tab or line break, "
                            "which FEC uses as separators")
    try:
        value.encode(ENCODING)
    except UnicodeEncodeError as exc:
        raise ExportRefused(f"entry {row['entry_id']}: {field} {value!r}: character {value[exc.start]!r} "
                            f"is not in {ENCODING.upper()}, the FEC character set") from None
    return value
