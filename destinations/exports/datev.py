"""DATEV-Format (EXTF) Buchungsstapel: header version 700, data category 21, format version 13.

One file, ``EXTF_Buchungsstapel_<start>_<end>.csv`` (ISO dates of the period), Windows-1252, CRLF,
``;`` between fields, text fields in double quotes (a quote inside doubled), numbers bare:

* line 1, the 31 header fields: ``"EXTF";700;21;"Buchungsstapel";13``, created (``generated_at`` as
  YYYYMMDDHHMMSSFFF), origin ``"LF"``, exported by ``"ledgerflow"``, Beraternummer and Mandantennummer
  (``[datev] consultant_number`` / ``client_number``), WJ-Beginn (the fiscal year from ``fiscal_year_start``),
  Sachkontenlänge (``account_length``), Datum vom / bis (the period), Bezeichnung, Buchungstyp 1
  (Finanzbuchführung), Festschreibung 0 (the tax adviser reviews and locks the batch), WKZ (company currency),
  SKR ``03``/``04`` when ``chart`` names one;
* line 2, the 125 column headings of format version 13;
* one line per booking: Umsatz ``n,nn`` (always > 0), Soll/Haben-Kennzeichen of Konto, WKZ Umsatz, Konto,
  Gegenkonto, BU-Schlüssel (empty: VAT is either booked as its own line or left to an automatic account),
  Belegdatum TTMM, Belegfeld 1 (``document_ref``), Buchungstext (``description``); other columns empty.

DATEV books pairs (Konto / Gegenkonto), a journal entry may have any number of lines. How an entry
becomes pairs:

1. Automatic accounts (``[datev] automatic_accounts``): DATEV computes the VAT on these itself, so a line
   on one is exported gross. Its ``vat_code`` names the VAT account; the entry's lines on that account are
   not exported and their amount is added to the automatic lines (shared in proportion to the net amounts,
   the last line takes the rounding remainder, so the entry still balances to the cent).
2. Greedy pairing: debit lines and credit lines, each in journal order, are walked together; each step
   books the smaller of the two open amounts from the current debit line to the current credit line and
   moves on from the line that is used up. Amounts therefore add up exactly, and an entry with one line
   on a side (the usual invoice or payment) becomes one booking per line of the other side, each against
   that single line.
3. Konto is the line from the side with more lines (the debit side when both have as many), Gegenkonto
   the line it is paired with; Soll/Haben-Kennzeichen is Konto's side. Buchungstext and Belegfeld 1 come
   from the Konto line, else from the Gegenkonto line.

Refused (``ExportRefused``, naming entry, field and value): a COMPANY.toml without ``[datev]``; a period
across two fiscal years (one Buchungsstapel belongs to one WJ); an account that is not digits or longer
than ``account_length``; a line in another currency than the company's; a character outside Windows-1252
or a control character in Buchungstext; a ``document_ref`` with characters outside ``A-Z a-z 0-9 $ & % * + - /``
or longer than 36; an Umsatz above 10 integer digits; an automatic-account line without a known
``vat_code``, without a VAT line to fold in, or sharing its VAT account with a non-automatic line (DATEV
could not split that tax). Buchungstext is a label and is cut to its 60 characters; Belegfeld 1 is the key
DATEV matches open items on, so it is never altered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from itertools import groupby

from destinations.exports.ledger import ExportRefused, LedgerExport
from schemas.company import Company, DatevSettings

NAME = "datev"
ENCODING = "cp1252"
CENT = Decimal("0.01")
BUCHUNGSTEXT_LENGTH = 60
BELEGFELD1 = re.compile(r"[A-Za-z0-9$&%*+\-/]{0,36}")
UMSATZ_MAX = Decimal("9999999999.99")


def _numbered(kind: str, count: int) -> tuple[str, ...]:
    return tuple(f"{kind} – {part} {n}" for n in range(1, count + 1) for part in ("Art", "Inhalt"))


HEADINGS: tuple[str, ...] = (
    "Umsatz (ohne Soll/Haben-Kz)", "Soll/Haben-Kennzeichen", "WKZ Umsatz", "Kurs", "Basisumsatz",
    "WKZ Basisumsatz", "Konto", "Gegenkonto (ohne BU-Schlüssel)", "BU-Schlüssel", "Belegdatum", "Belegfeld 1",
    "Belegfeld 2", "Skonto", "Buchungstext", "Postensperre", "Diverse Adressnummer", "Geschäftspartnerbank",
    "Sachverhalt", "Zinssperre", "Beleglink", *_numbered("Beleginfo", 8), "KOST1 – Kostenstelle",
    "KOST2 – Kostenstelle", "Kost Menge", "EU-Land u. USt-IdNr.", "EU-Steuersatz",
    "Abw. Versteuerungsart", "Sachverhalt L+L", "Funktionsergänzung L+L", "BU 49 Hauptfunktionstyp",
    "BU 49 Hauptfunktionsnummer", "BU 49 Funktionsergänzung", *_numbered("Zusatzinformation", 20), "Stück",
    "Gewicht", "Zahlweise", "Forderungsart", "Veranlagungsjahr", "Zugeordnete Fälligkeit", "Skontotyp",
    "Auftragsnummer", "Buchungstyp", "USt-Schlüssel (Anzahlungen)", "EU-Mitgliedstaat (Anzahlungen)",
    "Sachverhalt L+L (Anzahlungen)", "EU-Steuersatz (Anzahlungen)", "Erlöskonto (Anzahlungen)", "Herkunft-Kz",
    "Buchungs GUID", "KOST-Datum", "SEPA-Mandatsreferenz", "Skontosperre", "Gesellschaftername",
    "Beteiligtennummer", "Identifikationsnummer", "Zeichnernummer", "Postensperre bis",
    "Bezeichnung SoBil-Sachverhalt", "Kennzeichen SoBil-Buchung", "Festschreibung", "Leistungsdatum",
    "Datum Zuord. Steuerperiode", "Fälligkeit", "Generalumkehr (GU)", "Steuersatz", "Land", "Abrechnungsreferenz",
    "BVV-Position", "EU-Land u. UStID (Ursprung)", "EU-Steuersatz (Ursprung)", "Abw. Skontokonto",
)
# Columns (1-based) DATEV types as text: written in quotes even when empty, the others bare.
TEXT_COLUMNS = frozenset({2, 3, 6, 9, 11, 12, 14, 16, 20, *range(21, 39), 40, 42, *range(48, 88), 91, 95, 96, 98,
                          102, 103, 105, 107, 109, 110, 112, 118, 120, 121, 123})
COLUMN = {heading: number for number, heading in enumerate(HEADINGS, start=1)}


@dataclass(frozen=True)
class _Line:
    account: str
    amount: Decimal  # signed: debit > 0, credit < 0
    currency: str
    vat_code: str
    description: str
    document_ref: str


@dataclass(frozen=True)
class Booking:
    """One DATEV booking line: ``amount`` on Konto's side ``sh`` (S/H), the opposite on Gegenkonto."""

    entry_id: str
    amount: Decimal
    sh: str
    konto: str
    gegenkonto: str
    currency: str
    belegdatum: date
    belegfeld1: str
    buchungstext: str


def file_name(period_start: date, period_end: date) -> str:
    return f"EXTF_Buchungsstapel_{period_start.isoformat()}_{period_end.isoformat()}.csv"


def settings_of(company: Company) -> DatevSettings:
    if company.datev is None:
        raise ExportRefused("COMPANY.toml has no [datev] table: the DATEV export needs datev.consultant_number "
                            "(Beraternummer) and datev.client_number (Mandantennummer)")
    return company.datev


def write(export: LedgerExport) -> list[tuple[str, bytes]]:
    """``ledgerflow export datev``: one EXTF Buchungsstapel for the period."""
    settings = settings_of(export.company)
    fiscal_start, fiscal_end = export.fiscal_year()
    if export.period_end > fiscal_end:
        raise ExportRefused(f"period {export.period_start}..{export.period_end} spans two fiscal years (the one "
                            f"starting {fiscal_start} ends {fiscal_end}): a DATEV Buchungsstapel belongs to one "
                            f"fiscal year, export each part separately")
    bookings = bookings_of(export, settings)
    lines = [_header(export, settings, fiscal_start), ";".join(HEADINGS)]
    lines += [_booking_line(booking, settings) for booking in bookings]
    content = "".join(line + "\r\n" for line in lines)
    return [(file_name(export.period_start, export.period_end), content.encode(ENCODING))]


def _header(export: LedgerExport, settings: DatevSettings, fiscal_start: date) -> str:
    created = export.generated_at.strftime("%Y%m%d%H%M%S") + f"{export.generated_at.microsecond // 1000:03d}"
    skr = re.fullmatch(r"SKR ?(\d\d)", (export.company.chart or "").upper())
    label = f"ledgerflow {export.period_start:%Y%m%d}-{export.period_end:%Y%m%d}"
    fields = [
        _text("EXTF"), "700", "21", _text("Buchungsstapel"), "13", created, "", _text("LF"), _text("ledgerflow"),
        _text(""), str(settings.consultant_number), str(settings.client_number), f"{fiscal_start:%Y%m%d}",
        str(settings.account_length), f"{export.period_start:%Y%m%d}", f"{export.period_end:%Y%m%d}", _text(label),
        _text(""), "1", "", "0", _text(export.company.currency), _text(""), _text(""), _text(""), _text(""),
        _text(skr.group(1) if skr else ""), "", "", _text(""), _text(""),
    ]
    return ";".join(fields)


def _booking_line(booking: Booking, settings: DatevSettings) -> str:
    values = {
        "Umsatz (ohne Soll/Haben-Kz)": f"{booking.amount:.2f}".replace(".", ","),
        "Soll/Haben-Kennzeichen": booking.sh,
        "WKZ Umsatz": booking.currency,
        "Konto": booking.konto,
        "Gegenkonto (ohne BU-Schlüssel)": booking.gegenkonto,
        "Belegdatum": f"{booking.belegdatum:%d%m}",
        "Belegfeld 1": booking.belegfeld1,
        "Buchungstext": booking.buchungstext,
    }
    fields = [""] * len(HEADINGS)
    for heading, value in values.items():
        fields[COLUMN[heading] - 1] = value
    return ";".join(_text(value) if number in TEXT_COLUMNS else value
                    for number, value in enumerate(fields, start=1))


def _text(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def bookings_of(export: LedgerExport, settings: DatevSettings) -> list[Booking]:
    """The journal as DATEV bookings, entry by entry (rules in the module docstring), each checked."""
    company = export.company
    bookings: list[Booking] = []
    rows = export.journal.iter_rows(named=True)
    for entry_id, entry_rows in groupby(rows, key=lambda row: row["entry_id"]):
        entry_rows = list(entry_rows)
        lines = [_Line(row["account"], row["debit"] - row["credit"], row["currency"], row["vat_code"] or "",
                       row["description"] or "", row["document_ref"] or "") for row in entry_rows]
        lines = _fold_automatic_vat(entry_id, lines, company, settings)
        for booking in _pairs(entry_id, entry_rows[0]["entry_date"], lines):
            _check(booking, company, settings)
            bookings.append(booking)
    return bookings


def _fold_automatic_vat(entry_id: str, lines: list[_Line], company: Company,
                        settings: DatevSettings) -> list[_Line]:
    automatic = set(settings.automatic_accounts)
    vat_codes = company.vat_by_code
    by_vat_account: dict[str, list[int]] = {}
    for index, line in enumerate(lines):
        if line.account not in automatic:
            continue
        vat = vat_codes.get(line.vat_code)
        if vat is None:
            what = f"vat_code {line.vat_code!r} is not in COMPANY.toml [[vat_codes]]" if line.vat_code else "no vat_code"
            raise ExportRefused(f"entry {entry_id}, account {line.account}: a DATEV automatic account "
                                f"(datev.automatic_accounts) is exported gross, but the line has {what}, so the "
                                f"VAT to include is unknown")
        by_vat_account.setdefault(vat.account, []).append(index)
    amounts = [line.amount for line in lines]
    folded: set[int] = set()
    for vat_account, indices in by_vat_account.items():
        _refuse_shared_vat_account(entry_id, lines, vat_account, automatic, vat_codes)
        vat_lines = [i for i, line in enumerate(lines) if line.account == vat_account]
        if not vat_lines and any(vat_codes[lines[i].vat_code].rate for i in indices):
            raise ExportRefused(f"entry {entry_id}, account {lines[indices[0]].account}: automatic account with "
                                f"vat_code {lines[indices[0]].vat_code} but no line on its VAT account "
                                f"{vat_account}; DATEV would compute VAT the journal does not have")
        tax = sum((lines[i].amount for i in vat_lines), Decimal(0))
        net = sum((lines[i].amount for i in indices), Decimal(0))
        remainder = tax
        for i in indices[:-1]:
            share = (tax * lines[i].amount / net).quantize(CENT, ROUND_HALF_UP) if net else Decimal(0)
            amounts[i] += share
            remainder -= share
        amounts[indices[-1]] += remainder
        folded.update(vat_lines)
    return [replace(line, amount=amount) for index, (line, amount) in enumerate(zip(lines, amounts))
            if index not in folded and amount != 0]


def _refuse_shared_vat_account(entry_id, lines, vat_account, automatic, vat_codes) -> None:
    for line in lines:
        vat = vat_codes.get(line.vat_code)
        if line.account not in automatic and line.account != vat_account and vat and vat.account == vat_account:
            raise ExportRefused(f"entry {entry_id}, account {line.account}: its vat_code {line.vat_code} books "
                                f"VAT on {vat_account} together with an automatic account, and DATEV cannot "
                                f"split that tax; make {line.account} automatic too or book it in its own entry")


def _pairs(entry_id: str, entry_date: date, lines: list[_Line]) -> list[Booking]:
    debits = [line for line in lines if line.amount > 0]
    credits = [line for line in lines if line.amount < 0]
    konto_is_debit = len(debits) >= len(credits)
    bookings = []
    d = c = 0
    open_debit = debits[0].amount if debits else Decimal(0)
    open_credit = -credits[0].amount if credits else Decimal(0)
    while d < len(debits) and c < len(credits):
        amount = min(open_debit, open_credit)
        konto, gegenkonto = (debits[d], credits[c]) if konto_is_debit else (credits[c], debits[d])
        bookings.append(Booking(
            entry_id=entry_id, amount=amount, sh="S" if konto_is_debit else "H", konto=konto.account,
            gegenkonto=gegenkonto.account, currency=konto.currency, belegdatum=entry_date,
            belegfeld1=konto.document_ref or gegenkonto.document_ref,
            buchungstext=(konto.description or gegenkonto.description)[:BUCHUNGSTEXT_LENGTH]))
        open_debit -= amount
        open_credit -= amount
        if open_debit == 0:
            d += 1
            open_debit = debits[d].amount if d < len(debits) else Decimal(0)
        if open_credit == 0:
            c += 1
            open_credit = -credits[c].amount if c < len(credits) else Decimal(0)
    assert d == len(debits) and c == len(credits), f"entry {entry_id} does not balance"
    return bookings


def _check(booking: Booking, company: Company, settings: DatevSettings) -> None:
    where = f"entry {booking.entry_id}"
    for field, account in (("Konto", booking.konto), ("Gegenkonto", booking.gegenkonto)):
        if not account.isascii() or not account.isdigit():
            raise ExportRefused(f"{where}, account {account!r} ({field}): DATEV accounts are digits only")
        if len(account) > settings.account_length:
            raise ExportRefused(f"{where}, account {account} ({field}): {len(account)} digits, longer than "
                                f"datev.account_length = {settings.account_length}")
    if booking.currency != company.currency:
        raise ExportRefused(f"{where}, field currency: {booking.currency} is not the company currency "
                            f"{company.currency}; the Buchungsstapel carries no exchange rates")
    if booking.amount > UMSATZ_MAX:
        raise ExportRefused(f"{where}, field Umsatz: {booking.amount} exceeds DATEV's 10 integer digits")
    if not BELEGFELD1.fullmatch(booking.belegfeld1):
        raise ExportRefused(f"{where}, field document_ref (Belegfeld 1): {booking.belegfeld1!r} must be at most "
                            f"36 characters from A-Z a-z 0-9 $ & % * + - /")
    for char in booking.buchungstext:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise ExportRefused(f"{where}, field description (Buchungstext): control character {char!r} "
                                f"in {booking.buchungstext!r}")
        try:
            char.encode(ENCODING)
        except UnicodeEncodeError:
            raise ExportRefused(f"{where}, field description (Buchungstext): {char!r} (U+{ord(char):04X}) in "
                                f"{booking.buchungstext!r} is not in Windows-1252, DATEV's encoding") from None
