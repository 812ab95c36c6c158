"""OFX (Open Financial Exchange) 1.x SGML and 2.x XML bank and credit-card statements, QFX included.

One ``Statement`` per ``STMTRS`` (bank) or ``CCSTMTRS`` (credit card), one ``BankEntry`` per ``STMTTRN``.

What real files do, and what we do about it:

* **Two headers.** OFX 1 starts with an SGML header block (``OFXHEADER:100``, ``DATA:OFXSGML``, ...,
  ``ENCODING:USASCII|UTF-8``, ``CHARSET:1252|ISO-8859-1|NONE``). Wells Fargo and others run that block
  together on one line (``OFXHEADER:100DATA:OFXSGMLVERSION:102...``), so the keys are found by name, not by
  line. OFX 2 is XML: ``<?xml ... encoding="..."?>`` then ``<?OFX OFXHEADER="200" ...?>``. Some exports have
  no header at all and start at ``<OFX>``. The body always starts at the ``<OFX>`` element.
* **Encoding.** A declared UTF-8 (``ENCODING:UTF-8`` or the XML declaration, whose default is UTF-8) is read
  strictly: bytes that are not UTF-8 are an error naming the line, never a silent guess. The other
  declarations (``USASCII`` with ``CHARSET:1252``/``ISO-8859-1``/``NONE``, XML ``ASCII``/``ISO-8859-*``)
  are read as UTF-8 first, because banks label UTF-8 exports ``CHARSET:1252`` and a genuine single-byte
  file is practically never valid multi-byte UTF-8; then as the declared code page (Windows-1252 for
  1252/ISO-8859-1/NONE, as the WHATWG encoding rules read ISO-8859-1 too; ``CHARSET:1250`` and the like
  name their own). A declared encoding that is not a single-byte character set is refused.
* **Unclosed SGML leaves.** In OFX 1 a leaf element has no end tag (``<TRNAMT>-10.00``); its value runs to
  the next ``<``. Files mix closed and unclosed leaves (some French and Brazilian banks), wrap values over
  lines (whitespace is squeezed), leave a leaf empty (``<MEMO>`` then ``</STMTTRN>``), or use the XML
  shorthand ``<MEMO/>`` although the spec (OFX 2.3 §1.3.8) says an element must contain data. So an
  element is an *aggregate* only when its name is one of the OFX aggregates below; every other start tag
  is a leaf, and an end tag closes the innermost open aggregate of that name (implicitly closing the
  aggregates inside it, which SGML allows when their end tags are omitted). Aggregates never nest in
  themselves, so a second ``<STMTTRN>`` while one is open closes the first.
* **Noise.** ``<!-- comments -->`` are ignored (keeping line numbers), ``<BR/>`` inside a MEMO (ING
  Australia) is a space, entities (``&amp;``, ``&#233;``) are decoded.
* **Amounts** are signed from the account holder's side (OFX 2.3 §3.2.9.2), ``+`` optional; the radix is
  a period or a comma (§3.2.9.1: Brazilian and French banks write ``-100,00``); no digit grouping is
  allowed, but where both marks occur the last one is taken as the radix.
* **Dates** are ``YYYYMMDD[HHMMSS[.XXX]][[gmt offset[:tz name]]]`` (§3.2.8.2; ``HHMM`` occurs too). The
  date as written is the local date of the bank: it is taken as is, never shifted by the time zone.
* **Balances.** OFX has only ``LEDGERBAL`` (the closing balance, as of ``DTASOF``); there is no opening
  balance, so ``opening_balance`` is None and the balance check is n/a.
* **Fields.** booking_date = ``DTPOSTED``; value_date = ``DTUSER`` (else ``DTAVAIL``); counterparty_name
  = ``PAYEE/NAME`` or ``NAME`` (else ``EXTDNAME``); counterparty_iban = ``BANKACCTTO``/``CCACCTTO``
  ``ACCTID``; remittance_info = ``MEMO`` plus the check number and ``REFNUM`` when given;
  transaction_code = ``TRNTYPE``; bank_reference = ``FITID``. A ``CURRENCY`` aggregate means the amount
  is in ``CURSYM`` (§5.2); ``ORIGCURRENCY`` means it was already converted to ``CURDEF``.
* **Statement id**: the account plus ``DTEND`` of the transaction list (else the ``LEDGERBAL`` date); OFX
  gives a statement no id of its own (``TRNUID`` is the request's id, often 0).
* **Truncation.** A file that ends inside a statement before its ``LEDGERBAL`` is refused (transactions
  would be lost); ``</OFX>`` itself may be missing.

Investment statements (``INVSTMTRS``), including their ``INVBANKTRAN`` transactions, are not bank lines
and are skipped; a file with no bank or credit-card statement at all is an error.
"""

from __future__ import annotations

import codecs
import html
import re
from datetime import date
from decimal import Decimal

from sources.bank_files.model import BankEntry, Statement, StatementError
from sources.bank_files.text import decode, squeeze

_BOM = b"\xef\xbb\xbf"
_IDENTIFY = re.compile(rb"\s*(?:OFXHEADER\s*:|(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<(?:\?OFX\b|OFX(?:\s[^>]*)?>))",
                       re.IGNORECASE | re.DOTALL)
_BODY = re.compile(rb"<\s*OFX(?:\s[^>]*)?>", re.IGNORECASE)
_SGML_HEADER_KEYS = "OFXHEADER|DATA|VERSION|SECURITY|ENCODING|CHARSET|COMPRESSION|OLDFILEUID|NEWFILEUID"
# Keys are found by name because some banks run the whole header block together on one line.
_SGML_HEADER = re.compile(rf"({_SGML_HEADER_KEYS})\s*:\s*(.*?)\s*(?=(?:{_SGML_HEADER_KEYS})\s*:|\n|$)")
_XML_ENCODING = re.compile(r"<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)
_SINGLE_BYTE_CODEC = re.compile(r"ascii|iso8859-[0-9]+|cp125[0-8]|cp8[0-9]{2}|koi8-[a-z]+|mac-[a-z]+")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_BR = re.compile(r"<BR\s*/?>", re.IGNORECASE)
# One start or end tag, the text after it up to the next "<" (an SGML leaf's value), and the end tag of the
# same name if one follows at once (an XML leaf, or an empty aggregate).
_TOKEN = re.compile(r"<(/?)([A-Za-z][\w.:-]*)([^<>]*)>([^<]*)(</\2\s*>)?")
_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:[0-9]{2,6}(?:[.,][0-9]*)?)?\s*"
                   r"(?:\[[^\]]*\]|[+-][0-9]{1,2}(?::?[0-9]{2})?|Z|[A-Za-z]{3,4})?")
_PLAIN_AMOUNT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_AMOUNT = re.compile(r"([+-]?)\s*([0-9]*)(?:[.,]([0-9]*))?")
_GROUPED_AMOUNT = re.compile(r"([+-]?)\s*([0-9]{1,3}(?:,[0-9]{3})+)\.([0-9]*)"
                             r"|([+-]?)\s*([0-9]{1,3}(?:\.[0-9]{3})+),([0-9]*)")

# The OFX aggregates that matter for bank and credit-card statements, the wrappers around them and the
# investment ones we skip (OFX 2.3 chapters 2, 11, 13). Any other start tag is a leaf.
AGGREGATES = frozenset({
    "OFX", "SIGNONMSGSRSV1", "SONRS", "STATUS", "FI", "BANKMSGSRSV1", "CREDITCARDMSGSRSV1", "STMTTRNRS",
    "CCSTMTTRNRS", "STMTRS", "CCSTMTRS", "BANKACCTFROM", "CCACCTFROM", "BANKACCTTO", "CCACCTTO", "BANKTRANLIST",
    "STMTTRN", "PAYEE", "CURRENCY", "ORIGCURRENCY", "LEDGERBAL", "AVAILBAL", "BALLIST", "BAL", "IMAGEDATA",
    "MKTGINFO", "STMTENDTRNRS", "STMTENDRS", "CCSTMTENDTRNRS", "CCSTMTENDRS", "CLOSING", "CCCLOSING",
    "INVSTMTMSGSRSV1", "INVSTMTTRNRS", "INVSTMTRS", "INVACCTFROM", "INVTRANLIST", "INVBANKTRAN", "INVPOSLIST",
    "INVBAL", "INVOOLIST", "SECLISTMSGSRSV1", "SECLIST", "SIGNUPMSGSRSV1", "ACCTINFORS", "ACCTINFO",
    "BANKACCTINFO", "CCACCTINFO", "REWARDINFO", "LOANMSGSRSV1", "BANKTRANLISTP",
})
STATEMENTS = {"STMTRS": "BANKACCTFROM", "CCSTMTRS": "CCACCTFROM"}  # statement aggregate -> its account
_RECORDS = frozenset({"STMTTRN", *STATEMENTS})  # leaves directly inside are keyed by their own name


def identify(head: bytes) -> bool:
    """An OFX 1 header, an OFX 2 processing instruction, or a file that starts at ``<OFX>``."""
    if head.startswith(_BOM):
        head = head[len(_BOM):]
    return _IDENTIFY.match(head) is not None


def parse(data: bytes, file: str) -> list[Statement]:
    body = _BODY.search(data)
    if body is None:
        raise StatementError(file, 1, "no <OFX> element: not an OFX statement file")
    text, _ = decode(data, file, _encodings(data[:body.start()].decode("latin-1"), file))
    if text.startswith("\ufeff"):
        text = text[1:]
    if "<!--" in text:  # drop comments but keep their line breaks, so line numbers stay right
        text = _COMMENT.sub(lambda m: "\n" * m.group().count("\n"), text)
    if _BR.search(text):  # ING Australia breaks MEMO lines with <BR/>, which no OFX version defines
        text = _BR.sub(" ", text)
    start = re.search(r"<\s*OFX(?:\s[^>]*)?>", text, re.IGNORECASE)
    if start is None:  # pragma: no cover - the byte search found it and decoding keeps ASCII
        raise StatementError(file, 1, "no <OFX> element: not an OFX statement file")
    return _Reader(text, file).read(start.start())


def _encodings(header: str, file: str) -> tuple[str, ...]:
    """The encodings to read the file in, from the OFX 1 header or the XML declaration."""
    fallback = ("utf-8", "cp1252", "latin-1")
    xml = _XML_ENCODING.search(header)
    if xml:
        declared = xml.group(1).strip().lower().replace("_", "-")
        if declared in ("utf-8", "utf8", ""):
            return ("utf-8",)
        if declared in ("ascii", "us-ascii", "iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252"):
            return fallback
        return ("utf-8", _single_byte(declared, f"XML declaration names encoding {xml.group(1)!r}", file), "latin-1")
    fields = {key: value.upper() for key, value in _SGML_HEADER.findall(header)}
    if fields.get("ENCODING") in ("UTF-8", "UTF8", "UNICODE"):
        return ("utf-8",)
    charset = fields.get("CHARSET", "NONE")
    if charset in ("1252", "ISO-8859-1", "8859-1", "NONE", ""):
        return fallback
    name = f"cp{charset}" if charset.isdigit() else charset
    return ("utf-8", _single_byte(name, f"the OFX header names CHARSET:{charset}", file), "latin-1")


def _single_byte(name: str, what: str, file: str) -> str:
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a NUL byte in the name
        codec = ""
    if not _SINGLE_BYTE_CODEC.fullmatch(codec):
        raise StatementError(file, 1, f"{what}, which is not UTF-8 or a single-byte character set an OFX "
                                      "file can be in")
    return codec


class _Reader:
    """Walks the tags once; builds an entry at each ``</STMTTRN>``, a statement at each ``</STMTRS>``."""

    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file
        self.stack: list[str] = []
        self.statement: dict | None = None  # leaves of the open STMTRS/CCSTMTRS: key -> (value, its match)
        self.transaction: dict | None = None  # leaves of the open STMTTRN
        self.entries: list[BankEntry] = []
        self.statements: list[Statement] = []
        self.status: tuple[str, str] | None = None  # the first error status the server reported
        self.dates: dict[str, date] = {}
        self._cursor = (0, 1)  # (offset, line) of the last line number looked up

    def line(self, offset: int) -> int:
        """1-based line of ``offset``; cheap for offsets that only grow, as the walk asks for them."""
        last, number = self._cursor
        if offset < last:
            last, number = 0, 1
        number += self.text.count("\n", last, offset)
        self._cursor = (offset, number)
        return number

    def read(self, start: int) -> list[Statement]:
        stack = self.stack
        record, prefix = None, ""  # where a leaf goes: the open STMTTRN or statement, keyed "PARENT/NAME"
        for match in _TOKEN.finditer(self.text, start):
            closing, name, rest, value, closed = match.groups()
            name = name.upper()
            if closing:
                if name in stack:
                    self._close(name)
                    record, prefix = self._target()
            elif rest and rest[-1] == "/":  # <MEMO/>: XML shorthand for an empty element, which the spec forbids
                continue
            elif name in AGGREGATES:
                self._open(name, match.start())
                if closed:  # <BANKTRANLIST></BANKTRANLIST>
                    self._close(name)
                record, prefix = self._target()
            elif record is not None:
                value = value.strip()
                if value:
                    record[prefix + name] = (value, match)  # the match gives the line, if ever needed
            elif stack and stack[-1] == "STATUS":
                self._note_status(name, value.strip())
        self._end_of_file()
        if not self.statements:
            raise StatementError(self.file, self.line(start), self._nothing_found())
        return self.statements

    def _target(self) -> tuple[dict | None, str]:
        record = self.transaction if self.transaction is not None else self.statement
        parent = self.stack[-1] if self.stack else ""
        return record, "" if parent in _RECORDS else parent + "/"

    def _note_status(self, name: str, value: str) -> None:
        if name == "CODE" and value != "0" and self.status is None:
            self.status = (value, "")
        elif name == "MESSAGE" and self.status is not None:
            self.status = (self.status[0], value)

    def _open(self, name: str, offset: int) -> None:
        if name in self.stack:  # aggregates never nest in themselves: an omitted end tag
            self._close(name)
        self.stack.append(name)
        if name == "STMTTRN":
            if self.statement is not None:
                self.transaction = {"": (name, self.line(offset))}
        elif name in STATEMENTS:
            self.statement = {"": (name, self.line(offset))}
            self.entries = []

    def _close(self, name: str) -> None:
        """Pop up to and including ``name``, finishing the records whose end tags were omitted."""
        while self.stack:
            top = self.stack.pop()
            if top == "STMTTRN" and self.transaction is not None:
                self.entries.append(self._entry(self.transaction))
                self.transaction = None
            elif top in STATEMENTS and self.statement is not None:
                self.statements.append(self._statement(self.statement, self.entries))
                self.statement = None
            if top == name:
                return

    def _end_of_file(self) -> None:
        if self.statement is None:
            return
        kind, line = self.statement[""]
        if self.transaction is not None or "LEDGERBAL/BALAMT" not in self.statement:
            raise StatementError(self.file, line, f"the file ends inside <{kind}> (no </{kind}>, "
                                 "no LEDGERBAL after the transactions): it is truncated")
        self._close(kind)  # only end tags are missing: everything was read

    def _nothing_found(self) -> str:
        message = "no bank or credit card statement (STMTRS or CCSTMTRS) in this OFX file"
        if self.status is not None:
            code, text = self.status
            message += f"; the bank reported status {code}" + (f": {text}" if text else "")
        return message

    # ------------------------------------------------------------------ values

    def _entry(self, leaves: dict) -> BankEntry:
        line = leaves[""][1]
        get = leaves.get
        posted, amount = get("DTPOSTED"), get("TRNAMT")
        if posted is None or amount is None:
            missing = [what for what, leaf in (("TRNAMT (amount)", amount), ("DTPOSTED (date posted)", posted))
                       if leaf is None]
            raise StatementError(self.file, line, "transaction <STMTTRN> has no " + " and no ".join(missing)
                                 + "; every STMTTRN needs a TRNAMT and a DTPOSTED")
        dates = self.dates
        user = get("DTUSER") or get("DTAVAIL")
        name = get("PAYEE/NAME") or get("NAME") or get("EXTDNAME")
        counterparty = get("BANKACCTTO/ACCTID") or get("CCACCTTO/ACCTID")
        currency = get("CURRENCY/CURSYM")
        fitid = get("FITID")
        return BankEntry(
            booking_date=dates.get(posted[0]) or self._date(posted, "DTPOSTED"),
            amount=Decimal(amount[0]) if _PLAIN_AMOUNT.fullmatch(amount[0]) else self._amount(amount, "TRNAMT"),
            value_date=(dates.get(user[0]) or self._date(user, "DTUSER")) if user else None,
            counterparty_name=squeeze(_text(name)) if name else "",
            counterparty_iban="".join(_text(counterparty).split()) if counterparty else "",
            remittance_info=self._remittance(get("MEMO"), get("CHECKNUM"), get("REFNUM"), fitid),
            transaction_code=_text(get("TRNTYPE")).upper(),
            bank_reference=_text(fitid),
            currency=_text(currency).upper() if currency else "",
            line=line,
        )

    @staticmethod
    def _remittance(memo, check, reference, fitid) -> str:
        text = squeeze(_text(memo)) if memo else ""
        if check is None and reference is None:
            return text
        parts = [text] if text else []
        if check and check[0] not in text:
            parts.append(f"check {_text(check)}")
        if reference and reference[0] not in text and reference[0] != _text(fitid):
            parts.append(f"ref {_text(reference)}")
        return squeeze("; ".join(parts))

    def _statement(self, leaves: dict, entries: list[BankEntry]) -> Statement:
        kind, line = leaves[""]
        account_tag = STATEMENTS[kind]
        other_tag = next(tag for tag in STATEMENTS.values() if tag != account_tag)
        # the other kind's account aggregate too: some card exports put BANKACCTFROM in a CCSTMTRS
        account = "".join(_text(leaves.get(f"{account_tag}/ACCTID") or leaves.get(f"{other_tag}/ACCTID")).split())
        if not account:
            raise StatementError(self.file, line, f"statement <{kind}> has no account: {account_tag}/ACCTID "
                                                  "is missing or empty")
        currency = _text(leaves.get("CURDEF")).upper()
        if not currency:
            raise StatementError(self.file, line, f"statement <{kind}> of account {account} has no CURDEF "
                                                  "(the currency of its amounts)")
        balance = leaves.get("LEDGERBAL/BALAMT")
        as_of = leaves.get("LEDGERBAL/DTASOF")
        end = leaves.get("BANKTRANLIST/DTEND")
        closing_date = self._date(as_of, "LEDGERBAL/DTASOF") if as_of else None
        end_date = self._date(end, "DTEND") if end else closing_date
        return Statement(
            statement_id=f"{account}-{end_date.isoformat()}" if end_date else account,
            account=account,
            currency=currency,
            opening_balance=None,  # OFX carries none: LEDGERBAL - lines would only restate the lines
            closing_balance=self._amount(balance, "LEDGERBAL/BALAMT") if balance else None,
            statement_date=closing_date or end_date,
            entries=entries,
            line=line,
            closing_line=self.line(balance[1].start()) if balance else line,
        )

    def _date(self, leaf: tuple[str, re.Match], what: str) -> date:
        raw = leaf[0]
        match = _DATE.fullmatch(raw)
        if match is None:
            raise StatementError(self.file, self.line(leaf[1].start()),
                                 f"{what} {raw!r} is not an OFX date (YYYYMMDD[HHMMSS[.XXX]][[offset:TZ]])")
        year, month, day = (int(g) for g in match.groups())
        try:
            value = date(year, month, day)
        except ValueError:
            raise StatementError(self.file, self.line(leaf[1].start()), f"{what} {raw!r} is not a date "
                                 f"(no day {year:04d}-{month:02d}-{day:02d})") from None
        self.dates[raw] = value
        return value

    def _amount(self, leaf: tuple[str, re.Match], what: str) -> Decimal:
        raw = leaf[0]
        match = _AMOUNT.fullmatch(raw)
        if match is not None and (match.group(2) or match.group(3)):
            sign, whole, fraction = match.groups()
            return Decimal(f"{sign}{whole or '0'}.{fraction or '0'}" if fraction is not None else f"{sign}{whole}")
        grouped = _GROUPED_AMOUNT.fullmatch(raw)  # digit grouping, which the spec forbids but banks write
        if grouped is not None:
            sign, whole, fraction = (g for g in grouped.groups() if g is not None)
            return Decimal(f"{sign}{re.sub('[.,]', '', whole)}.{fraction or '0'}")
        raise StatementError(self.file, self.line(leaf[1].start()), f"{what} {raw!r} is not an amount "
                             "(expected digits with an optional sign and . or , as decimal mark)")


def _text(leaf: tuple[str, re.Match] | None) -> str:
    """A leaf's value with its entities (``&amp;``, ``&#233;``) decoded; empty for an absent leaf."""
    if leaf is None:
        return ""
    value = leaf[0]
    return html.unescape(value) if "&" in value else value
