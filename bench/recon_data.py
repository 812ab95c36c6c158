"""Noisy bank lines and open items with their ground truth, for reconciliation (INTERFACES §1).

``generate(out_dir, lines, seed)`` writes ``bank.csv`` and ``items.csv`` as a bank and an ERP would
deliver them, and what a correct engine must make of them:

* ``truth.csv`` -- ``bank_line_id,item_id,case,amount_applied``: every pair a correct engine produces,
  with the amount it applies to the pair;
* ``writeoffs.csv`` -- ``bank_line_id,amount,reason``: the write-off rows it books (empty item_id);
* ``ambiguous.csv`` -- ``bank_line_id,case``: ambiguous lines it must not auto-match at all;
* ``cases.csv`` -- ``bank_line_id,case``: the scenario of every line, for per-case scores (lines that
  must stay unmatched have no pair in truth.csv, so their case is only known from here).

Every scenario's answer is unique *by construction*, at any size, never by luck: item amounts are all
distinct unless a scenario makes them collide on purpose (``Sparse`` permutations hand out distinct
values without remembering them); document sequence numbers are sparse in their number space, so a
typo is placed where no other document lies within one edit, and numbers in the noise (customer
numbers, amounts, groups of a reference) are checked against that space. Rows are streamed straight
to the writers, so a million lines take the memory of a thousand. Ids come from a permutation too, so
that a line's id says nothing about its item's.

    uv run python -m bench.recon_data OUT_DIR [--lines N] [--seed S]
"""

from __future__ import annotations

import argparse
import csv
import functools
import heapq
import json
import math
import os
import random
import re
import shutil
import sys
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

BANK_COLUMNS = ["bank_line_id", "bank_account", "booking_date", "value_date", "amount", "currency",
                "counterparty_name", "counterparty_iban", "remittance_info", "structured_ref"]
ITEM_COLUMNS = ["item_id", "kind", "document_number", "issue_date", "due_date", "amount_open", "currency",
                "partner_name", "partner_iban", "partner_id", "company_id", "bank_account", "structured_ref",
                "settlement_ref"]
TRUTH_COLUMNS = ["bank_line_id", "item_id", "case", "amount_applied"]
WRITEOFF_COLUMNS = ["bank_line_id", "amount", "reason"]
AMBIGUOUS_COLUMNS = ["bank_line_id", "case"]
CASE_COLUMNS = ["bank_line_id", "case"]

FIRST_ISSUE = date(2024, 1, 1)
ISSUE_DAYS = 366
WINDOW_DAYS = 45  # the engine's default --tolerance-days
ISSUE_DATES = tuple(FIRST_ISSUE + timedelta(days=n) for n in range(ISSUE_DAYS))
PAYMENT_TERMS = tuple(timedelta(days=n) for n in (14, 30, 30, 45, 60))


# --- money and check digits -------------------------------------------------------------------------

def money(cents: int) -> str:
    """Integer cents as the contract's decimal string: ``-1234.50``."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def percent_of(cents: int, basis_points: int) -> int:
    """``cents * basis_points / 10000`` rounded half up, in integers (never a float for money)."""
    return (abs(cents) * basis_points + 5000) // 10000


_LETTER_VALUES = {ord(ch): str(10 + i) for i, ch in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}


def _alnum_to_digits(text: str) -> str:
    return text.upper().translate(_LETTER_VALUES)


def mod97_check(text: str) -> int:
    """ISO 7064 MOD 97-10 check digits for ``text`` (letters A=10..Z=35), as used by IBAN and RF."""
    return 98 - int(_alnum_to_digits(text + "00")) % 97


def iban(country: str, bban: str) -> str:
    return f"{country}{mod97_check(bban + country):02d}{bban}"


def belgian_bban(account: str) -> str:
    """A Belgian account number: 10 digits and their remainder mod 97 (97 for 0)."""
    return f"{account}{int(account) % 97 or 97:02d}"


def ogm(base: int) -> str:
    """Belgian structured communication: 10 digits and ``base mod 97`` (97 for 0), 12 digits."""
    return f"{base:010d}{base % 97 or 97:02d}"


def ogm_print(digits: str, decoration: str) -> str:
    if not decoration:
        return digits
    return f"{decoration}{digits[:3]}/{digits[3:7]}/{digits[7:]}{decoration}"


def rf_reference(payload: str) -> str:
    """ISO 11649 creditor reference: ``RF`` + 2 check digits + payload (mod 97 = 1 when rotated)."""
    return f"RF{mod97_check(payload + 'RF'):02d}{payload}"


def luhn_digit(digits: str) -> str:
    total = 0
    for position, ch in enumerate(reversed(digits)):
        value = int(ch) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def mod11_digit(digits: str) -> str | None:
    """Norwegian KID MOD11 (weights 2..7 from the right); None where the check would be ``-``."""
    total = sum(int(ch) * (2 + position % 6) for position, ch in enumerate(reversed(digits)))
    check = -total % 11
    return None if check == 10 else str(check)


def finnish_digit(digits: str) -> str:
    """Finnish reference check digit: weights 7, 3, 1 repeating from the right."""
    total = sum(int(ch) * (7, 3, 1)[position % 3] for position, ch in enumerate(reversed(digits)))
    return str(-total % 10)


def grouped(text: str, size: int, from_right: bool = False) -> str:
    if from_right:
        head = len(text) % size
        parts = [text[:head]] if head else []
        return " ".join(parts + [text[i:i + size] for i in range(head, len(text), size)])
    return " ".join(text[i:i + size] for i in range(0, len(text), size))


def _base36(number: int) -> str:
    out = ""
    while number:
        number, digit = divmod(number, 36)
        out = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[digit] + out
    return out or "0"


# --- distinct values without memory ------------------------------------------------------------------

class Sparse:
    """The k-th value is ``lo + (a*k + b) mod span``: all distinct for k < span, spread like a Weyl
    sequence, and the inverse says in one multiplication whether any number is among the first
    ``bound`` values -- so noise can avoid them without a set of a million numbers in memory.

    Shard ``offset`` of ``stride`` takes only k = offset, offset + stride, ...: shards built from the
    same ``rng`` state never hand out the same value."""

    def __init__(self, rng: random.Random, lo: int, span: int, bound: int, stride: int = 1, offset: int = 0):
        a = rng.randrange(span // 3, 2 * span // 3)
        while math.gcd(a, span) != 1:
            a += 1
        self.lo, self.span, self.a, self.b = lo, span, a, rng.randrange(span)
        self.inverse = pow(a, -1, span)
        self.bound = min(bound, span)
        self.next, self.stride = offset, stride

    def take(self) -> int | None:
        k = self.next
        if k >= self.bound:
            return None
        self.next += self.stride
        return self.lo + (self.a * k + self.b) % self.span

    def holds(self, value: int) -> bool:
        offset = value - self.lo
        return 0 <= offset < self.span and (offset - self.b) * self.inverse % self.span < self.bound


class Amounts:
    """Distinct amounts in cents, by decade band (0: 1-10, 1: 10-100, ... 5: 100k-1M); a band that runs
    out hands over to the next one up, so at a million items the small bands are simply used up."""

    def __init__(self, rng: random.Random, stride: int = 1, offset: int = 0):
        self.bands = [Sparse(rng, 10 ** (2 + i), 9 * 10 ** (2 + i), 9 * 10 ** (2 + i), stride, offset)
                      for i in range(7)]

    def take(self, band: int) -> int:
        for sparse in self.bands[band:]:
            value = sparse.take()
            if value is not None:
                return value
        raise RuntimeError("amount space exhausted")


# --- document numbers ---------------------------------------------------------------------------------

# style: (format as printed on the document, prefix, padding relative to the sequence width; -1 = none)
STYLES = {
    "INV": ("INV-{y}-{s}", "INV", 1),
    "RE": ("RE-{y}-{s}", "RE", 0),
    "FAC": ("FAC/{y}/{s}", "FAC", 1),
    "YEAR": ("{y}-{s}", "", 0),
    "SI": ("SI{s}", "SI", 2),
    "R": ("R{s}", "R", 1),
    "NUM": ("{s}", "", -1),
    "F": ("F{y}-{s}", "F", -1),
    "CN": ("CN-{y}-{s}", "CN", 1),
    "GS": ("GS{y}-{s}", "GS", 0),
    "ORD": ("ORD-{s}", "ORD", -1),
}
INVOICE_STYLES = ("INV", "RE", "FAC", "YEAR", "SI")
BILL_STYLES = ("R", "NUM", "F", "INV", "RE")
CREDIT_STYLES = ("CN", "GS")
INVOICE_LABELS = ("Invoice", "INVOICE NO", "Inv.", "Rechnung", "Rechnung Nr.", "RG", "Facture", "FACT.", "Fact",
                  "Factuur", "Faktura", "Lasku", "Fattura", "Factura")
CREDIT_LABELS = ("Credit note", "Gutschrift", "Avoir", "Kreditnota", "Hyvityslasku")
_SEPARATORS = re.compile(r"[-/]")
_DIGIT_RUNS = re.compile(r"\d+")


class Doc(NamedTuple):
    style: str
    year: int
    seq: int
    text: str  # as printed on the document: ITEMS.document_number


class Docs:
    """Document numbers whose sequence part is unique across all series and years, drawn from a space
    at least 300 times larger than the documents issued, and never below 10,000 (so years, days and
    small amounts in a remittance text can never be mistaken for one)."""

    def __init__(self, rng: random.Random, bound: int, stride: int = 1, offset: int = 0):
        width = 7
        while 10 ** width - 10 ** (width - 3) < 300 * bound:
            width += 1
        self.width = width
        self.seqs = Sparse(rng, 10 ** (width - 3), 10 ** width - 10 ** (width - 3), bound, stride, offset)

    def new(self, style: str, year: int) -> Doc:
        seq = self.seqs.take()
        if seq is None:
            raise RuntimeError("document number space exhausted")
        fmt, _, extra = STYLES[style]
        return Doc(style, year, seq, fmt.format(y=year, s=self.padded(str(seq), extra)))

    def padded(self, digits: str, extra: int) -> str:
        return digits if extra < 0 else digits.zfill(self.width + extra)

    def issued(self, number: int) -> bool:
        return self.seqs.holds(number)

    def safe(self, text: str) -> bool:
        """No run of digits in ``text`` is (or will be) a document's sequence number."""
        return not any(self.issued(int(run)) for run in _DIGIT_RUNS.findall(text) if len(run) >= 5)

    def lonely_typo(self, typo: str, seq: int) -> bool:
        """The typo'd number is no document's, and the only document within one edit is the intended
        one -- so the typo has exactly one reading."""
        if len(typo) < 5 or typo[0] == "0" or int(typo) == seq or self.issued(int(typo)):
            return False
        seqs = self.seqs  # Sparse.holds, inlined: this runs ~150 times per typo
        lo, span, b, inverse, bound = seqs.lo, seqs.span, seqs.b, seqs.inverse, seqs.bound
        for value in map(int, _one_edit(typo, self.width - 2, self.width)):
            offset = value - lo
            if 0 <= offset < span and (offset - b) * inverse % span < bound and value != seq:
                return False
        return True


def _one_edit(text: str, shortest: int, longest: int):
    """Every string of ``shortest``..``longest`` characters one substitution, transposition,
    deletion or insertion of a digit away from ``text`` (sequence numbers have no other lengths)."""
    size = len(text)
    if shortest <= size - 1 <= longest:
        for i in range(size):
            yield text[:i] + text[i + 1:]
    if shortest <= size <= longest:
        for i, ch in enumerate(text):
            for digit in "0123456789":
                if digit != ch:
                    yield text[:i] + digit + text[i + 1:]
            if i + 1 < size:
                yield text[:i] + text[i + 1] + ch + text[i + 2:]
    if shortest <= size + 1 <= longest:
        for i in range(size + 1):
            for digit in "0123456789":
                yield text[:i] + digit + text[i:]


def make_typo(digits: str, rng: random.Random) -> str:
    """Exactly one error: substitution, adjacent transposition, missing or extra digit."""
    operation, i = rng.randrange(4), rng.randrange(len(digits))
    if operation == 1 and i + 1 < len(digits) and digits[i] != digits[i + 1]:
        return digits[:i] + digits[i + 1] + digits[i] + digits[i + 2:]
    if operation == 2:
        return digits[:i] + digits[i + 1:]
    if operation == 3:
        return digits[:i] + rng.choice("0123456789") + digits[i:]
    return digits[:i] + rng.choice("0123456789".replace(digits[i], "")) + digits[i + 1:]


# --- partners and names -------------------------------------------------------------------------------

FIRST_NAMES = ("Claire", "Jean-Pierre", "Zoë", "Émilie", "François", "Hélène", "Grégoire", "Thomas", "Jürgen",
               "Käthe", "Anja", "Björn", "Åsa", "Sven", "Søren", "Øyvind", "Ingrid", "Mikko", "Päivi", "Giulia",
               "Niccolò", "José", "María", "Inés", "Luís", "John", "Emma", "Lars", "Maja", "Ana")
LAST_NAMES = ("Dubois", "Lefèvre", "Müller", "Schäfer", "Groß", "Weiß", "Schmidt", "Bergström", "Lindqvist",
              "Østergaard", "Hægstad", "Løvås", "Järvinen", "Mäkinen", "Rossi", "Bianchi", "García", "Muñoz",
              "Fernández", "Smith", "O'Brien", "Van der Meer", "De Vries", "Janssens", "Peeters", "Nowak",
              "Kowalski", "Dvořák", "Horváth", "Novák")
STEMS = ("Nordlicht", "Alpenblick", "Rheintal", "Bergström", "Lefèvre", "Côte Bleue", "Fjordkraft", "Solvik",
         "Järvi", "Baltic", "Hanse", "Atlas", "Vega", "Polaris", "Aurora", "Meridian", "Castello", "Ibérica",
         "Thames", "Brightwater", "Everest", "Horizon", "Lumière", "Sankt Georg", "Öresund", "Høgås", "Kivi",
         "Roma", "Sierra", "Delta", "Müller & Söhne", "Zürcher")
TRADES = ("Holzbau", "Logistik", "Bâtiment", "Transports", "Consulting", "Software", "Imports", "Maskin",
          "Rakennus", "Servizi", "Construcciones", "Trading", "Elektro", "Immobilien", "Textiles", "Foods",
          "Engineering", "Bygg", "Design", "Hotelbedarf", "Gastronomie", "Wäscherei", "Blanchisserie")
LONG_TAILS = ("Internationale Spedition", "und Partner Handelsgesellschaft", "International Services",
              "Gebäudetechnik und Facility Management", "Équipements Hôteliers et Restauration")
COUNTRY_FORMS = {"DE": ("GmbH",), "FR": ("SARL", "S.A."), "BE": ("NV", "BV", "S.A."), "NL": ("BV", "NV"),
                 "GB": ("Ltd",), "SE": ("AB",), "NO": ("AS",), "FI": ("Oy",), "IT": ("SpA",), "ES": ("SL", "S.A."),
                 "US": ("Inc.", "LLC")}
LONG_FORMS = {"Ltd": "Limited", "AB": "Aktiebolag", "Inc.": "Incorporated", "GmbH": "Gesellschaft mbH"}
BANK_FORMS = {"GmbH": ("GMBH", "G.M.B.H."), "SARL": ("SARL", "S.A.R.L."), "S.A.": ("SA", "S.A.", "S A"),
              "BV": ("BV", "B.V."), "NV": ("NV", "N.V."), "Ltd": ("LTD", "LIMITED", "LTD."),
              "AB": ("AB", "AKTIEBOLAG"), "AS": ("AS", "A/S"), "Oy": ("OY",), "SpA": ("SPA", "S.P.A."),
              "SL": ("SL", "S.L."), "Inc.": ("INC", "INC.", "INCORPORATED"), "LLC": ("LLC", "L.L.C.")}
PARTNER_BANKS = {"DE": ("50010517", ""), "FR": ("20041010050", "47"), "NL": ("ABNA", ""), "GB": ("BARC2004", ""),
                 "SE": ("5000000000", ""), "FI": ("1234", ""), "IT": ("X054281110100", ""), "ES": ("2100041845", "")}
CUSTOMER_COUNTRIES = ("DE", "DE", "FR", "FR", "BE", "NL", "GB", "SE", "NO", "FI", "IT", "ES", "US")
EUR_COUNTRIES = ("DE", "FR", "BE", "NL", "FI", "IT", "ES")
_FOLD = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ł": "l",
                       "Ł": "L", "đ": "d", "Đ": "D"})
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "AE", "Ö": "OE", "Ü": "UE"})


@functools.lru_cache(maxsize=4096)
def bank_fold(text: str, umlauts_as_e: bool) -> str:
    """As a bank prints a name: upper case, accents gone (German banks often write Ü as UE)."""
    if umlauts_as_e:
        text = text.translate(_UMLAUTS)
    text = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in text if not unicodedata.combining(ch)).upper()


class Partner:
    """A customer, supplier or employee. ``words`` are (first, last) for a person, (name without legal
    form,) for a company; ``form`` is the company's legal form, "" when the ERP name carries none. The
    IBAN is only drawn when something shows it (US partners have none)."""

    __slots__ = ("name", "person", "words", "form", "country", "partner_id", "_iban", "_draw_iban")

    def __init__(self, name: str, person: bool, words: tuple[str, ...], form: str, country: str, partner_id: str,
                 draw_iban=None, iban: str = ""):
        self.name, self.person, self.words, self.form = name, person, words, form
        self.country, self.partner_id, self._draw_iban, self._iban = country, partner_id, draw_iban, iban

    @property
    def iban(self) -> str:
        if self._draw_iban is not None:
            self._iban, self._draw_iban = ("" if self.country == "US" else self._draw_iban(self.country)), None
        return self._iban


# --- our side -------------------------------------------------------------------------------------------

@dataclass(slots=True, frozen=True)
class Account:
    iban: str
    currency: str
    company: str


ACCOUNTS = (
    Account(iban("BE", belgian_bban("0682499974")), "EUR", "C1"),
    Account(iban("DE", "370400440532013000"), "EUR", "C2"),
    Account(iban("FR", "30006000011234567890189"), "EUR", "C1"),
    Account(iban("NO", "86011117947"), "NOK", "C3"),
    Account(iban("SE", "50000000058398257466"), "SEK", "C3"),
    Account(iban("GB", "NWBK60161331926819"), "GBP", "C2"),
    Account("US-JPMC-000483920117", "USD", "C1"),
)
ACCOUNTS_BY_CURRENCY = {c: tuple(a for a in ACCOUNTS if a.currency == c) for c in ("EUR", "NOK", "SEK", "GBP", "USD")}
INVOICE_BANDS = (1,) * 5 + (2,) * 9 + (3,) * 5 + (4,)  # 10-100: 25 %, 100-1000: 45 %, 1000-10000: 25 %, more: 5 %
PARTNER_POOL = 1500  # partners per (country, person or company) in each shard, then they recur
VALUE_DATE_LAGS = (timedelta(0), timedelta(0), timedelta(1), timedelta(2))
OUR_NAME = "NORDWIND HOSPITALITY GROUP"
CURRENCIES = ("EUR",) * 15 + ("GBP", "GBP", "SEK", "NOK", "USD")
PROCESSORS = (  # name as printed by the bank, name in the ERP, IBAN, payout id style
    ("STRIPE PAYMENTS EUROPE LTD", "Stripe Payments Europe Ltd", iban("IE", "STRP99000012345678"), "stripe"),
    ("PAYPAL EUROPE S.A R.L. ET CIE S.C.A", "PayPal (Europe) S.à r.l. et Cie, S.C.A.", iban("LU", "0240001234567890"),
     "paypal"),
    ("MOLLIE B.V.", "Mollie B.V.", iban("NL", "MOLL0123456789"), "mollie"),
)
PAYOUT_TEXTS = ("{brand} PAYOUT {p}", "{p}", "PAYOUT {p} TRANSFER", "{brand} SETTLEMENT {p}", "Auszahlung {p}",
                "Settlement {p}")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

GENERIC_TEXTS = ("", "", "PAYMENT", "Zahlung", "Überweisung", "VIREMENT", "Virement SEPA", "Betaling", "Betalning",
                 "Maksu", "Pagamento", "Transferencia", "ONLINE BANKING TRANSFER", "SEPA CREDIT TRANSFER",
                 "Thank you", "Danke", "Merci")
BATCH_TEXTS = ("", "Sammelzahlung", "Sammelüberweisung", "Payment of several invoices", "Paiement groupé",
               "Samlet betaling", "PAYMENT RUN")
DOC_TEXTS = ("{d}", "{d}", "Payment for {d}", "PAYMENT {d}", "Rechnung {d}", "RECHNUNG NR {d} VOM {de}",
             "Facture {d} du {fr}", "Règlement {d}", "Betaling {d}", "Faktura {d}", "Lasku {d}", "Fattura n. {d}",
             "Factura {d}", "{d} KD-NR {cust}", "Cust {cust} inv {d}", "{d} / {de}", "{d} {iso}",
             "Zahlung {d} Betrag {amt}", "INV {d} EUR {amt}", "Kundennummer {cust} Rechnungen {d}")
JOINERS = (", ", " ", " + ", " / ", " and ", " u. ", "; ", " & ")


@dataclass(slots=True)
class Open:
    """An item just written, with what its payment scenario needs to know about it."""
    item_id: str
    doc: Doc
    cents: int
    currency: str
    account: Account
    partner: Partner
    issue: date
    due: date | None


# --- the generator ------------------------------------------------------------------------------------

class _Generator:
    """One pass over the scenarios; every ``case_*`` method writes its lines, items and truth."""

    def __init__(self, writers: dict, lines: int, seed: int, shard: int = 0, shards: int = 1):
        """``lines`` is the size of the whole set; this generator is shard ``shard`` of ``shards``: the
        value spaces are drawn from the seed alone (the same for every shard) and interleaved, the
        choices from the seed and the shard."""
        spaces = random.Random(seed)
        self.amounts = Amounts(spaces, shards, shard)
        self.docs = Docs(spaces, 3 * lines + 1000, shards, shard)
        self.refs, self.accounts_seq, self.line_ids, self.item_ids = (
            Sparse(spaces, lo, span, span, shards, shard)
            for lo, span in ((10 ** 8, 9 * 10 ** 8), (0, 10 ** 10), (10 ** 7, 9 * 10 ** 7), (10 ** 7, 9 * 10 ** 7)))
        self.rng = random.Random(f"{seed}/{shard}")
        self.random = self.rng.random
        self.bank, self.items = writers["bank"], writers["items"]
        self.truth, self.writeoffs = writers["truth"], writers["writeoffs"]
        self.ambiguous_rows, self.cases = writers["ambiguous"], writers["cases"]
        self.line_count = self.item_count = 0
        self.partner_count, self.shards = shard, shards
        self.pools: dict[tuple[str, bool], list[Partner]] = {}
        self.case = ""

    # rows -------------------------------------------------------------------------------------------

    def line(self, account: Account, booking: date, cents: int, *, currency: str | None = None, name: str = "",
             iban: str = "", text: str = "", ref: str = "") -> str:
        self.line_count += 1
        line_id = f"BL{self.line_ids.take()}"
        value = "" if self.random() < 0.3 else (booking + self.pick(VALUE_DATE_LAGS)).isoformat()
        self.bank.writerow([line_id, account.iban, booking.isoformat(), value, money(cents),
                            currency or account.currency, name, iban, text, ref])
        self.cases.writerow([line_id, self.case])
        return line_id

    def item(self, kind: str, document: str, cents: int, currency: str, issue: date, due: date | None = None, *,
             partner: Partner | None = None, with_iban: bool = True, account: Account | None = None,
             ref: str = "", settlement: str = "") -> str:
        self.item_count += 1
        item_id = f"IT{self.item_ids.take()}"
        r = self.rng.random
        name = partner.name if partner else ""
        partner_iban = partner.iban if partner and with_iban else ""
        partner_id = partner.partner_id if partner and r() < 0.4 else ""
        company = account.company if account and r() < 0.35 else ""
        our_account = account.iban if account and r() < 0.3 else ""
        self.items.writerow([item_id, kind, document, issue.isoformat(), due.isoformat() if due else "", money(cents),
                             currency, name, partner_iban, partner_id, company, our_account, ref, settlement])
        return item_id

    def pair(self, line_id: str, item_id: str, cents: int) -> None:
        self.truth.writerow([line_id, item_id, self.case, money(cents)])

    def writeoff(self, line_id: str, cents: int, reason: str) -> None:
        if cents:
            self.writeoffs.writerow([line_id, money(cents), reason])

    def ambiguous(self, line_id: str) -> None:
        self.ambiguous_rows.writerow([line_id, self.case])

    # building blocks ----------------------------------------------------------------------------------

    def currency(self) -> str:
        return self.pick(CURRENCIES)

    def account(self, currency: str) -> Account:
        return self.pick(ACCOUNTS_BY_CURRENCY[currency])

    def partner(self, country: str | None = None, person: bool | None = None, with_iban: bool = True,
                fresh: bool = False) -> Partner:
        """A partner of that country and kind: a new one until the pool for it is full, then one of the
        pool -- partners have several items over the year, as they do. Reuse never makes an answer
        ambiguous, as amounts are distinct; ``fresh`` where it would (a batch's subset must be unique
        among all the partner's open items)."""
        country = country or self.pick(CUSTOMER_COUNTRIES)
        if country == "US" and with_iban:
            country = "GB"
        person = self.random() < 0.4 if person is None else person
        pool = self.pools.setdefault((country, person), [])
        if fresh:
            return self.new_partner(country, person)
        if len(pool) < PARTNER_POOL:
            pool.append(self.new_partner(country, person))
            return pool[-1]
        return self.pick(pool)

    def new_partner(self, country: str, person: bool) -> Partner:
        self.partner_count += self.shards
        if person:
            words = (self.pick(FIRST_NAMES), self.pick(LAST_NAMES))
            name, form = f"{words[0]} {words[1]}", ""
        else:
            stem = f"{self.pick(STEMS)} {self.pick(TRADES)}"
            if self.random() < 0.15:
                stem = f"{stem} {self.pick(LONG_TAILS)}"
            words, form = (stem,), self.pick(COUNTRY_FORMS[country]) if self.random() < 0.75 else ""
            spelled = LONG_FORMS.get(form, form) if self.random() < 0.2 else form
            name = f"{stem} {spelled}".rstrip()
        return Partner(name, person, words, form, country, f"P{self.partner_count:07d}", self.partner_iban)

    def partner_iban(self, country: str) -> str:
        """A valid IBAN, unique across partners (the account part comes from a permutation)."""
        n = f"{self.accounts_seq.take():010d}"
        if country == "BE":
            return iban(country, belgian_bban(n))
        if country == "NO":
            return iban(country, n + luhn_digit(n))
        head, tail = PARTNER_BANKS[country]
        return iban(country, head + n + tail)

    def bank_name(self, partner: Partner) -> str:
        """The name as the bank prints it: UPPERCASE, accents stripped, person names often last name
        first, a legal form added, dropped or spelled differently, cut at 18 or 35 characters."""
        random, pick = self.random, self.pick
        fold = random() < 0.5
        if partner.person:
            first, last = (bank_fold(word, fold) for word in partner.words)
            text = f"{last} {first}" if random() < 0.6 else f"{first} {last}"
        else:
            text = bank_fold(partner.words[0], fold)
            form = partner.form or pick(COUNTRY_FORMS[partner.country])
            if random() < 0.65:
                text = f"{text} {pick(BANK_FORMS[form])}"
        limit = pick((18, 35, 0, 0, 0))
        return text[:limit].rstrip() if limit and len(text) > limit else text

    def pick(self, options):
        """``random.choice`` at a third of the cost (this runs millions of times)."""
        return options[int(self.random() * len(options))]

    def between(self, lo: int, hi: int) -> int:
        """``random.randrange(lo, hi)``, cheaper."""
        return lo + int(self.random() * (hi - lo))

    def invoice_amount(self, currency: str, smallest: int = 1) -> int:
        """Distinct amount; SEK and NOK amounts are a decade larger, as prices are."""
        band = self.pick(INVOICE_BANDS)
        return self.amounts.take(max(band, smallest) + (1 if currency in ("SEK", "NOK") else 0))

    def dates(self) -> tuple[date, date | None]:
        """An issue date in the year, and a due date 14-60 days later, or none (one in five)."""
        issue = self.pick(ISSUE_DATES)
        if self.random() < 0.2:
            return issue, None
        return issue, issue + self.pick(PAYMENT_TERMS)

    def paid_on(self, issue: date, due: date | None) -> date:
        """A booking date well inside the amount+partner window (issue .. due + 15 days)."""
        last = (due or issue) + timedelta(days=15)
        return issue + timedelta(days=self.between(0, (last - issue).days + 1))

    def new_doc(self, styles: tuple[str, ...], issue: date) -> Doc:
        return self.docs.new(self.pick(styles), issue.year)

    def cust(self) -> str:
        """A customer number that is never a document number."""
        while True:
            number = str(self.between(10_000, 1_000_000))
            if not self.docs.issued(int(number)):
                return number

    def render(self, doc: Doc, digits: str | None = None, credit: bool = False) -> str:
        """A document number as a payer types it: case, separators, prefix and year kept or dropped,
        leading zeros dropped, a label instead of the prefix ("inv 2024/123", "Invoice 202400123",
        "FACT. 00123", "F2024-123", "123/2024")."""
        fmt, prefix, extra = STYLES[doc.style]
        d = digits or str(doc.seq)
        z = self.docs.padded(d, extra)
        y = str(doc.year)
        as_printed = fmt.format(y=y, s=z)
        has_year = "{y}" in fmt
        label = self.pick(CREDIT_LABELS if credit else INVOICE_LABELS)
        variant = self.between(0, 11)
        if variant == 1:
            return as_printed.lower()
        if variant == 2:
            separator = self.pick((" ", "/", "", ".", "-"))
            return _SEPARATORS.sub(separator, as_printed) if _SEPARATORS.search(as_printed) else f"{prefix} {z}".strip()
        if variant == 3:
            return fmt.format(y=y, s=d)
        if variant == 4 and has_year:
            return f"{prefix or 'nr'} {y}/{d}".lower()
        if variant == 5 and has_year:
            return f"{label} {y}{z}"
        if variant == 6:
            return f"{label} {z}"
        if variant == 7 and has_year:
            return f"{(prefix or 'F')[0]}{y}-{d}"
        if variant == 8 and has_year:
            return f"{d}/{y}"
        if variant == 9:
            return d
        return as_printed

    def doc_text(self, rendered: list[str], booking: date, cents: int) -> str:
        """Free text around one or more rendered document numbers: words, dates, amounts, customer
        numbers -- every number in it that is not one of the documents is checked not to be one."""
        joined = rendered[0]
        for more in rendered[1:]:
            joined += self.pick(JOINERS) + more
        template = self.pick(DOC_TEXTS)
        amount = f"{abs(cents) // 100}.{abs(cents) % 100:02d}" if self.random() < 0.5 else \
            f"{abs(cents) // 100:,}".replace(",", ".") + f",{abs(cents) % 100:02d}"
        if "{amt}" in template and not self.docs.safe(amount):
            template = "{d}"
        return template.format(d=joined, de=f"{booking.day:02d}.{booking.month:02d}.{booking.year}",
                               fr=f"{booking.day:02d}/{booking.month:02d}/{booking.year}", iso=booking.isoformat(),
                               cust=self.cust() if "{cust}" in template else "", amt=amount)

    def generic_text(self, texts: tuple[str, ...] = GENERIC_TEXTS) -> str:
        text = self.pick(texts)
        if self.random() < 0.2:
            text = f"{text} KD {self.cust()}".strip()
        return text

    def counterparty(self, partner: Partner, iban_share: float = 0.7, name_share: float = 0.9) -> tuple[str, str]:
        name = self.bank_name(partner) if self.random() < name_share else ""
        account_iban = partner.iban if self.random() < iban_share else ""
        return name, account_iban

    def structured(self, kind: str) -> tuple[str, str, str]:
        """A fresh structured reference of ``kind``: (as on the item, on the line's structured_ref
        column, as printed in the remittance text). Every reference embeds a distinct 9-digit number.
        Formats stay distinguishable: OGM has 12 digits, KID and Finnish references never do."""
        rng = self.rng
        while True:
            base = self.refs.take()
            if kind == "ogm":
                digits = ogm(base * 10 + self.between(0, 10))
                item_ref = ogm_print(digits, "+++" if self.random() < 0.8 else "")
                line_ref = ogm_print(digits, self.pick(("", "", "+++")))
                text = ogm_print(digits, self.pick(("+++", "***", "")))
            elif kind == "rf":
                payload = _base36(base) + "".join(rng.choices(_UPPER_ALNUM, k=self.between(0, 9)))
                compact = rf_reference(payload)
                item_ref = grouped(compact, 4) if self.random() < 0.6 else compact
                line_ref = compact if self.random() < 0.8 else grouped(compact, 4)
                text = grouped(compact, 4) if self.random() < 0.5 else compact
            elif kind == "kid":
                body = f"{base}{self.between(0, 10 ** 4):04d}"[:self.pick((9, 10, 12, 13))]
                check = mod11_digit(body) if self.random() < 0.4 else None
                compact = body + (check if check is not None else luhn_digit(body))
                item_ref = compact if self.random() < 0.7 else grouped(compact, 4)
                line_ref, text = compact, f"KID {compact}"
            else:  # Finnish
                body = f"{base}{self.between(0, 10 ** 5):05d}"[:self.pick((9, 10, 12, 13, 14))]
                compact = body + finnish_digit(body)
                item_ref = grouped(compact, 5, from_right=True) if self.random() < 0.6 else compact
                line_ref, text = compact, self.pick(("Viite", "Ref.", "Viitenumero")) + f" {compact}"
            if self.docs.safe(f"{item_ref} {line_ref} {text}"):
                return item_ref, line_ref, text

    def payout_id(self, style: str) -> str:
        rng = self.rng
        while True:
            if style == "stripe":
                ident = "po_1" + "".join(rng.choices(_ALNUM, k=23))
            elif style == "paypal":
                ident = "".join(rng.choices(_UPPER_ALNUM, k=17))
            else:
                ident = "stl_" + "".join(rng.choices(_ALNUM, k=10))
            if self.docs.safe(ident):
                return ident

    def open_item(self) -> None:
        """An item nothing pays: it stays open."""
        currency = self.currency()
        issue, due = self.dates()
        if self.random() < 0.7:
            doc = self.new_doc(INVOICE_STYLES, issue)
            kind, sign = "invoice", 1
        else:
            doc = self.new_doc(BILL_STYLES, issue)
            kind, sign = "bill", -1
        self.item(kind, doc.text, sign * self.invoice_amount(currency), currency, issue, due, partner=self.partner(),
                  with_iban=self.random() < 0.6, account=self.account(currency))

    # scenarios: referenced ------------------------------------------------------------------------------

    def referenced(self, kind: str, currency: str, country: str) -> None:
        """An invoice carrying a structured reference, paid in full; the line shows the reference in
        its structured_ref column, in its remittance text, or both (printed differently)."""
        issue, due = self.dates()
        account = ACCOUNTS[0] if kind == "ogm" else self.account(currency)  # OGM is paid to a Belgian account
        partner = self.partner(country)
        cents = self.invoice_amount(currency)
        item_ref, line_ref, text = self.structured(kind)
        doc = self.new_doc(INVOICE_STYLES, issue)
        item_id = self.item("invoice", doc.text, cents, currency, issue, due, partner=partner, account=account,
                            ref=item_ref)
        where = self.random()
        column = line_ref if where < 0.75 else ""
        remittance = text if where >= 0.5 else self.generic_text()
        name, account_iban = self.counterparty(partner)
        booking = self.paid_on(issue, due)
        line_id = self.line(account, booking, cents, name=name, iban=account_iban, text=remittance, ref=column)
        self.pair(line_id, item_id, cents)

    def case_ref_ogm(self) -> None:
        self.referenced("ogm", "EUR", "BE")

    def case_ref_rf(self) -> None:
        currency = self.pick(("EUR", "EUR", "EUR", "SEK"))
        self.referenced("rf", currency, "SE" if currency == "SEK" else self.pick(EUR_COUNTRIES))

    def case_ref_kid(self) -> None:
        self.referenced("kid", "NOK", "NO")

    def case_ref_fi(self) -> None:
        self.referenced("fi", "EUR", "FI")

    def document(self, kind: str = "invoice", *, currency: str | None = None, smallest: int = 1,
                 partner: Partner | None = None, account: Account | None = None, issue: date | None = None,
                 sign: int | None = None, ref: str = "") -> Open:
        """A fresh item with a document number, not yet paid: an invoice (+), a bill (-) or a refund
        (credit note, sign given)."""
        currency = currency or self.currency()
        if issue is None:
            issue, due = self.dates()
        else:
            due = issue + timedelta(days=self.pick((14, 30, 45))) if self.random() < 0.8 else None
        account = account or self.account(currency)
        partner = partner or self.partner()
        styles = {"invoice": INVOICE_STYLES, "bill": BILL_STYLES}.get(kind, CREDIT_STYLES)
        doc = self.new_doc(styles, issue)
        sign = sign or (-1 if kind == "bill" else 1)
        cents = sign * self.invoice_amount(currency, smallest)
        item_id = self.item(kind, doc.text, cents, currency, issue, due, partner=partner, account=account,
                            with_iban=self.random() < 0.6, ref=ref)
        return Open(item_id, doc, cents, currency, account, partner, issue, due)

    def referenced_line(self, item: Open, cents: int | None = None, booking: date | None = None, *,
                        account: Account | None = None, extra: str = "") -> str:
        """A line from the item's partner whose remittance names the item's document in noisy text."""
        cents = item.cents if cents is None else cents
        booking = booking or self.paid_on(item.issue, item.due)
        text = self.doc_text([self.render(item.doc, credit=item.doc.style in CREDIT_STYLES)], booking, cents)
        name, account_iban = self.counterparty(item.partner)
        return self.line(account or item.account, booking, cents, name=name, iban=account_iban,
                         text=f"{text} {extra}".strip())

    def case_doc_noisy(self) -> None:
        item = self.document()
        self.pair(self.referenced_line(item), item.item_id, item.cents)

    def case_doc_multi(self) -> None:
        """One transfer paying 2-4 invoices of one partner, all named in the remittance."""
        currency = self.currency()
        account, partner = self.account(currency), self.partner()
        first = FIRST_ISSUE + timedelta(days=self.between(0, ISSUE_DAYS))
        paid = [self.document(currency=currency, partner=partner, account=account,
                              issue=first + timedelta(days=self.between(0, 45))) for _ in range(self.between(2, 5))]
        total = sum(item.cents for item in paid)
        booking = max(item.issue for item in paid) + timedelta(days=self.between(0, 20))
        text = self.doc_text([self.render(item.doc) for item in paid], booking, total)
        name, account_iban = self.counterparty(partner)
        line_id = self.line(account, booking, total, name=name, iban=account_iban, text=text)
        for item in paid:
            self.pair(line_id, item.item_id, item.cents)

    def case_doc_typo(self) -> None:
        """Exactly one typo in the document number, placed where no other document is one edit away."""
        item = self.document()
        digits = str(item.doc.seq)
        typo = make_typo(digits, self.rng)
        while not self.docs.lonely_typo(typo, item.doc.seq):
            typo = make_typo(digits, self.rng)
        booking = self.paid_on(item.issue, item.due)
        text = self.doc_text([self.render(item.doc, typo)], booking, item.cents)
        name, account_iban = self.counterparty(item.partner)
        line_id = self.line(item.account, booking, item.cents, name=name, iban=account_iban, text=text)
        self.pair(line_id, item.item_id, item.cents)

    # scenarios: amount and partner ---------------------------------------------------------------------

    def unreferenced(self, partner: Partner, currency: str, account: Account, with_iban: bool,
                     cents: int | None = None, issue: date | None = None) -> Open:
        """An invoice of ``partner`` that its payment will not name."""
        if issue is None:
            issue, due = self.dates()
        else:
            due = issue + timedelta(days=self.pick((14, 30, 45))) if self.random() < 0.8 else None
        cents = cents if cents is not None else self.invoice_amount(currency)
        doc = self.new_doc(INVOICE_STYLES, issue)
        item_id = self.item("invoice", doc.text, cents, currency, issue, due, partner=partner, account=account,
                            with_iban=with_iban)
        return Open(item_id, doc, cents, currency, account, partner, issue, due)

    def by_partner(self, booking_date=None) -> tuple[str, Open]:
        """An invoice paid with no reference, found by amount and partner: the line's IBAN equals
        partner_iban, or only the bank's spelling of the name is there (the item has no IBAN; the line
        an IBAN no item knows, or none). The partner may have another open item of another amount."""
        currency = self.currency()
        account = self.account(currency)
        by_iban = self.random() < 0.5
        partner = self.partner(with_iban=True)
        item = self.unreferenced(partner, currency, account, with_iban=by_iban)
        if self.random() < 0.3:
            self.unreferenced(partner, currency, account, with_iban=by_iban)
        booking = booking_date(item.issue, item.due) if booking_date else self.paid_on(item.issue, item.due)
        if by_iban:
            name, account_iban = (self.bank_name(partner) if self.random() < 0.5 else ""), partner.iban
        else:
            name = self.bank_name(partner)
            account_iban = self.partner_iban(self.pick(EUR_COUNTRIES)) if self.random() < 0.4 else ""
        return self.line(account, booking, item.cents, name=name, iban=account_iban, text=self.generic_text()), item

    def case_partner_iban(self) -> None:
        currency = self.currency()
        account = self.account(currency)
        partner = self.partner(with_iban=True)
        item = self.unreferenced(partner, currency, account, with_iban=True)
        if self.random() < 0.3:
            self.unreferenced(partner, currency, account, with_iban=True)
        name = self.bank_name(partner) if self.random() < 0.5 else ""
        line_id = self.line(account, self.paid_on(item.issue, item.due), item.cents, name=name, iban=partner.iban,
                            text=self.generic_text())
        self.pair(line_id, item.item_id, item.cents)

    def case_partner_name(self) -> None:
        currency = self.currency()
        account = self.account(currency)
        partner = self.partner()
        item = self.unreferenced(partner, currency, account, with_iban=False)
        if self.random() < 0.3:
            self.unreferenced(partner, currency, account, with_iban=False)
        unknown_iban = self.partner_iban(self.pick(EUR_COUNTRIES)) if self.random() < 0.4 else ""
        line_id = self.line(account, self.paid_on(item.issue, item.due), item.cents, name=self.bank_name(partner),
                            iban=unknown_iban, text=self.generic_text())
        self.pair(line_id, item.item_id, item.cents)

    def case_date_in_window(self) -> None:
        """Paid late (25-44 days after the due date) or early (5-44 days before issue): inside."""
        def near_edge(issue: date, due: date | None) -> date:
            if self.random() < 0.7:
                return (due or issue) + timedelta(days=self.between(25, WINDOW_DAYS))
            return issue - timedelta(days=self.between(5, WINDOW_DAYS))
        line_id, item = self.by_partner(near_edge)
        self.pair(line_id, item.item_id, item.cents)

    def case_date_out_window(self) -> None:
        """The same payment far outside the window (90+ days): no pair, the item stays open."""
        def far(issue: date, due: date | None) -> date:
            if self.random() < 0.7:
                return (due or issue) + timedelta(days=self.between(2 * WINDOW_DAYS, 240))
            return issue - timedelta(days=self.between(2 * WINDOW_DAYS, 180))
        self.by_partner(far)

    def case_batch(self) -> None:
        """One line pays 2-5 items of one partner, no references; the partner has 1-2 more open items,
        and no other subset of its open items adds up to the line."""
        currency = self.currency()
        account = self.account(currency)
        partner = self.partner(with_iban=True, fresh=True)
        first = FIRST_ISSUE + timedelta(days=self.between(0, ISSUE_DAYS))
        amounts = [self.invoice_amount(currency) for _ in range(self.between(2, 6))]
        extras = [self.invoice_amount(currency) for _ in range(self.between(1, 3))]
        while not _unique_subset_sum(amounts, extras):
            extras = [self.invoice_amount(currency) for _ in extras]
        issues = [first + timedelta(days=self.between(0, 30)) for _ in amounts + extras]
        paid = [self.unreferenced(partner, currency, account, True, cents, issue)
                for cents, issue in zip(amounts, issues)]
        for cents, issue in zip(extras, issues[len(amounts):]):
            self.unreferenced(partner, currency, account, True, cents, issue)
        booking = max(issues[:len(amounts)]) + timedelta(days=self.between(0, 15))
        name, account_iban = self.counterparty(partner, iban_share=0.75)
        if not account_iban:
            name = self.bank_name(partner)
        line_id = self.line(account, booking, sum(amounts), name=name, iban=account_iban,
                            text=self.generic_text(BATCH_TEXTS))
        for item in paid:
            self.pair(line_id, item.item_id, item.cents)

    # scenarios: partial, instalments, differences ----------------------------------------------------------

    def case_instalment(self) -> None:
        """2-3 lines each pay part (20-70 %) of one item, each naming it; together they settle it."""
        rng = self.rng
        item = self.document(smallest=2)
        parts = _split(item.cents, self.between(2, 4), rng)
        booking = item.issue + timedelta(days=self.between(5, 30))
        for number, part in enumerate(parts, 1):
            extra = self.pick((f"Rate {number}/{len(parts)}", f"{number}. Teilzahlung", f"instalment {number}",
                                f"échéance {number}", ""))
            self.pair(self.referenced_line(item, part, booking, extra=extra), item.item_id, part)
            booking += timedelta(days=self.between(25, 35))

    def case_partial(self) -> None:
        """One line well below the item (25-75 %), naming it: applied in full, the item stays open."""
        item = self.document(smallest=2)
        part = percent_of(item.cents, self.between(2500, 7500))
        self.pair(self.referenced_line(item, part), item.item_id, part)

    def case_tolerance(self) -> None:
        """A referenced payment within the 3 % tolerance: a bank fee (5-15) deducted from a big invoice,
        a 2 % early-payment discount, or a cent of rounding; the engine books the difference. The line
        names the document, or carries the item's RF reference in its structured_ref column."""
        reason = self.pick(("bank_fee", "discount", "rounding"))
        item_ref = line_ref = ""
        if self.random() < 0.3:
            item_ref, line_ref, _ = self.structured("rf")
        item = self.document(smallest=3, ref=item_ref)
        if reason == "bank_fee":
            difference = -self.between(500, 1501)
        elif reason == "discount":
            difference = -percent_of(item.cents, 200)
        else:
            difference = self.pick((-1, 1))
        extra = self.pick(("abzgl. 2% Skonto", "less 2% discount", "escompte 2%")) if reason == "discount" else ""
        if line_ref:
            name, account_iban = self.counterparty(item.partner)
            line_id = self.line(item.account, self.paid_on(item.issue, item.due), item.cents + difference, name=name,
                                iban=account_iban, text=f"{self.generic_text()} {extra}".strip(), ref=line_ref)
        else:
            line_id = self.referenced_line(item, item.cents + difference, extra=extra)
        self.pair(line_id, item.item_id, item.cents)
        self.writeoff(line_id, difference, reason)

    def case_overpayment(self) -> None:
        """Paid 8-60 % too much (beyond tolerance), naming the item: the item is settled, the rest of
        the line stays unapplied."""
        item = self.document()
        line_id = self.referenced_line(item, item.cents + percent_of(item.cents, self.between(800, 6000)))
        self.pair(line_id, item.item_id, item.cents)

    def case_double_payment(self) -> None:
        """The same invoice paid twice: the earlier line settles it, the later one finds it closed."""
        item = self.document()
        booking = self.paid_on(item.issue, item.due)
        first = self.referenced_line(item, booking=booking)
        self.referenced_line(item, booking=booking + timedelta(days=self.between(3, 40)))
        self.pair(first, item.item_id, item.cents)

    def case_currency_mismatch(self) -> None:
        """A USD line naming an EUR invoice, same figure: never matched, the item stays open."""
        self.referenced_line(self.document(currency="EUR"), account=self.account("USD"))

    # scenarios: suppliers and refunds ----------------------------------------------------------------------

    def case_bill(self) -> None:
        """A supplier bill (negative) paid by a negative line naming the supplier's invoice number, or
        its structured reference (RF, OGM or KID) in the structured_ref column."""
        currency = self.currency()
        country = {"NOK": "NO", "SEK": "SE", "GBP": "GB"}.get(currency) or self.pick(EUR_COUNTRIES)
        item_ref = line_ref = ""
        if self.random() < 0.3:
            kind = "kid" if currency == "NOK" else self.pick(("rf", "ogm")) if currency == "EUR" else "rf"
            item_ref, line_ref, _ = self.structured(kind)
        item = self.document("bill", currency=currency, partner=self.partner(country, person=False), ref=item_ref)
        text = self.pick(("{d}", "Invoice {d}", "Rechnung {d} Kd-Nr {c}", "Facture {d} client {c}", "{d} / {c}",
                           "Faktura {d}")).format(d=self.render(item.doc), c=self.cust())
        line_id = self.line(item.account, self.paid_on(item.issue, item.due), item.cents,
                            name=self.bank_name(item.partner), iban=item.partner.iban, text=text, ref=line_ref)
        self.pair(line_id, item.item_id, item.cents)

    def case_refund(self) -> None:
        """A refund: paid out to a customer (negative) or received from a supplier (positive), naming
        the credit note."""
        outgoing = self.random() < 0.5
        item = self.document("refund", partner=self.partner(person=outgoing), sign=-1 if outgoing else 1)
        words = ("Refund", "Erstattung", "Remboursement", "Tilbakebetaling") if outgoing else \
            ("Credit note", "Gutschrift", "Avoir", "Kreditnota")
        booking = self.paid_on(item.issue, item.due)
        text = f"{self.pick(words)} {self.render(item.doc, credit=True)}"
        name, account_iban = self.counterparty(item.partner, iban_share=0.8)
        line_id = self.line(item.account, booking, item.cents, name=name, iban=account_iban, text=text)
        self.pair(line_id, item.item_id, item.cents)

    # scenarios: payment processors ------------------------------------------------------------------------

    def case_payout_settlement(self) -> None:
        """2-5 charges (and sometimes a refund) carrying the payout id as settlement_ref; one bank line
        per payout, net of the processor's fee (1.4-2.5 % + 0.25 a charge, within the tolerance)."""
        rng = self.rng
        bank_name, _, processor_iban, style = self.pick(PROCESSORS)
        payout = self.payout_id(style)
        currency = self.pick(("EUR", "EUR", "EUR", "GBP", "USD", "SEK"))
        account = self.account(currency)
        issue = FIRST_ISSUE + timedelta(days=self.between(0, ISSUE_DAYS))
        decade = int(currency == "SEK")  # SEK prices are a decade larger
        charges = [self.amounts.take(self.pick((1, 2, 2)) + decade) for _ in range(self.between(2, 6))]
        amounts = list(charges)
        if self.random() < 0.2:  # a refund to a customer, netted in the payout
            amounts.append(-self.amounts.take(decade))
        total = sum(amounts)
        fee = min(percent_of(sum(charges), self.between(140, 251)) + 25 * len(charges), percent_of(total, 290))
        ids = []
        for cents in amounts:
            day = issue - timedelta(days=self.between(0, 7))
            kind = "invoice" if cents > 0 else "refund"
            if self.random() < 0.7:
                document = self.new_doc(("ORD",) if cents > 0 else CREDIT_STYLES, day).text
            else:
                document = ("ch_3" if cents > 0 else "re_3") + "".join(rng.choices(_ALNUM, k=20))
            customer = self.partner(person=True, with_iban=False) if self.random() < 0.5 else None
            ids.append(self.item(kind, document, cents, currency, day, partner=customer, account=account,
                                 settlement=payout))
        text = self.pick(PAYOUT_TEXTS).format(p=payout, brand=style.upper())
        booking = issue + timedelta(days=self.between(1, 5))
        line_id = self.line(account, booking, total - fee, name=bank_name,
                            iban=processor_iban if self.random() < 0.5 else "", text=text)
        for item_id, cents in zip(ids, amounts):
            self.pair(line_id, item_id, cents)
        self.writeoff(line_id, -fee, "processor_fee")

    def case_payout_expected(self) -> None:
        """An expected payout (kind=payout, document_number = payout id) and its bank line: the same net
        amount, or less a fee within the tolerance."""
        bank_name, erp_name, processor_iban, style = self.pick(PROCESSORS)
        payout = self.payout_id(style)
        currency = self.pick(("EUR", "EUR", "EUR", "GBP", "USD"))
        account = self.account(currency)
        issue = FIRST_ISSUE + timedelta(days=self.between(0, ISSUE_DAYS))
        cents = self.amounts.take(self.pick((2, 3, 3, 4)))
        processor = Partner(erp_name, False, (erp_name,), "", "IE", f"PSP-{style}", iban=processor_iban)
        item_id = self.item("payout", payout, cents, currency, issue, issue + timedelta(days=2), partner=processor,
                            with_iban=self.random() < 0.5, account=account)
        fee = percent_of(cents, self.between(30, 250)) if self.random() < 0.4 else 0
        text = self.pick(PAYOUT_TEXTS).format(p=payout, brand=style.upper())
        line_id = self.line(account, issue + timedelta(days=self.between(0, 4)), cents - fee, name=bank_name,
                            iban=processor_iban if self.random() < 0.5 else "", text=text)
        self.pair(line_id, item_id, cents)
        self.writeoff(line_id, -fee, "processor_fee")

    # scenarios: decoys ---------------------------------------------------------------------------------

    def case_ambiguous_same_partner(self) -> None:
        """A partner with 2-3 open items of the same amount; a line from that partner, that amount, no
        reference: which one it pays cannot be told."""
        currency = self.currency()
        account = self.account(currency)
        by_iban = self.random() < 0.7
        partner = self.partner(with_iban=True)
        cents = self.invoice_amount(currency)
        first = FIRST_ISSUE + timedelta(days=self.between(0, ISSUE_DAYS))
        issues = [first + timedelta(days=self.between(0, 30)) for _ in range(self.pick((2, 2, 3)))]
        for issue in issues:
            self.unreferenced(partner, currency, account, by_iban, cents, issue)
        booking = max(issues) + timedelta(days=self.between(0, 10))
        name = self.bank_name(partner) if not by_iban or self.random() < 0.5 else ""
        line_id = self.line(account, booking, cents, name=name, iban=partner.iban if by_iban else "",
                            text=self.generic_text())
        self.ambiguous(line_id)

    def case_ambiguous_no_partner(self) -> None:
        """2-3 partners with an open item of the same amount; a line with that amount and no partner
        information at all."""
        currency = self.currency()
        account = self.account(currency)
        cents = self.invoice_amount(currency)
        first = FIRST_ISSUE + timedelta(days=self.between(0, ISSUE_DAYS))
        issues = [first + timedelta(days=self.between(0, 30)) for _ in range(self.pick((2, 2, 3)))]
        partners: dict[str, Partner] = {}
        while len(partners) < len(issues):
            partner = self.partner()
            partners[partner.partner_id] = partner
        for partner, issue in zip(partners.values(), issues):
            self.unreferenced(partner, currency, account, self.random() < 0.5, cents, issue)
        line_id = self.line(account, max(issues) + timedelta(days=self.between(0, 10)), cents,
                            text=self.pick(GENERIC_TEXTS))
        self.ambiguous(line_id)

    def case_other_partner(self) -> None:
        """A known partner pays an amount that only another partner's item has: no match."""
        currency = self.currency()
        account = self.account(currency)
        payer, other = self.partner(person=True, with_iban=True), self.partner(person=False)
        issue, due = self.dates()
        self.unreferenced(payer, currency, account, True, issue=issue)
        item = self.unreferenced(other, currency, account, self.random() < 0.5, issue=issue)
        name = self.bank_name(payer) if self.random() < 0.7 else ""
        self.line(account, self.paid_on(item.issue, item.due), item.cents, name=name, iban=payer.iban,
                  text=self.generic_text())

    def case_unrelated(self) -> None:
        """Lines no item explains: salaries, tax, transfers between our own accounts, card purchases,
        bank charges."""
        rng = self.rng
        kind = self.pick(("salary", "tax", "internal", "card", "charges"))
        booking = FIRST_ISSUE + timedelta(days=self.between(0, ISSUE_DAYS + 60))
        month = f"{booking.month:02d}/{booking.year}"
        if kind == "salary":
            employee = self.partner(self.pick(EUR_COUNTRIES), person=True)
            self.line(self.account("EUR"), booking, -self.amounts.take(3), name=self.bank_name(employee),
                      iban=employee.iban, text=self.pick(("GEHALT {m}", "SALARY {m}", "Salaire {m}", "LOHN {m}",
                                                           "Lønn {m}")).format(m=month))
        elif kind == "tax":
            name, text = self.pick((("FINANZAMT MUENCHEN", "USt-VA {m} StNr 143/815/08150"),
                                     ("DGFIP", "TVA {m}"), ("SKATTEETATEN", "MVA termin {m}"),
                                     ("HMRC VAT", "VAT RETURN {m}")))
            self.line(self.account("EUR"), booking, -self.amounts.take(self.pick((3, 4))), name=name,
                      text=text.format(m=month))
        elif kind == "internal":
            source, target = rng.sample([a for a in ACCOUNTS if a.currency == "EUR"], 2)
            cents = self.amounts.take(self.pick((3, 4)))
            text = self.pick(("Umbuchung", "Internal transfer", "Virement interne", "Liquidity transfer"))
            self.line(source, booking, -cents, name=OUR_NAME, iban=target.iban, text=text)
            self.line(target, booking + timedelta(days=self.pick((0, 1))), cents, name=OUR_NAME, iban=source.iban,
                      text=text)
        elif kind == "card":
            name, text = self.pick((("AMAZON EU SARL", "CARD 4411 AMAZON MKTPLACE LUXEMBOURG"),
                                     ("SHELL DEUTSCHLAND", "VISA 4411 SHELL HAMBURG"),
                                     ("IKEA", "Kortkjøp 8123 IKEA FURUSET"), ("METRO", "CB 2291 METRO NANTERRE")))
            self.line(self.account("EUR"), booking, -self.amounts.take(self.pick((1, 2))), name=name, text=text)
        else:
            text = self.pick(("KONTOFUEHRUNGSGEBUEHR", "FRAIS DE TENUE DE COMPTE", "Account maintenance fee",
                               "BANK CHARGES", "Gebyr"))
            self.line(self.account(self.pick(("EUR", "EUR", "GBP", "NOK"))), booking, -self.amounts.take(0),
                      text=f"{text} {month}")


def _unique_subset_sum(paid: list[int], extras: list[int]) -> bool:
    """No other subset of the partner's open items adds up to what the paid ones add up to."""
    sums = [0]  # sums[mask]: the sum of the values whose bit is set in mask
    for value in paid + extras:
        sums += [total + value for total in sums]
    return sums.count(sum(paid)) == 1


def _split(cents: int, parts: int, rng: random.Random) -> list[int]:
    """``parts`` instalments of 20-70 % each that add up to ``cents`` exactly."""
    while True:
        shares = [rng.randrange(20, 71) for _ in range(parts - 1)]
        last = 100 - sum(shares)
        if 20 <= last <= 70:
            amounts = [cents * share // 100 for share in shares]
            return amounts + [cents - sum(amounts)]


CASES = ("ref_ogm", "ref_rf", "ref_kid", "ref_fi", "doc_noisy", "doc_multi", "doc_typo", "partner_iban",
         "partner_name", "date_in_window", "date_out_window", "batch", "instalment", "partial", "tolerance",
         "overpayment", "double_payment", "currency_mismatch", "bill", "refund", "payout_settlement",
         "payout_expected", "ambiguous_same_partner", "ambiguous_no_partner", "other_partner", "unrelated")
OPEN_ITEM_SHARE = 0.05  # chance, after each scenario, of one more item that nothing pays


FILES = {"bank": BANK_COLUMNS, "items": ITEM_COLUMNS, "truth": TRUTH_COLUMNS, "writeoffs": WRITEOFF_COLUMNS,
         "ambiguous": AMBIGUOUS_COLUMNS, "cases": CASE_COLUMNS}
SHARDS = 4  # fixed, whatever the machine: the bytes depend on the seed only
PARALLEL_FROM = 50_000  # lines; below, starting processes costs more than it saves


def generate(out_dir: Path, lines: int = 5000, seed: int = 1) -> dict[str, Path]:
    """Write about ``lines`` bank lines, their items and the ground truth into ``out_dir``; return
    the paths by name (bank, items, truth, ambiguous, writeoffs, cases). Same seed, same bytes.

    The set is made of ``SHARDS`` independent parts (in parallel processes for big sets), written
    one after the other."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = [lines // SHARDS + (shard < lines % SHARDS) for shard in range(SHARDS)]
    paths = {name: out_dir / f"{name}.csv" for name in FILES}
    workers = min(SHARDS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if lines < PARALLEL_FROM or workers < 2:
        with _Writers(paths, header=True) as writers:
            for shard, size in enumerate(sizes):
                _fill(writers, size, lines, seed, shard)
        return paths
    parts = [out_dir / f".part{shard}" for shard in range(SHARDS)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_part, parts, sizes, [lines] * SHARDS, [seed] * SHARDS, range(SHARDS)))
    for name, columns in FILES.items():
        with paths[name].open("w", encoding="utf-8", newline="") as out:
            csv.writer(out, lineterminator="\n").writerow(columns)
            for part in parts:
                with (part / f"{name}.csv").open(encoding="utf-8", newline="") as source:
                    shutil.copyfileobj(source, out, 1 << 20)
    for part in parts:
        shutil.rmtree(part)
    return paths


class _CsvWriter:
    """``csv.writer`` for rows of strings, five times cheaper on the common row that needs no quoting
    (joined directly); a row with a comma, quote or line break inside a field goes through the csv
    module, so quoting stays exactly RFC 4180."""

    def __init__(self, handle):
        self.write = handle.write
        self.quoting = csv.writer(handle, lineterminator="\n")

    def writerow(self, row: list[str]) -> None:
        line = ",".join(row)
        if line.count(",") != len(row) - 1 or '"' in line or "\n" in line or "\r" in line:
            self.quoting.writerow(row)
        else:
            self.write(line + "\n")


class _Writers(dict):
    """One csv writer per output file, by name; closes the files on exit."""

    def __init__(self, paths: dict[str, Path], header: bool):
        self.handles = [path.open("w", encoding="utf-8", newline="") for path in paths.values()]
        super().__init__((name, _CsvWriter(handle)) for name, handle in zip(paths, self.handles))
        if header:
            for name, columns in FILES.items():
                self[name].writerow(columns)

    def __enter__(self) -> _Writers:
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.close()


def _write_part(folder: Path, lines: int, total: int, seed: int, shard: int) -> None:
    """One shard into files of its own, without headers (run in a worker process)."""
    folder.mkdir(parents=True, exist_ok=True)
    with _Writers({name: folder / f"{name}.csv" for name in FILES}, header=False) as writers:
        _fill(writers, lines, total, seed, shard)


def _fill(writers: dict, lines: int, total: int, seed: int, shard: int) -> None:
    """Shard ``shard``'s rows. Scenarios are interleaved so that each case gets the same share of
    lines: the case with the fewest lines so far goes next (ties in an order of the shard's own, so
    that the cases a small shard runs once less are not always the same)."""
    generator = _Generator(writers, total, seed, shard, SHARDS)
    queue = [(0, (order - 7 * shard) % len(CASES), name) for order, name in enumerate(CASES)]
    heapq.heapify(queue)
    while generator.line_count < lines:
        share, order, name = heapq.heappop(queue)
        generator.case = name
        before = generator.line_count
        getattr(generator, f"case_{name}")()
        if generator.random() < OPEN_ITEM_SHARE:
            generator.open_item()
        heapq.heappush(queue, (share + generator.line_count - before, order, name))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.recon_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    paths = generate(args.out_dir, args.lines, args.seed)
    print(json.dumps({name: str(path) for name, path in paths.items()}))


if __name__ == "__main__":
    main(sys.argv[1:])
