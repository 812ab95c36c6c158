"""SWIFT MT940 customer statements, as banks really send them.

One ``Statement`` per ``:20:`` … ``:62F:``/``:62M:`` block, one ``BankEntry`` per ``:61:``.
The layout is SWIFT's (Category 9, MT940): ``:20:`` reference, ``:21:`` related reference,
``:25:`` account, ``:28C:`` statement/page number, ``:60F:``/``:60M:`` opening balance,
``:61:`` statement line with its ``:86:`` information, ``:62F:``/``:62M:`` closing balance,
``:64:``/``:65:`` available balances (not lines), ``:86:`` after the closing balance
(information for the whole statement, ignored). ``:NS:`` (German non-SWIFT) is skipped.

What real files do, and what we do about it:

* **Envelope.** The text may sit in SWIFT blocks ``{1:…}{2:…}{3:{108:…}}{4:`` … ``-}{5:…}``
  or come bare; a file holds any number of messages, each ended by a ``-`` line. Banks put
  their own lines around messages (Danske Bank: a free-text preamble; ABN AMRO ``ABNANL2A``
  / ``940``; Van Lanschot ``0000 01FVLBNL22AXXX00042`` and ``-XXX``): text outside a
  field is ignored. ING wraps values anywhere, even leaving a lone ``-`` inside an
  ``:86:`` (``MND`` / ``-`` / ``EV01``), so a ``-`` line only ends the message when the
  next line is not a continuation line. Lines end in CRLF, LF or CR.
* **Encoding.** Officially the SWIFT character set; in practice UTF-8, Windows-1252 or
  ISO-8859-1 (German umlauts), read in that order (``text.SINGLE_BYTE``).
* **Statement id.** Banks reuse ``:20:`` (``MT940``, ``STARTUMS``, ``ABN AMRO BANK NV``, the
  same value on every page), so the id is ``:20:``, the account, ``:28C:`` and the closing
  date joined by ``:``. ``:28C:`` may be broken over two lines (ING ``0000`` / ``0``).
* **Pages.** A statement continued over several messages (``:60M:`` … ``:62M:``) is one
  ``Statement`` per page, so each page's balance check holds on its own; a page without its
  own ``:20:``/``:25:`` keeps the previous page's.
* **Account.** ``:25:`` is an IBAN, ``BIC/account``, an IBAN plus a currency suffix
  (ING ``NL77INGB0574908765EUR``), an old account with one (Rabobank ``1291.99.348EUR``,
  ``0800… EUR``; Raiffeisen ``…/HUF``) or German ``bankcode/accountnumber``. The IBAN is
  reported alone; anything else as printed, without the currency.
* **Balances** ``C``/``D``, YYMMDD, currency, amount. Seen without the currency on the
  closing balance (``C020315105000,00``): the opening balance's then. Amounts may be
  zero-padded beyond SWIFT's 15 digits (``0000000000000000,00``) and use ``.`` (Rabobank).
* **``:61:``** (SWIFT: ``6!n[4!n]2a[1!a]15d1!a3!c16x[//16x]`` then ``[34x]`` on the next
  line): value date YYMMDD; the optional entry date MMDD is the booking date, its year
  taken from the value date and moved across New Year when the months are more than half
  a year apart (value 091231, entry 0101 is 2010-01-01). German banks date interest on a
  30/360 calendar (value date 30 February): a day past the month's end is its last day.
  Mark ``C``/``D``; ``RC`` (reversal of a credit) is a debit and ``RD`` a credit. A letter
  after the mark is the funds code (third letter of the currency: ``CR``/``DR`` for EUR,
  Danske ``DK``, HSBC ``DD`` for HKD), not part of the mark. Amounts use a decimal comma
  and may omit the decimals (``80,``). Transaction type ``N``/``F``/``S`` + 3 characters
  (Triodos pads ``NIT ``); Penta writes ``NONREF`` with no type, Zenith Bank no type at all.
  Customer reference up to ``//``, then the bank reference (``NONREF`` is none). The
  supplementary line holds the counterparty IBAN at Rabobank; ASN puts that IBAN in the
  customer reference. Without an :86:, the references are the entry's text.
* **``:86:``** (6 × 65 characters, continuation lines joined) comes in dialects:

  - Dutch SEPA code words (ING, Rabobank, ABN AMRO, Bunq, Knab, Mollie, Van Lanschot):
    ``/EREF/…//CNTP/iban/bic/name/city//REMI/USTD//text/`` (ING),
    ``/EREF/…/BENM//NAME/…/REMI/…`` or ``/ORDP//NAME/…`` (Rabobank),
    ``/TRTP/…/IBAN/…/BIC/…/NAME/…/REMI/…/EREF/…`` (ABN AMRO). ``/REMI/STRD/CUR/ref/``
    and ``/CDTRREF/`` are structured references; ``NOTPROVIDED`` is no end-to-end id.
    Lines are cut at a fixed width, so they are joined without a separator.
  - German DK/ZKA structured field: a 3-digit GVC, then subfields ``?00`` posting text,
    ``?10`` primanota, ``?20``–``?29`` and ``?60``–``?63`` purpose, ``?30`` bank code/BIC,
    ``?31`` account/IBAN, ``?32``–``?33`` name, ``?34`` return code (Polish banks: ``?38``
    IBAN). The separator is ``?`` by the DK rules but some banks use another (Triodos NL
    ``>``, with BIC and IBAN in ``>20``/``>21``): the character after the code is taken.
    SEPA identifiers (``EREF+``, ``SVWZ+``, … each starting a subfield, DFÜ-Abkommen
    Anlage 3 §8.2.4) give the end-to-end id and the purpose. Subfields hold 27
    characters: a full one was cut, maybe inside a word, and is joined without a space.
  - GVC ``999`` (DK: unstructured), Penta's ``999TYPE:purpose:name:IBAN[:extra]``.
  - ASN: ``IBAN name`` on the first line, then the text or code words.
  - ABN AMRO's labelled text (``IBAN: … BIC: … NAAM: … OMSCHRIJVING: … KENMERK: …``),
    Knab's ``REK: …/NAAM: …``.
  - Free text (Danske Bank, mBank, Tryton): lines joined with a space unless the previous
    line filled the width (a word cut in two).

  Belgian OGM (``+++123/4567/89012+++``) and ISO 11649 ``RF`` references with valid check
  digits, or a Dutch ``BETALINGSKENM.``, found in the text are the structured_ref when no
  code word gives one. An ``:86:`` before the first ``:61:`` or after ``:62F:`` belongs to
  the statement.
* **Errors.** A statement opened by ``:60F:`` that never reaches ``:62F:``/``:62M:`` (a
  truncated file, or a new ``:20:`` first) is refused, naming the statement's first
  line: its lines would be lost silently otherwise. A header with neither balances nor
  lines (``:20:`` left at the end of a file) has nothing to lose and is dropped. Refused
  too: unreadable ``:60:``, ``:61:``, ``:62:`` values, ``:61:`` outside a statement (an
  MT942 interim report has no opening balance), differing opening and closing currencies,
  a missing ``:25:``, a file without any statement. A statement whose lines do not add up
  is returned as it is; the caller reports the failed check.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sources.bank_files import text
from sources.bank_files.model import BankEntry, Statement, StatementError
from transforms.recon.references import find_structured_refs

# ------------------------------------------------------------------------------------------- patterns

# A field: a tag at the start of a line, its value, and the lines up to the next tag.
# (The first continuation line is a group of its own: most fields have none or one.)
_FIELD = re.compile(r"\n:([0-9]{2}[A-Z]?|NS):([^\n]*)(\n(?!:(?:[0-9]{2}[A-Z]?|NS):)[^\n]*)?"
                    r"((?:\n(?!:(?:[0-9]{2}[A-Z]?|NS):)[^\n]*)*)")
_IDENTIFY_20 = re.compile(rb"(?:^(?:\xef\xbb\xbf)?|[\r\n]|\{4:)[ \t]*:20:")  # a UTF-8 BOM may come first
_IDENTIFY_25 = re.compile(rb"(?:^|[\r\n]):25[A-Z]?:")
# SWIFT blocks before or after the text: {1:…}{2:…}{3:{108:…}} and the "{4:" that opens the text.
_ENVELOPE = re.compile(r"(?:\{[1-5A-Z]:(?:[^{}]|\{[^{}]*\})*\}|\})*(?:\{4:)?")
_AMOUNT = r"(0*[0-9]{1,15}(?![0-9])(?:[,.][0-9]*)?)"  # SWIFT 15d: up to 15 digits, decimal comma
_BALANCE = re.compile(r"\s*([CD])\s*([0-9]{6})\s*([A-Za-z]{3})?\s*" + _AMOUNT + r"\s*")
# :61: value date, entry date, mark, funds code (not kept), amount, transaction type (Penta writes
# NONREF without one), customer reference up to "//", bank reference.
_ENTRY = re.compile(r"([0-9]{6}(?:[0-9]{4})?)(R?[CD])(?:[A-Z](?=[0-9]))?" + _AMOUNT +
                    r"(?:(?!NONREF *(?://|$))([A-Z][A-Za-z0-9 ]{3}))?(.*)")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_IBAN_THEN_NAME = re.compile(r"([A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}) +(\S.*)")
_BIC = re.compile(r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
_LETTERS = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})

# Dutch SEPA code words in :86: (Betaalvereniging / ING / Rabobank / ABN AMRO format descriptions).
_CODE_WORDS = ("RTRN|TRTP|EREF|PREF|MARF|CSID|CNTP|BENM|ORDP|ULTC|ULTD|ULTB|NAME|ID|ADDR|IBAN|BIC|REMI|PURP|ISDT|"
               "SVCL|CDTRREFTP|CDTRREF|CD|ISSR|FX|OCMT|EXCH|CHGS|SUM|RTYP|BUSP|IREF|KREF|NRTX|SVCD|CITY|BBAN")
_CODE_WORD = re.compile(rf"/({_CODE_WORDS})/")
_PARTIES = frozenset({"CNTP", "BENM", "ORDP", "ULTC", "ULTD", "ULTB"})
_ULTIMATE = frozenset({"ULTC", "ULTD", "ULTB"})
# German structured :86:: GVC, then a separator that is not ordinary text punctuation, then a subfield.
_GVC = re.compile(r"\s*([0-9]{3})([^\w\s/.,:;'\"()+\-])([0-9]{2})")
_SEPA_KEYS = frozenset({"EREF", "KREF", "MREF", "CRED", "DEBT", "COAM", "OAMT", "SVWZ", "ABWA", "ABWE", "IBAN", "BIC",
                        "BREF", "RREF"})
# DK field 86 subfields: ?00 posting text, ?10 primanota, ?20-?29 and ?60-?63 purpose, ?30 bank code or BIC,
# ?31 account or IBAN, ?32-?33 name, ?34 return reason; Polish banks add ?38, the counterparty IBAN.
_GVC_ROLES = {"00": "posting", "31": "iban", "38": "iban", "32": "name", "33": "name",
              **{code: "purpose" for code in ("20", "21", "22", "23", "24", "25", "26", "27", "28", "29",
                                              "60", "61", "62", "63")}}
_LABEL = re.compile(r"(?<![A-Za-z])(IBAN|REK|BIC|NAAM|OMSCHRIJVING|KENMERK|MACHTIGING|INCASSANT|BETALINGSKENM\.)\s?:")
_RF_HINT = re.compile(r"RF[0-9]{2}")
# Dutch payment reference in free text (ABN AMRO, Rabobank): "BETALINGSKENM. 1234 5678 9012 3456".
_BETALINGSKENMERK = re.compile(r"BETALINGSKENM(?:ERK)?\.?:?\s*([0-9][0-9 ]{5,18}[0-9])(?![0-9])")
_NO_E2E = frozenset({"", "NOTPROVIDED", "NONREF"})

FULL_LINE = 60  # a :86: line this long was cut by the bank's line width, maybe inside a word
GVC_SUBFIELD = 27  # DK: purpose and name subfields hold up to 27 characters


# ------------------------------------------------------------------------------------------- detection

def identify(head: bytes) -> bool:
    """A ``:20:`` line (bare or right after ``{4:``) and a ``:25:`` line in the first bytes."""
    return bool(_IDENTIFY_20.search(head) and _IDENTIFY_25.search(head))


# ------------------------------------------------------------------------------------------- lines -> fields

_SPECIAL_START = frozenset("{}-")  # block lines and message ends
_Field = tuple[str, int, str, list[str]]  # tag, line, the value on the tag's line, continuation lines


def _continuation(rest: str, tag: str) -> list[str]:
    """The continuation lines of a field (``rest`` starts with the line break after its value),
    up to the end of its message.

    Blank lines are skipped; SWIFT block lines and ``-`` end the message and whatever follows it
    up to the next tag (bank headers between messages) is dropped. ING wraps inside values and can
    leave a lone ``-`` in an :61:/:86:: there a ``-`` followed by more text is part of the value."""
    more: list[str] = []
    dashes: list[str] = []
    for line in rest.split("\n")[1:]:
        head = line[:1]
        if not line or line.isspace():
            continue
        if head in "{}" and _ENVELOPE.match(line).end():
            break
        if head == "-":
            if line.startswith("-}") or tag not in ("61", "86"):
                break
            dashes.append(line)
            continue
        if dashes:
            more.extend(dashes)
            dashes = []
        more.append(line)
    return more


def _fields(content: str) -> Iterator[_Field]:
    """The tagged fields in file order, each with its continuation lines.

    One regex pass finds every field with its continuation lines (a line that starts with ``:`` but
    no tag continues the field before it). After the first field the matches are contiguous, so line
    numbers follow from counting the newlines inside them. Text before the first tag (Danske Bank's
    preamble, block lines) is not part of any field."""
    content = "\n" + content
    inserted: list[int] = []
    if "{4::" in content:  # "{1:…}{4::20:…": give the tag a line of its own, and remember the shift
        content, inserted = _tag_after_envelope(content)
    first = _FIELD.search(content)
    if first is None:
        return
    line = content.count("\n", 0, first.start() + 1)
    for tag, value, second, rest in _FIELD.findall(content, first.start()):
        real = line - bisect_right(inserted, line) if inserted else line
        if rest:
            yield tag, real, value, _continuation(second + rest, tag)
            line += rest.count("\n") + 2
        elif second:
            plain = second[1:2] not in _SPECIAL_START and not second.isspace()  # an ordinary line
            yield tag, real, value, [second[1:]] if plain else _continuation(second, tag)
            line += 2
        else:
            yield tag, real, value, []
            line += 1


def _tag_after_envelope(content: str) -> tuple[str, list[int]]:
    """``content`` with a newline before every tag that follows ``{4:``, and the (new) numbers of those lines."""
    pieces = content.split("{4::")
    inserted, line = [], 0
    for piece in pieces[:-1]:
        line += piece.count("\n") + 1
        inserted.append(line)
    return "{4:\n:".join(pieces), inserted


def _content(data: bytes, file: str) -> str:
    """The decoded text with LF line ends (CRLF and CR files too), a DOS end-of-file mark dropped."""
    decoded, _ = text.decode(data, file, text.SINGLE_BYTE)
    if "\r" in decoded:
        decoded = decoded.replace("\r\n", "\n")
        if "\r" in decoded:
            decoded = decoded.replace("\r", "\n")
    return decoded.rstrip("\x1a")


# ------------------------------------------------------------------------------------------- small values

def _iban_valid(value: str) -> bool:
    return bool(_IBAN.fullmatch(value)) and int((value[4:] + value[:4]).translate(_LETTERS)) % 97 == 1


def _account(raw: str, currency: str) -> str:
    """The IBAN in ``:25:`` where there is one (alone, after ``BIC/``, before the currency), else as
    printed without a currency suffix.

    ING appends the currency to the IBAN (``NL77INGB0574908765EUR``), old Rabobank files to the account
    (``1291.99.348EUR``, ``0800003200000001610722 EUR``), Raiffeisen after a slash (``…/HUF``).
    Mauritian and Seychelles IBANs end in the currency themselves (``…MUR``), so a suffix is only cut
    from an IBAN when the whole fails mod 97."""
    printed = raw.strip()
    compact = "".join(printed.split()).upper()
    for part in reversed(compact.split("/")):
        if _iban_valid(part):
            return part
        if part.endswith(currency) and (_iban_valid(part[:-3]) or _IBAN.fullmatch(part[:-3])):
            return part[:-3]
    if currency and printed.upper().endswith(currency):
        rest = printed[:-3].rstrip(" /")
        if rest[-1:].isdigit():
            return rest
    return printed


def _iban_shaped(value: str) -> str:
    """``value`` as a compact IBAN when it looks like one (the check digits are the payer's bank's business)."""
    if _IBAN.fullmatch(value):
        return value
    value = "".join(value.split()).upper()
    return value if _IBAN.fullmatch(value) else ""


class _Dates:
    """YYMMDD and :61: date parsing with a cache: a statement repeats the same few dates."""

    def __init__(self, file: str):
        self.file = file
        self.values: dict[str, date] = {}
        self.entries: dict[str, tuple[date, date]] = {}  # :61: YYMMDD[MMDD] -> (value date, booking date)

    def yymmdd(self, value: str, line: int, what: str) -> date:
        found = self.values.get(value)
        if found is None:
            found = self.values[value] = text.yymmdd(value, self.file, line, what)
        return found

    def entry(self, key: str, line: int) -> tuple[date, date]:
        """Value date YYMMDD and booking date: the entry date MMDD with the year of the value date, moved
        across New Year when the months are more than half a year apart; the value date without one."""
        yy = int(key[:2])
        value_date = self._day((2000 if yy < 80 else 1900) + yy, int(key[2:4]), int(key[4:6]), line, "value")
        booking = value_date
        if len(key) == 10:
            month, day = int(key[6:8]), int(key[8:])
            year = value_date.year
            if month - value_date.month > 6:
                year -= 1
            elif value_date.month - month > 6:
                year += 1
            booking = self._day(year, month, day, line, "entry")
        found = self.entries[key] = (value_date, booking)
        return found

    def _day(self, year: int, month: int, day: int, line: int, what: str) -> date:
        """A :61: date; German banks date interest postings on a 30/360 calendar (value date 30 February),
        which is the last day of that month."""
        if 1 <= month <= 12 and 28 < day <= 31:
            day = min(day, calendar.monthrange(year, month)[1])
        return text.ymd(year, month, day, self.file, line, f":61: {what} date")


# ------------------------------------------------------------------------------------------- :86:

@dataclass(slots=True)
class _Details:
    """What an :86: says about its entry."""

    name: str = ""
    iban: str = ""
    remittance: str = ""
    structured_ref: str = ""
    end_to_end_id: str = ""


def _joined(pieces: list[str], full: int) -> str:
    """Pieces cut at a fixed width: no separator after a full piece (a cut word), a space otherwise."""
    if len(pieces) == 1:
        return pieces[0]
    out = pieces[0]
    for previous, piece in zip(pieces, pieces[1:]):
        out += piece if len(previous) >= full else " " + piece
    return out


def _e2e(value: str) -> str:
    value = " ".join(value.strip(" /").split())
    return "" if value.upper() in _NO_E2E else value


def _remi(value: str) -> tuple[str, str]:
    """(remittance, structured reference) of a ``/REMI/`` value: ``USTD//text/``, ``STRD/issuer/reference/``
    (ING; issuer ``CUR`` is the Dutch payment reference, ``BBA`` Belgian, ``ISO`` RF) or plain text."""
    if value.startswith("USTD/"):
        return value[5:].strip(" /"), ""
    if value.startswith("STRD/"):
        parts = [p for p in value[5:].split("/") if p.strip()]
        reference = (parts[1] if len(parts) > 1 else "".join(parts)).strip()
        return reference, reference
    return value.strip(" /"), ""


def _code_words(flat: str, lines: list[str]) -> _Details:
    """Dutch SEPA code words: ``/CODE/value`` pairs; names under ``ULTC``/``ULTD`` only as a fallback."""
    name = iban = remittance = reference = e2e = ultimate = parent = ""
    has_remi = False
    pieces = _CODE_WORD.split(flat)
    for i in range(1, len(pieces), 2):
        key, value = pieces[i], pieces[i + 1]
        if key in _PARTIES:
            parent = key
            if key == "CNTP":  # account/BIC/name/city
                sub = value.split("/")
                iban = iban or _iban_shaped(sub[0])
                name = name or (sub[2].strip() if len(sub) > 2 else "")
        elif key == "NAME":
            if parent in _ULTIMATE:
                ultimate = ultimate or value.strip(" /")
            else:
                name = name or value.strip(" /")
        elif key == "REMI":
            has_remi = True
            remittance, structured = _remi(value)
            reference = reference or structured
        elif key == "EREF":
            e2e = e2e or _e2e(value)
        elif key == "IBAN":
            iban = iban or _iban_shaped(value.strip(" /"))
        elif key == "CDTRREF":
            reference = reference or value.strip(" /")
    if not has_remi:  # other code words only (SWIFT /OCMT/, /CHGS/…): the whole text
        remittance = _joined(lines, FULL_LINE)
    return _Details(name or ultimate, iban, remittance, reference, e2e)


def _sepa_purpose(purpose: list[str], details: _Details) -> str:
    """Purpose subfields with SEPA identifiers (``EREF+``, ``SVWZ+``…), each starting a subfield and
    continued in the next subfields without repeating it. The purpose is the ``SVWZ+`` text, else the
    text outside identifiers, else all of it."""
    keyed: dict[str, list[str]] = {}
    plain: list[str] = []
    current = plain
    for piece in purpose:
        key = piece[:4] if piece[4:5] == "+" else piece[:3] if piece[3:4] == "+" else ""
        if key in _SEPA_KEYS:
            current = keyed[key] = keyed.get(key, [])
        current.append(piece)  # with its identifier: the 27-character rule counts it
    if not keyed:
        return _joined(plain, GVC_SUBFIELD)
    if "EREF" in keyed:
        details.end_to_end_id = _e2e(_joined(keyed["EREF"], GVC_SUBFIELD)[5:].replace("EREF+", ""))
    if "SVWZ" in keyed:  # some banks repeat the identifier in every subfield
        return _joined(keyed["SVWZ"], GVC_SUBFIELD)[5:].replace("SVWZ+", "")
    return _joined(plain or purpose, GVC_SUBFIELD)


def _gvc(flat: str, separator: str) -> _Details:
    """German structured :86: (DK field 86): ``GVC?00…?10…?20…``; a separator that is not followed
    by two digits is text."""
    purpose: list[str] = []
    name: list[str] = []
    iban = posting = ""
    target: list[str] | None = None
    for piece in flat.split(separator)[1:]:
        code = piece[:2]
        if len(code) == 2 and code.isdigit():
            role = _GVC_ROLES.get(code)
            target = purpose if role == "purpose" else name if role == "name" else None
            if target is not None:
                target.append(piece[2:])
            elif role == "iban":
                iban = _iban_shaped(piece[2:]) or iban
            elif role == "posting":
                posting = piece[2:]
        elif target:
            target[-1] += separator + piece
    if len(purpose) > 1 and len(purpose[0].strip()) in (8, 11) and _BIC.fullmatch(purpose[0].strip()):
        if second := _iban_shaped(purpose[1]):  # Triodos: >20 BIC, >21 IBAN, then the text
            iban, purpose = iban or second, purpose[2:]
    details = _Details(_joined(name, GVC_SUBFIELD) if name else "", iban)
    if purpose:
        details.remittance = (_sepa_purpose(purpose, details) if "+" in "".join(purpose) else
                              _joined(purpose, GVC_SUBFIELD)) or posting
    else:
        details.remittance = posting
    return details


def _penta(rest: str) -> _Details:
    """GVC 999 (unstructured); Penta: ``TYPE:purpose:name:IBAN[:extra]``."""
    parts = rest.split(":")
    for i in range(len(parts) - 1, 1, -1):
        iban = _iban_shaped(parts[i])
        if iban:
            purpose = ":".join(parts[1:i - 1])
            return _Details(name=parts[i - 1].strip(), iban=iban, remittance=" ".join([purpose, *parts[i + 1:]]))
    return _Details(remittance=rest)


def _labelled(spaced: str) -> _Details | None:
    """ABN AMRO's ``IBAN: … BIC: … NAAM: … OMSCHRIJVING: … KENMERK: …`` text (Knab: ``REK: …/NAAM: …``),
    when it has a ``NAAM:``."""
    marks = list(_LABEL.finditer(spaced))
    if not any(m.group(1) == "NAAM" for m in marks):
        return None
    values = {m.group(1): spaced[m.end():n.start() if n else None].strip(" /")
              for m, n in zip(marks, [*marks[1:], None])}
    return _Details(name=values.get("NAAM", ""), iban=_iban_shaped(values.get("IBAN") or values.get("REK", "")),
                    remittance=values.get("OMSCHRIJVING") or spaced,
                    structured_ref=values.get("BETALINGSKENM.", ""), end_to_end_id=_e2e(values.get("KENMERK", "")))


def _may_hold_reference(remittance: str) -> bool:
    """A cheap test before ``find_structured_refs``: an OGM decoration or ``RF`` and two digits."""
    return "+++" in remittance or "***" in remittance or bool(_RF_HINT.search(remittance.upper()))


def _free_text(lines: list[str]) -> _Details:
    """Unstructured :86: and the layouts found in it: Penta's GVC 999, ASN's ``IBAN name`` first line,
    ABN AMRO's labels."""
    spaced = (lines[0] if len(lines) == 1 else _joined(lines, FULL_LINE)).strip()
    if spaced.startswith("999"):
        return _penta(spaced[3:])
    if len(lines) > 1 and (head := _IBAN_THEN_NAME.fullmatch(lines[0].strip())):
        # ASN: counterparty IBAN and name, then the description or SEPA code words on the next lines.
        rest = lines[1:]
        flat = "".join(rest).lstrip()
        details = (_code_words(flat, rest) if flat[:1] == "/" and _CODE_WORD.match(flat)
                   else _Details(remittance=_joined(rest, FULL_LINE)))
        details.iban = details.iban or head.group(1)
        details.name = details.name or head.group(2)
        return details
    return ("NAAM" in spaced and _labelled(spaced)) or _Details(remittance=spaced)


def _details(lines: list[str]) -> _Details:
    """What an entry's :86: says, whichever dialect it is written in."""
    flat = lines[0] if len(lines) == 1 else "".join(lines)
    if flat[:1].isspace():
        flat = flat.lstrip()
    head = flat[:1]
    if head == "/" and _CODE_WORD.match(flat):
        details = _code_words(flat, lines)
    elif head.isdigit() and (gvc := _GVC.match(flat)):
        details = _gvc(flat[gvc.start(2):], gvc.group(2))
    else:
        details = _free_text(lines)
    remittance = details.remittance = " ".join(details.remittance.split())
    if details.name:
        details.name = " ".join(details.name.split())
    if not details.structured_ref and _may_hold_reference(remittance):
        found = find_structured_refs(remittance)
        details.structured_ref = found[0] if found else ""
    if not details.structured_ref and "KENM" in remittance and (kenmerk := _BETALINGSKENMERK.search(remittance)):
        details.structured_ref = kenmerk.group(1).replace(" ", "")
    return details


# ------------------------------------------------------------------------------------------- statements

@dataclass(slots=True)
class _Open:
    """A statement being read: from its first tag to its closing balance."""

    reference: str
    line: int
    account: str = ""  # :25: as written
    number: str = ""
    currency: str = ""
    opening: Decimal | None = None
    opening_line: int = 0
    entries: list[BankEntry] = field(default_factory=list)
    details: list[str] | None = None  # :86: lines of the last entry while an :86: may still follow
    closed: bool = False

    def name(self) -> str:
        return repr(self.reference) if self.reference else "without a :20: reference"


class _Reader:
    """Fields in, statements out: a statement runs from its first tag to its closing balance."""

    def __init__(self, file: str):
        self.file = file
        self.dates = _Dates(file)
        self.statements: list[Statement] = []
        self.open: _Open | None = None

    def error(self, line: int, message: str) -> StatementError:
        return StatementError(self.file, line, message)

    # -- fields ----------------------------------------------------------------------------------------

    def read(self, fields: Iterator[_Field]) -> list[Statement]:
        for tag, line, value, more in fields:
            if tag == "61":
                self.entry(line, value, more)
            elif tag == "86":
                self.information(value, more)
            else:
                if self.open is not None:
                    self.open.details = None  # an :86: after this tag is the statement's, not an entry's
                if tag == "20":
                    self.start(line, value)
                elif tag == "25" or tag == "25P":
                    self.started(line).account = value
                elif tag == "28C" or tag == "28":
                    self.started(line).number = "".join([value, *more]).strip()
                elif tag == "60F" or tag == "60M":
                    self.opening(tag, line, value)
                elif tag == "62F" or tag == "62M":
                    self.closing(tag, line, value)
        self.finish()
        return self.statements

    def start(self, line: int, value: str) -> None:
        self.unterminated(f"before the next statement's :20: on line {line}")
        self.open = _Open(value.strip(), line)

    def started(self, line: int) -> _Open:
        """The statement a field belongs to; a new one when the last was closed and no :20: came since
        (a bank that does not repeat :20:/:25: on a continuation page: the page keeps the last ones)."""
        previous = self.open
        if previous is None:
            self.open = _Open("", line)
        elif previous.closed:
            self.open = _Open(previous.reference, line, previous.account, previous.number)
        return self.open

    def unterminated(self, where: str) -> None:
        """Refuse a statement that was opened but not closed; one with neither balances nor lines
        (a header left at the end of a file) has nothing to lose and is dropped."""
        current = self.open
        if current is not None and not current.closed and (current.opening is not None or current.entries):
            what = (f"its opening balance on line {current.opening_line} has no closing balance :62F:/:62M:"
                    if current.opening is not None else "it has no balances (:60F: … :62F:)")
            raise self.error(current.line, f"statement {current.name()} starting here is not complete: {what} {where}")

    def finish(self) -> None:
        self.unterminated("before the end of the file (truncated?)")
        if not self.statements:
            raise self.error(1, "no MT940 statement found: expected :20:, :25:, :60F:, :61: … :62F: fields")

    # -- balances --------------------------------------------------------------------------------------

    def balance(self, tag: str, line: int, value: str) -> tuple[Decimal, date, str]:
        match = _BALANCE.fullmatch(value)
        if not match:
            raise self.error(line, f":{tag}: balance {value.strip()!r} is not C/D, date YYMMDD, currency and "
                                   "amount (like C140220EUR564,35)")
        mark, day, currency, amount = match.groups()
        number = Decimal(amount.replace(",", "."))
        if mark == "D" and number:
            number = -number
        return number, self.dates.yymmdd(day, line, f":{tag}: date"), (currency or "").upper()

    def opening(self, tag: str, line: int, value: str) -> None:
        current = self.started(line)
        if current.opening is not None:
            raise self.error(line, f"second opening balance :{tag}: in statement {current.name()} "
                                   f"(the first is on line {current.opening_line})")
        current.opening, _, current.currency = self.balance(tag, line, value)
        if not current.currency:
            raise self.error(line, f"opening balance :{tag}: {value.strip()!r} has no currency (like C140220EUR564,35)")
        current.opening_line = line

    def closing(self, tag: str, line: int, value: str) -> None:
        current = self.open
        if current is None or current.closed or current.opening is None:
            raise self.error(line, f"closing balance :{tag}: without an opening balance :60F:/:60M: before it")
        closing, day, currency = self.balance(tag, line, value)
        currency = currency or current.currency  # seen without one: C020315105000,00
        if currency != current.currency:
            raise self.error(line, f"closing balance :{tag}: is in {currency} but the opening balance on line "
                                   f"{current.opening_line} is in {current.currency}")
        account = _account(current.account, currency)
        if not account:
            raise self.error(current.line, f"statement {current.name()} has no account :25:")
        self.statements.append(Statement(
            statement_id=":".join(p for p in (current.reference, account, current.number, day.isoformat()) if p),
            account=account, currency=currency, opening_balance=current.opening, closing_balance=closing,
            statement_date=day, entries=current.entries, line=current.line, closing_line=line))
        current.closed = True

    # -- entries ---------------------------------------------------------------------------------------

    def entry(self, line: int, value: str, more: list[str]) -> None:
        current = self.open
        if current is None or current.closed or current.opening is None:
            raise self.error(line, "statement line :61: outside a statement: no opening balance :60F:/:60M: "
                                   "before it (an MT942 interim report is not a statement)")
        match = _ENTRY.match(value)
        if not match:
            raise self.error(line, f":61: {value.strip()!r} is not a statement line: expected value date YYMMDD, "
                                   "optional entry date MMDD, mark C/D/RC/RD, amount, transaction type")
        days, mark, amount, code, references = match.groups()
        customer, _, bank = references.partition("//")
        value_date, booking = self.dates.entries.get(days) or self.dates.entry(days, line)
        signed = Decimal(amount.replace(",", "."))
        if (mark == "D" or mark == "RC") and signed:  # RC: reversal of a credit; no "-0.00"
            signed = -signed
        # Until an :86: says more, the customer reference is the best description there is.
        customer = " ".join(customer.split())
        bank = bank.strip()
        entry = BankEntry(booking, signed, value_date, "", "", customer if customer != "NONREF" else "", "",
                          code.strip() if code else "", "", bank if bank != "NONREF" else "", "", line)
        if customer[:2].isalpha() and _IBAN.fullmatch(customer):  # ASN: the counterparty IBAN
            entry.counterparty_iban, entry.remittance_info = customer, ""
        if more:
            _supplementary(entry, "".join(more).strip())
        current.entries.append(entry)
        current.details = []

    def information(self, value: str, more: list[str]) -> None:
        """:86: right after a :61: (or its :86:) describes that entry; elsewhere it is the statement's."""
        current = self.open
        if current is None or current.details is None:
            return
        lines = current.details
        lines.append(value)
        if more:
            lines.extend(more)
        found = _details(lines)
        entry = current.entries[-1]
        entry.remittance_info = found.remittance
        entry.counterparty_name = found.name
        entry.counterparty_iban = found.iban or entry.counterparty_iban
        entry.structured_ref = found.structured_ref
        entry.end_to_end_id = found.end_to_end_id


def _supplementary(entry: BankEntry, supplementary: str) -> None:
    """:61: supplementary details: the counterparty IBAN at Rabobank, else text for an entry without :86:."""
    iban = _iban_shaped(supplementary) if supplementary[:2].isalpha() else ""
    if iban:
        entry.counterparty_iban = iban
    elif supplementary:
        entry.remittance_info = " ".join(f"{entry.remittance_info} {supplementary}".split())


# ------------------------------------------------------------------------------------------- entry point

def parse(data: bytes, file: str) -> list[Statement]:
    """The statements of an MT940 file, in file order."""
    return _Reader(file).read(_fields(_content(data, file)))
