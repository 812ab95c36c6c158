"""ISO 20022 camt.053 (``BkToCstmrStmt``, statement) and camt.054 (``BkToCstmrDbtCdtNtfctn``,
debit/credit notification) files.

What the format and the banks that send it do, and what we make of it:

* **Versions.** The namespace ``urn:iso:std:iso:20022:tech:xsd:camt.053.001.NN`` names message and
  version; .02 to .13 share the parts we read (a few elements moved: ``Sts`` became ``Sts/Cd`` in
  .08, a party's name ``Dbtr/Nm`` became ``Dbtr/Pty/Nm`` in .08, ``TxDtls/AmtDtls/TxAmt/Amt`` got a
  sibling ``TxDtls/Amt`` in .04). Files without a namespace, or with the elements prefixed
  (``<camt:Ntry>``), are read by element name. A camt.052 account report, a camt.054 given as
  camt.053 (and the reverse), .001.01 (the 2006 ``BkToCstmrStmtV01``, shaped otherwise) or an
  unknown version is refused, saying what was found.
* **Statements.** One ``Statement`` per ``Stmt`` (camt.053) or ``Ntfctn`` (camt.054), in file order;
  its id is the bank's ``Id``. Account ``Acct/Id/IBAN``, else ``Acct/Id/Othr/Id`` (Lithuanian and
  Swiss banks), else the .01 ``BBAN``/``PrtryAcct``. Currency ``Acct/Ccy``, else the ``Ccy`` of the
  balances or of the first entry.
* **Balances.** Opening ``OPBD``, or ``PRCD`` (previously closed booked, German banks) when there is
  no OPBD, or the first ``ITBD`` (interim booked) of an intermediate page; closing ``CLBD``, else the
  last ITBD. ``CdtDbtInd`` DBIT makes a balance negative; a balance without one (Lithuanian banks)
  is a credit balance. camt.054 carries no balances: opening and closing are None.
* **Entries.** One ``BankEntry`` per ``Ntry``, whatever its ``Sts``. The amount is signed by the
  entry's ``CdtDbtInd``. ``RvslInd`` true does *not* flip it: ISO 20022 says a reversal of a credit
  is reported as DBIT with RvslInd true (so CdtDbtInd already gives the direction); we append
  ``reversal`` to the transaction code so people see it. Dates are ``Dt`` or the date part of
  ``DtTm``; without ``BookgDt`` the value date, else the statement date, is the booking date.
  ``AcctSvcrRef`` (else ``NtryRef``) is the bank reference; ``BkTxCd`` ``Domn`` as
  ``PMNT-RCDT-ESCT``, else ``Prtry/Cd`` (German ``NTRF+166``), is the transaction code (an empty
  entry-level BkTxCd falls back to the first TxDtls one).
* **Transaction details.** ``TxDtls`` give the counterparty -- the debtor of a credit, the creditor
  of a debit (``Ultmt*`` when that party has no name; a reversal may name either side) with its
  ``*Acct`` IBAN or ``Othr/Id`` -- the ``EndToEndId`` (``NOTPROVIDED`` is no id), the remittance
  text (every ``Ustrd``, else ``Strd/AddtlRmtInf``, plus referred document numbers, else
  ``AddtlTxInf``; ``AddtlNtryInf`` when no detail has any text) and ``Strd/CdtrRefInf/Ref`` as the
  structured reference (RF, Swiss QRR/ISR). A batch entry (``Btch/NbOfTxs`` > 1, several TxDtls)
  stays one line, as booked: its details' texts are joined, their names listed, and only an id
  they all share is kept. TxDtls amounts are not needed for that, so details without amounts
  (camt.054) are fine. ``Chrgs`` are informational and ignored.
* **Safety and errors.** Only the standard library's expat reads the XML, and no DTD is accepted,
  so no external entity is ever resolved and no entity can expand. A file that is not well-formed
  (truncated, mismatched tags) is refused naming the line expat reports; a file whose bytes do not
  match its declared encoding (Latin-1 bytes in a file declaring UTF-8) is refused naming the line
  of the first bad byte; we never guess another encoding. A required element that is missing
  (``Ntry/Amt``, ``Ntry/CdtDbtInd``) or malformed is named with its line.

Speed (the target is 100,000 entries/s on a million entries, two cores). Measured per entry of
~750 bytes: expat alone, without handlers, takes 5 microseconds; with a Python callback per element
18; ElementTree's tree 34. So expat only checks well-formedness, with no handler, and the values
are read from the decoded text with ``str.find`` on the few tags we need, which is sound because
the text is then known to be well-formed XML (comments, CDATA and processing instructions
replaced, camt prefixes removed): ``<Name`` followed by ``>``, ``/`` or white space is a start tag,
text cannot contain ``<``, and the first ``</Name`` after a start tag is its end for every element
that does not contain its namesake. The elements before BkTxCd are one regular expression, a plain
TxDtls is read in ISO order (``_plain_detail``), anything else by the generic helpers. A file over
PARALLEL_BYTES is read by two processes (``_parse_in_two``): a forked child runs expat over all of
it and reads the entries of its last part, this process reads the rest, and the statements are
the same as one process would return (the tests compare them).
"""

from __future__ import annotations

import codecs
import os
import pickle
import re
import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from itertools import starmap
from xml.parsers import expat

from sources.bank_files.model import BankEntry, Statement, StatementError

MESSAGES = {"BkToCstmrStmt": "053", "BkToCstmrDbtCdtNtfctn": "054", "BkToCstmrAcctRpt": "052"}
MESSAGE_NAMES = {"053": "BkToCstmrStmt", "054": "BkToCstmrDbtCdtNtfctn"}
REPORTS = {"053": "Stmt", "054": "Ntfctn"}
DESCRIPTIONS = {"052": "an account report", "053": "a statement", "054": "a debit/credit notification"}
VERSIONS = range(2, 14)  # camt.05x.001.02 to .13
PARALLEL_BYTES = 8 << 20  # files this large are checked by expat in a forked child while we read them

_ENDED_EARLY = frozenset(expat.errors.codes[message] for message in (
    expat.errors.XML_ERROR_NO_ELEMENTS, expat.errors.XML_ERROR_UNCLOSED_TOKEN,
    expat.errors.XML_ERROR_UNCLOSED_CDATA_SECTION))
_NAMESPACE = re.compile(r"camt\.(\d{3})\.(\d{3})\.(\d{2})")
_DECLARED = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_MARKUP = re.compile(r"<!--.*?-->|<!\[CDATA\[(.*?)\]\]>|<\?.*?\?>", re.S)
_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|amp|lt|gt|quot|apos);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_CCY = re.compile(r"""Ccy\s*=\s*["']([^"']*)["']""")
_PREFIX = re.compile(r"""xmlns:([A-Za-z_][\w.-]*)\s*=\s*["']([^"']*)["']""")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T|$)")  # ISODate, or ISODateTime's date part
_NON_SPACE = re.compile(r"\S")
_NON_SPACE_BYTE = re.compile(rb"\S")
_TAG_END = frozenset(">/ \t\r\n")
_SELF_NESTING = frozenset(("Id", "Dt"))  # the only camt elements we read that contain their namesakes
_TRUE = frozenset(("true", "1"))
_NOT_PROVIDED = "NOTPROVIDED"


# --------------------------------------------------------------------------- public interface

def identify_camt053(head: bytes) -> bool:
    """An ISO 20022 bank-to-customer message other than camt.054: camt.053, and camt.052 so that
    ``--format auto`` refuses an account report with a clear message."""
    kind = _head_kind(head)
    return kind is not None and kind != "054"


def identify_camt054(head: bytes) -> bool:
    return _head_kind(head) == "054"


def parse_camt053(data: bytes, file: str) -> list[Statement]:
    return _parse(data, file, "053")


def parse_camt054(data: bytes, file: str) -> list[Statement]:
    return _parse(data, file, "054")


def _head_kind(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or head[:2] in (b"<\x00", b"\x00<"):
        head = head.decode("utf-16" if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else
                           ("utf-16-le" if head[0] == 0x3C else "utf-16-be"), "ignore").encode("utf-8", "ignore")
    if not head.lstrip(codecs.BOM_UTF8 + b" \t\r\n").startswith(b"<"):
        return None
    for name, kind in MESSAGES.items():
        if b"<" + name.encode() in head or b":" + name.encode() in head:
            return kind
    found = _NAMESPACE.search(head.decode("latin-1"))
    return found.group(1) if found and found.group(1) in DESCRIPTIONS else None


# --------------------------------------------------------------------------- the document

class _Doc:
    """The decoded, normalised text of one file and what every reader needs from it."""

    __slots__ = ("file", "text", "kind", "dates", "_counted")

    def __init__(self, file: str, text: str, kind: str):
        self.file = file
        self.text = text
        self.kind = kind
        self.dates: dict[str, date] = {}
        self._counted = (0, 1)  # (position, its line): lines are asked for in file order, mostly

    def line(self, pos: int) -> int:
        """1-based line of ``pos``, counted from the last position asked for (they come in file order)."""
        pos = max(pos, 0)
        counted, line = self._counted
        if pos >= counted:
            line += self.text.count("\n", counted, pos)
        else:
            line -= self.text.count("\n", pos, counted)
        self._counted = (pos, line)
        return line

    def counted(self, pos: int, line: int) -> None:
        """``pos`` is on ``line``: a reader that counted lines itself says how far it got."""
        self._counted = (pos, line)

    def error(self, pos: int, message: str) -> StatementError:
        return StatementError(self.file, self.line(pos), message)

    def date(self, raw: str, pos: int, what: str) -> date:
        """``Dt`` (YYYY-MM-DD) or the date part of ``DtTm``; the same few dates repeat, so cache them."""
        value = self.dates.get(raw)
        if value is None:
            text = raw.strip()
            try:
                value = date.fromisoformat(text[:10]) if _DATE.match(text) else None
            except ValueError:
                value = None
            if value is None:
                raise self.error(pos, f"{what} {text!r} is not a date (YYYY-MM-DD)")
            self.dates[raw] = value
        return value


def _parse(data: bytes, file: str, kind: str) -> list[Statement]:
    return _parse_text(data, file, kind)  # the registry pauses the cyclic GC around every parser


def _parse_text(data: bytes, file: str, kind: str) -> list[Statement]:
    text, encoding = _decode(data, file)
    root = _root(text, file)
    source = data if encoding == "utf-8" and not data.startswith(codecs.BOM_UTF8) else text
    if len(source) >= PARALLEL_BYTES and hasattr(os, "fork") and threading.active_count() == 1:
        doc = _Doc(file, _normalise(text, root), kind)
        statements = _parse_in_two(doc, root, source)
    else:
        _raise_verdict(_expat_verdict(source), file)
        doc = _Doc(file, _normalise(text, root), kind)
        statements = _statements(doc, _message(doc, root))
    if not statements:
        raise doc.error(root, f"the message has no {REPORTS[kind]}: there is no {DESCRIPTIONS[kind]} in the file")
    return statements


def _decode(data: bytes, file: str) -> tuple[str, str]:
    """The text of the file in the encoding its BOM or XML declaration names (UTF-8 without either)."""
    encoding, body, declared = _encoding(data, file)
    try:
        return body.decode(encoding), codecs.lookup(encoding).name
    except LookupError:
        raise StatementError(file, 1, f"the XML declaration names encoding {encoding!r}, which is unknown") from None
    except UnicodeDecodeError as exc:
        bad = body[exc.start:exc.start + 1].hex().upper()
        raise StatementError(file, body.count(b"\n", 0, exc.start) + 1,
                             f"encoding error: byte 0x{bad} is not valid {encoding.upper()} text, but {declared}; "
                             "refusing to guess another encoding") from None


def _encoding(data: bytes, file: str) -> tuple[str, bytes, str]:
    """(encoding, the bytes to decode, why that encoding) -- XML 1.0 appendix F's detection."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8", data[3:], "it starts with a UTF-8 byte-order mark"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", data, "it starts with a UTF-16 byte-order mark"
    if data[:2] in (b"<\x00", b"\x00<"):
        return ("utf-16-le" if data[0] == 0x3C else "utf-16-be"), data, "its first bytes are UTF-16"
    first = _NON_SPACE_BYTE.search(data)
    if first is None:
        raise StatementError(file, 1, "the file is empty; expected a camt XML document")
    if data[first.start():first.start() + 1] != b"<":  # say so before an encoding error would
        snippet = data[first.start():first.start() + 20].split(b"\n")[0].decode("latin-1")
        raise StatementError(file, data.count(b"\n", 0, first.start()) + 1,
                             f"not an XML document: found {snippet!r} where an element should start")
    found = _DECLARED.match(data[:300])
    if found is None:
        return "utf-8", data, "it has no encoding declaration, so it must be UTF-8"
    return found.group(1).decode("ascii").lower(), data, f'its XML declaration says encoding="{found.group(1).decode()}"'


def _root(text: str, file: str) -> int:
    """Index of the root element's start tag, after the XML declaration and comments; no DTD."""
    pos = 0
    while True:
        found = _NON_SPACE.search(text, pos)
        start = found.start() if found else len(text)
        if start == len(text) or text[start] != "<":
            snippet = text[start:start + 20].split("\n")[0]
            raise StatementError(file, text.count("\n", 0, start) + 1,
                                 f"not an XML document: found {snippet!r} where an element should start"
                                 if snippet else "not an XML document: there is no root element")
        if text.startswith("<!DOCTYPE", start) or (text.startswith("<!", start) and
                                                   not text.startswith("<!--", start)):
            raise StatementError(file, text.count("\n", 0, start) + 1,
                                 "the file has a DTD (<!DOCTYPE ...>); camt files have none, and entity "
                                 "declarations are refused for safety")
        if text.startswith("<?", start) or text.startswith("<!--", start):
            terminator = "?>" if text[start + 1] == "?" else "-->"
            close = text.find(terminator, start + 2)
            if close < 0:
                return start  # expat names the unclosed declaration or comment
            pos = close + len(terminator)
            continue
        return start


def _expat_verdict(source: bytes | str) -> tuple[int, str] | None:
    parser = expat.ParserCreate()
    try:
        parser.Parse(source, True)
    except expat.ExpatError as exc:
        message = f"not well-formed XML (column {exc.offset + 1}): {expat.ErrorString(exc.code)}"
        if exc.code in _ENDED_EARLY:
            message += " -- the file ends before the XML document is complete (truncated?)"
        return exc.lineno, message
    return None


def _raise_verdict(verdict: tuple[int, str] | None, file: str) -> None:
    if verdict is not None:
        raise StatementError(file, verdict[0], verdict[1])


def _normalise(text: str, root: int) -> str:
    """Comments, CDATA and processing instructions replaced (keeping line breaks), camt prefixes removed."""
    if _has_markup(text, root, "!") or _has_markup(text, root, "?"):
        text = text[:root] + _MARKUP.sub(_replace_markup, text[root:])
    head = text[root:text.find(">", root) + 1]
    name = head[1:].split(None, 1)[0].rstrip("/>") if len(head) > 1 else ""
    prefixes = {p for p, uri in _PREFIX.findall(head) if "camt." in uri or "iso:20022" in uri}
    if ":" in name:
        prefixes.add(name.split(":", 1)[0])
    for prefix in sorted(prefixes):
        text = text.replace(f"<{prefix}:", "<").replace(f"</{prefix}:", "</")
    return text


def _has_markup(text: str, start: int, mark: str) -> bool:
    """Is there a ``<!`` (``<?``) after ``start``? ``find`` of one character is the fast search."""
    i = text.find(mark, start)
    while i >= 0:
        if text[i - 1] == "<":
            return True
        i = text.find(mark, i + 1)
    return False


def _replace_markup(found: re.Match) -> str:
    if found.group(1) is not None:
        return found.group(1).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "\n" * found.group(0).count("\n")


# --------------------------------------------------------------------------- two processes for a large file

TAIL_SHARE = 0.27  # of the text read by the child, which also runs expat over the whole file


def _parse_in_two(doc: _Doc, root: int, source: bytes | str) -> list[Statement]:
    """A large file on two cores: a forked child checks the whole file with expat and reads the
    entries of the last TAIL_SHARE of the text, while this process reads the rest. Both read the
    same text the same way, so the statements are those a single process would return."""
    split = _start(doc.text, "<Ntry", int(len(doc.text) * (1 - TAIL_SHARE)), len(doc.text))
    try:
        child = _Child(doc, root, source, split)
    except OSError:  # no process to spare: read it alone
        _raise_verdict(_expat_verdict(source), doc.file)
        return _statements(doc, _message(doc, root))
    try:
        statements = _statements(doc, _message(doc, root), stop=split)
    except Exception:
        child.check_xml()  # a file that is not well-formed is reported as such, whatever reading it ran into
        raise
    inside, entries, later = child.tail()
    if inside:
        statements[-1].entries.extend(starmap(_entry_from_row, entries))
    for statement in later:
        statement.entries = list(starmap(_entry_from_row, statement.entries))
    return statements + later


class _Child:
    """The forked child: its expat verdict and the statements from ``split`` on, as rows (pickled
    tuples of plain values are much cheaper to send than BankEntry objects)."""

    def __init__(self, doc: _Doc, root: int, source: bytes | str, split: int):
        self.doc, self.root, self.source, self.split = doc, root, source, split
        self.report: tuple | None = None
        read_end, write_end = os.pipe()
        try:
            self.pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            raise
        if self.pid == 0:  # pragma: no cover - the child reports through the pipe and never returns
            try:
                os.close(read_end)
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(pickle.dumps(self._work(), protocol=pickle.HIGHEST_PROTOCOL))
            finally:
                os._exit(0)
        os.close(write_end)
        self.pipe = read_end

    def _work(self) -> tuple:
        verdict = _expat_verdict(self.source)
        if verdict is not None:
            return "xml", verdict
        try:
            return "ok", None, _tail(self.doc, self.root, self.split)
        except StatementError as exc:
            return "error", None, exc.line, exc.message
        except Exception:  # a bug: the parent reads the tail itself and meets it there
            return "lost", None

    def _wait(self) -> tuple:
        if self.report is None:
            with os.fdopen(self.pipe, "rb") as pipe:
                payload = pipe.read()
            os.waitpid(self.pid, 0)
            self.report = pickle.loads(payload) if payload else ("lost", None)
            if self.report[0] == "lost":  # the child died or failed: check here
                verdict = _expat_verdict(self.source)
                self.report = ("xml", verdict) if verdict else self.report
        return self.report

    def check_xml(self) -> None:
        report = self._wait()
        if report[0] == "xml":
            _raise_verdict(report[1], self.doc.file)

    def tail(self) -> tuple[bool, list, list[Statement]]:
        report = self._wait()
        self.check_xml()
        if report[0] == "error":
            raise StatementError(self.doc.file, report[2], report[3])
        if report[0] == "ok":
            return report[2]
        return _tail(self.doc, self.root, self.split)


def _tail(doc: _Doc, root: int, split: int) -> tuple[bool, list, list[Statement]]:
    """(is ``split`` inside a statement, the rows of that statement's entries from ``split`` on, the
    statements after it with rows as entries)."""
    inside, rows, later = False, [], []
    if split < 0:
        return inside, rows, later
    m_start, m_end = _message(doc, root)
    created = _group_created(doc, m_start, m_end)
    for tag, start, end in _spans(doc, m_start, m_end):
        if tag >= split:
            later.append(_statement(doc, tag, start, end, created, _entry_row))
        elif end > split:
            inside = True
            header, _ = _statement_header(doc, tag, start, end, created)
            rows = _entries(doc, split, end, header, _entry_row)
    return inside, rows, later


def _entry_row(booking, amount, *fields) -> tuple:
    return (booking, str(amount), *fields)


def _entry_from_row(booking, amount, *fields) -> BankEntry:
    return BankEntry(booking, Decimal(amount), *fields)


# --------------------------------------------------------------------------- generic element access

def _start(t: str, tag: str, pos: int, end: int) -> int:
    """Index of the first start tag ``tag`` (``"<Name"``) of exactly that name in ``t[pos:end]``, or -1."""
    n = len(tag)
    i = t.find(tag, pos, end)
    while i >= 0 and t[i + n] not in _TAG_END:
        i = t.find(tag, i + n, end)
    return i


def _content(t: str, i: int, name: str, end: int) -> tuple[int, int]:
    """(start, end) of the content of the element whose start tag is at ``i``."""
    gt = t.find(">", i)
    if t[gt - 1] == "/":
        return gt + 1, gt + 1
    if name not in _SELF_NESTING:
        close = t.find("</" + name, gt, end)
        return gt + 1, (close if close >= 0 else end)
    return gt + 1, _matching_end(t, name, gt + 1, end)


def _matching_end(t: str, name: str, pos: int, end: int) -> int:
    """The end tag that closes an element containing its namesakes (Acct/Id/Othr/Id, Bal/Dt/Dt)."""
    depth = 1
    while True:
        opening = _start(t, "<" + name, pos, end)
        closing = _start(t, "</" + name, pos, end)
        if closing < 0:
            return end
        if 0 <= opening < closing:
            gt = t.find(">", opening)
            depth += t[gt - 1] != "/"
            pos = gt + 1
        else:
            depth -= 1
            if depth == 0:
                return closing
            pos = closing + 2


def _element(t: str, tag: str, start: int, end: int) -> tuple[int, int] | None:
    """Content (start, end) of the first ``tag`` (``"<Name"``) element in ``t[start:end]``, or None."""
    i = _start(t, tag, start, end)
    return _content(t, i, tag[1:], end) if i >= 0 else None


def _children(t: str, start: int, end: int):
    """(name, tag index, content start, content end) of each child element in ``t[start:end]``."""
    pos = start
    while True:
        i = t.find("<", pos, end)
        if i < 0 or t[i + 1] == "/":
            return
        gt = t.find(">", i)
        name = t[i + 1:gt].split(None, 1)[0].rstrip("/")
        c_start, c_end = _content(t, i, name, end)
        yield name, i, c_start, c_end
        pos = gt + 1 if t[gt - 1] == "/" else t.find(">", c_end) + 1


def _value(t: str, start: int, end: int) -> str:
    return _unescape(t[start:end]).strip()


def _leaf(t: str, tag: str, start: int, end: int) -> str:
    """Text of the first ``tag`` element in ``t[start:end]`` (``""`` when absent)."""
    i = _start(t, tag, start, end)
    if i < 0:
        return ""
    gt = t.find(">", i)
    return "" if t[gt - 1] == "/" else _unescape(t[gt + 1:t.find("<", gt)]).strip()


def _unescape(value: str) -> str:
    return _ENTITY.sub(_entity, value) if "&" in value else value


def _entity(found: re.Match) -> str:
    name = found.group(1)
    if name[0] == "#":
        return chr(int(name[2:], 16) if name[1] == "x" else int(name[1:]))
    return _ENTITIES[name]


def _leaves(t: str, tag: str, start: int, end: int) -> list[str]:
    values = []
    i = _start(t, tag, start, end)
    while i >= 0:
        gt = t.find(">", i)
        if t[gt - 1] != "/":
            value = " ".join(_unescape(t[gt + 1:t.find("<", gt)]).split())
            if value:
                values.append(value)
        i = _start(t, tag, gt, end)
    return values


# --------------------------------------------------------------------------- message and statements

def _message(doc: _Doc, root: int) -> tuple[int, int]:
    """Content (start, end) of the message element, after checking message type and version."""
    t = doc.text
    root_name = _tag_name(t, root)
    message, m_start = root_name, root
    if root_name == "Document":
        first = t.find("<", t.find(">", root))
        if first >= 0 and t[first + 1] != "/":
            message, m_start = _tag_name(t, first), first
    _check_message(doc, m_start, root_name, message, _NAMESPACE.search(t, root, t.find(">", m_start) + 1))
    gt = t.find(">", m_start)
    if t[gt - 1] == "/":
        return gt + 1, gt + 1
    close = t.rfind("</" + message)
    return gt + 1, (close if close > gt else len(t))


def _check_message(doc: _Doc, at: int, root: str, message: str, version: re.Match | None) -> None:
    kind = doc.kind
    found_kind = version.group(1) if version else MESSAGES.get(message)
    what = f"camt.{version.group(1)}.{version.group(2)}.{version.group(3)}" if version else "no camt namespace"
    if found_kind == kind and version and (version.group(2) != "001" or int(version.group(3)) not in VERSIONS):
        # .001.01 (2006) named its message BkToCstmrStmtV01 and is shaped otherwise
        raise doc.error(at, f"unsupported camt.{kind} version {what}: ledgerflow reads camt.{kind}.001.02 to "
                            f".{VERSIONS[-1]:02d}")
    if found_kind in DESCRIPTIONS and found_kind != kind:
        hint = ("ledgerflow reads camt.053 statements and camt.054 notifications" if found_kind == "052" else
                f"use --format camt{found_kind}")
        raise doc.error(at, f"not a camt.{kind} file: found {what} <{message}>, {DESCRIPTIONS[found_kind]}; {hint}")
    if MESSAGES.get(message) != kind:
        inside = f" containing <{message}>" if message != root else ""
        raise doc.error(at, f"not a camt.{kind} file: found <{root}>{inside} ({what}); expected <Document> "
                            f"containing <{MESSAGE_NAMES[kind]}>")


def _tag_name(t: str, i: int) -> str:
    gt = t.find(">", i)
    return t[i + 1:gt].split(None, 1)[0].rstrip("/") if gt > i else ""


def _spans(doc: _Doc, start: int, end: int):
    """(start tag, content start, content end) of each Stmt (Ntfctn) in ``t[start:end]``; a statement
    that goes on past ``end`` ends there."""
    t = doc.text
    tag, close_tag = "<" + REPORTS[doc.kind], "</" + REPORTS[doc.kind]
    i = _start(t, tag, start, end)
    while i >= 0:
        following = _start(t, tag, i + len(tag), end)
        region_end = following if following >= 0 else end
        gt = t.find(">", i)
        if t[gt - 1] == "/":
            yield i, gt + 1, gt + 1
        else:
            close = t.rfind(close_tag, gt, region_end)
            while close >= 0 and t[close + len(close_tag)] not in _TAG_END:  # </StmtPgntn
                close = t.rfind(close_tag, gt, close)
            yield i, gt + 1, (close if close >= 0 else region_end)
        i = following


def _statements(doc: _Doc, message: tuple[int, int], stop: int = -1) -> list[Statement]:
    """The statements of the message, in file order; with ``stop``, only what lies before it."""
    m_start, m_end = message
    created = _group_created(doc, m_start, m_end)
    return [_statement(doc, tag, start, end, created)
            for tag, start, end in _spans(doc, m_start, m_end if stop < 0 else stop)]


def _group_created(doc: _Doc, start: int, end: int) -> date | None:
    header = _start(doc.text, "<GrpHdr", start, end)
    if header < 0:
        return None
    h_start, h_end = _content(doc.text, header, "GrpHdr", end)
    created = _leaf(doc.text, "<CreDtTm", h_start, h_end)
    return doc.date(created, header, "GrpHdr/CreDtTm") if created else None


class _Header:
    """What a Stmt/Ntfctn says before its entries."""

    __slots__ = ("statement_id", "account", "currency", "opening", "closing", "closing_line", "closing_date",
                 "period_end", "created", "day")

    def __init__(self):
        self.statement_id = self.account = self.currency = ""
        self.opening: Decimal | None = None
        self.closing: Decimal | None = None
        self.closing_line = 0
        self.closing_date = self.period_end = self.created = self.day = None


def _statement(doc: _Doc, tag: int, start: int, end: int, created: date | None,
               make: Callable = BankEntry) -> Statement:
    line = doc.line(tag)
    header, first = _statement_header(doc, tag, start, end, created)
    return Statement(
        statement_id=header.statement_id or f"{header.account}-{header.day.isoformat() if header.day else ''}",
        account=header.account,
        currency=header.currency,
        opening_balance=header.opening,
        closing_balance=header.closing,
        statement_date=header.day,
        entries=_entries(doc, first, end, header, make) if first >= 0 else [],
        line=line,
        closing_line=header.closing_line,
    )


def _statement_header(doc: _Doc, tag: int, start: int, end: int, created: date | None) -> tuple[_Header, int]:
    """What the statement says before its first entry, and where that entry starts (-1: none)."""
    t = doc.text
    first = _start(t, "<Ntry", start, end)
    header = _read_header(doc, start, first if first >= 0 else end)
    if not header.account:
        raise doc.error(tag, f"{REPORTS[doc.kind]} {header.statement_id!r} has no account "
                             "(Acct/Id/IBAN or Acct/Id/Othr/Id)")
    if not header.currency and first >= 0:  # camt.054, or a camt.053 without Acct/Ccy: the entries' currency
        amount = _start(t, "<Amt", first, end)
        header.currency = _currency(t, amount).upper() if amount >= 0 else ""
    header.day = header.closing_date or header.period_end or header.created or created
    return header, first


def _read_header(doc: _Doc, start: int, end: int) -> _Header:
    t = doc.text
    header = _Header()
    balances = []
    for name, i, c_start, c_end in _children(t, start, end):
        if name == "Id":
            header.statement_id = _value(t, c_start, c_end)
        elif name == "Acct":
            _read_account(doc, header, c_start, c_end)
        elif name == "CreDtTm":
            header.created = doc.date(t[c_start:c_end], i, "CreDtTm")
        elif name == "FrToDt":
            to = _leaf(t, "<ToDtTm", c_start, c_end) or _leaf(t, "<ToDt", c_start, c_end)
            header.period_end = doc.date(to, i, "FrToDt/ToDtTm") if to else None
        elif name == "Bal":
            balances.append(_read_balance(doc, i, c_start, c_end))
    _choose_balances(header, balances)
    return header


def _read_account(doc: _Doc, header: _Header, start: int, end: int) -> None:
    t = doc.text
    for name, i, c_start, c_end in _children(t, start, end):
        if name == "Id":
            header.account = _account_id(t, c_start, c_end)
        elif name == "Ccy":
            header.currency = _value(t, c_start, c_end).upper()


def _account_id(t: str, start: int, end: int) -> str:
    """``Id/IBAN``, else ``Id/Othr/Id`` (or .01's ``BBAN``, ``UPIC``, ``PrtryAcct/Id``), spaces removed."""
    value = _leaf(t, "<IBAN", start, end)
    if not value:
        other = _start(t, "<Othr", start, end)
        other = other if other >= 0 else _start(t, "<PrtryAcct", start, end)
        value = _leaf(t, "<Id", other, end) if other >= 0 else (
            _leaf(t, "<BBAN", start, end) or _leaf(t, "<UPIC", start, end))
    return "".join(value.split())


def _read_balance(doc: _Doc, tag: int, start: int, end: int) -> tuple[str, Decimal, int, date | None, str]:
    """(type code, signed amount, line, date, currency) of one ``Bal``."""
    t = doc.text
    code, amount, sign, day, currency = "", None, 1, None, ""
    for name, i, c_start, c_end in _children(t, start, end):
        if name == "Tp":
            code = (_leaf(t, "<Cd", c_start, c_end) or _leaf(t, "<Prtry", c_start, c_end)).upper()
        elif name == "Amt":
            amount = _amount(doc, _value(t, c_start, c_end), i, "Bal/Amt")
            currency = _currency(t, i)
        elif name == "CdtDbtInd":
            sign = _direction(doc, _value(t, c_start, c_end), i, "Bal/CdtDbtInd")
        elif name == "Dt":
            raw = _leaf(t, "<Dt", c_start, c_end) or _leaf(t, "<DtTm", c_start, c_end)
            day = doc.date(raw, i, "Bal/Dt") if raw else None
    if amount is None:
        raise doc.error(tag, f"Bal {code or '(no Tp)'} has no Amt")
    return code, (amount if sign > 0 else -amount), doc.line(tag), day, currency


def _choose_balances(header: _Header, balances: list) -> None:
    """OPBD, else PRCD, else the first ITBD opens; CLBD, else the last other ITBD, closes."""
    by_code: dict[str, list] = {}
    for balance in balances:
        by_code.setdefault(balance[0], []).append(balance)
    interim = by_code.get("ITBD", [])
    opening = (by_code.get("OPBD") or by_code.get("PRCD") or interim[:1] or [None])[0]
    closing = (by_code.get("CLBD") or [b for b in interim if b is not opening][-1:] or [None])[0]
    if opening:
        header.opening = opening[1]
    if closing:
        header.closing = closing[1]
        header.closing_line, header.closing_date = closing[2], closing[3]
    if not header.currency:
        header.currency = next((b[4].upper() for b in (closing, opening) if b and b[4]), "")


def _amount(doc: _Doc, text: str, pos: int, what: str) -> Decimal:
    """An ``xs:decimal`` amount as ISO 20022 writes it: digits and at most one ``.``, never negative."""
    if not (text.isascii() and text.replace(".", "", 1).isdigit()):
        raise doc.error(pos, f"{what} {text!r} is not an amount (digits with an optional '.' decimal mark)")
    return Decimal(text)


def _direction(doc: _Doc, text: str, pos: int, what: str) -> int:
    if text == "CRDT":
        return 1
    if text == "DBIT":
        return -1
    raise doc.error(pos, f"{what} {text!r} is neither CRDT nor DBIT")


def _currency(t: str, tag: int) -> str:
    attributes = t[tag:t.find(">", tag)]
    found = _CCY.search(attributes)
    return found.group(1).strip() if found else ""


# --------------------------------------------------------------------------- entries (the hot path)
#
# A million entries at 100,000/s on two cores leave about 10 microseconds per entry for reading it:
# a few dozen ``str.find`` calls. So the usual shapes are read inline, and anything else goes to the
# generic helpers above (``_head``, ``_detail``), which read any well-formed writing of the element.

# The elements of an entry before BkTxCd, in ISO 20022's order, as banks write them, read by one
# regular expression (possessive: it never backtracks). An entry written any other way (other
# whitespace or attributes, entities in an amount, elements out of order) is read by ``_head``.
_HEAD = re.compile(
    r"\s*+(?:<NtryRef>([^<]*+)</NtryRef>\s*+)?+"
    r'<Amt(?: Ccy="([A-Z]{3})")?+>([0-9]++(?:\.[0-9]*+)?+)</Amt>\s*+'
    r"<CdtDbtInd>(CRDT|DBIT)</CdtDbtInd>\s*+"
    r"(?:<RvslInd>([^<]*+)</RvslInd>\s*+)?+"
    r"(?:<Sts>(?:\s*+<Cd>[^<]*+</Cd>\s*+|\s*+<Prtry>[^<]*+</Prtry>\s*+|[^<]*+)</Sts>\s*+)?+"
    r"(?:<BookgDt>\s*+<Dt(?:Tm)?+>([0-9]{4}-[0-9]{2}-[0-9]{2})(?:T[^<]*+)?+</Dt(?:Tm)?+>\s*+</BookgDt>\s*+)?+"
    r"(?:<ValDt>\s*+<Dt(?:Tm)?+>([0-9]{4}-[0-9]{2}-[0-9]{2})(?:T[^<]*+)?+</Dt(?:Tm)?+>\s*+</ValDt>\s*+)?+"
    r"(?:<AcctSvcrRef>([^<]*+)</AcctSvcrRef>)?+"
    # ... and then an element that ISO 20022 puts after them, or the entry's end: an element above
    # written another way must not just be left out.
    r"\s*+(?=<(?:Avlbty|BkTxCd|ComssnWvrInd|AddtlInfInd|AmtDtls|Chrgs|TechInptChanl|Intrst|CardTx|NtryDtls"
    r"|AddtlNtryInf)[\s/>]|</Ntry[\s>])")


def _entries(doc: _Doc, first: int, end: int, header: _Header, make: Callable = BankEntry) -> list:
    """Every ``Ntry`` from ``first`` to ``end``, each made by ``make`` from BankEntry's fields. An
    entry reaches to the next entry's start tag; the ``<Ntry`` on the way are its NtryRef and NtryDtls."""
    t = doc.text
    find, rfind, count, head = t.find, t.rfind, t.count, _HEAD.match
    dates, codes, tag_end = doc.dates, {}, _TAG_END
    entries = []
    append = entries.append
    currency, day = header.currency, header.day
    line, counted = doc.line(first), first
    i = first
    while i >= 0:
        gt = find(">", i + 5)
        k = find("<Ntry", gt, end)
        while k >= 0 and t[k + 5] not in tag_end:  # its own NtryRef and NtryDtls
            k = find("<Ntry", k + 5, end)
        close = rfind("</Ntry", gt, k if k >= 0 else end) if t[gt - 1] != "/" else -1
        start = gt + 1
        close = close if close >= 0 else start
        line += count("\n", counted, i)
        counted = i

        found = head(t, start, close)
        if found is not None:
            ntry_ref, entry_currency, raw, direction, reversal, booking, value, ref = found.groups()
            after = found.end()
            details = find("<NtryDtls", after, close)
        else:
            details = _start(t, "<NtryDtls", start, close)
            ntry_ref, entry_currency, raw, direction, reversal, booking, value, ref, after = _head(
                doc, i, start, details if details >= 0 else close)
        own = details if details >= 0 else close  # the entry's own elements come before NtryDtls
        amount = Decimal(raw) if direction == "CRDT" else Decimal("-" + raw)
        reversal = reversal is not None and reversal.strip().lower() in _TRUE
        if booking is not None:
            booking = dates.get(booking) or doc.date(booking, i, "Ntry/BookgDt")
        if value is not None:
            value = dates.get(value) or doc.date(value, i, "Ntry/ValDt")
        ref = (ref or "").strip() or (ntry_ref or "").strip()
        if "&" in ref:
            ref = _unescape(ref)
        code = find("<BkTxCd", after, own)
        if code >= 0:
            c_gt = find(">", code)
            c_end = find("</BkTxCd", c_gt, own)
            body = t[c_gt + 1:c_end] if c_end >= 0 and t[c_gt - 1] != "/" else ""  # <BkTxCd/>: none
            code = codes.get(body)
            if code is None:
                code = codes[body] = _bank_code(body)
        else:
            code = ""

        if details >= 0:
            d_end = rfind("</NtryDtls", details, close)
            name, iban, remittance, structured, e2e, detail_code = _details(
                t, details, d_end if d_end >= 0 else close, (direction == "CRDT") != reversal, reversal, codes)
            code = code or detail_code
        else:
            name = iban = remittance = structured = e2e = ""
        if not remittance:
            extra = _start(t, "<AddtlNtryInf", start, close)
            remittance = " ".join(_leaf(t, "<AddtlNtryInf", extra, close).split()) if extra >= 0 else ""
        if reversal:
            code = f"{code} reversal".lstrip()
        append(make(booking or value or day, amount, value, name, iban, remittance, structured, code, e2e, ref,
                    "" if entry_currency == currency or not entry_currency else entry_currency.upper(), line))
        i = k
    doc.counted(counted, line)
    return entries


def _head(doc: _Doc, entry: int, start: int, own: int) -> tuple:
    """What ``_HEAD`` reads, for an entry written some other way: (NtryRef, currency, amount text,
    CdtDbtInd, RvslInd, booking date text, value date text, AcctSvcrRef, where the next element starts)."""
    t = doc.text
    amt = _entry_child(doc, entry, "<Amt", start, own)
    a_gt = t.find(">", amt)
    raw = "" if t[a_gt - 1] == "/" else _unescape(t[a_gt + 1:t.find("<", a_gt)]).strip()
    if not (raw.isascii() and raw.replace(".", "", 1).isdigit()):
        raise doc.error(amt, f"Ntry/Amt {raw!r} is not an amount (digits with an optional '.' decimal mark)")
    indicator = _entry_child(doc, entry, "<CdtDbtInd", start, own)
    direction = _leaf(t, "<CdtDbtInd", indicator, own)
    if direction not in ("CRDT", "DBIT"):
        raise doc.error(indicator, f"Ntry/CdtDbtInd {direction!r} is neither CRDT nor DBIT")
    reversal = _start(t, "<RvslInd", start, own)
    reversal = _leaf(t, "<RvslInd", reversal, own) if reversal >= 0 else None
    dates = []
    for name in ("BookgDt", "ValDt"):
        i = _start(t, "<" + name, start, own)
        c_start, c_end = _content(t, i, name, own) if i >= 0 else (0, 0)
        raw_date = _leaf(t, "<Dt", c_start, c_end) or _leaf(t, "<DtTm", c_start, c_end)
        if raw_date and (len(raw_date) < 10 or raw_date[10:11] not in ("", "T")):
            raise doc.error(i, f"Ntry/{name} {raw_date!r} is not a date (YYYY-MM-DD)")
        dates.append(raw_date[:10] or None)
    ref = _start(t, "<AcctSvcrRef", start, own)
    ref = _leaf(t, "<AcctSvcrRef", ref, own) if ref >= 0 else None
    return (_leaf(t, "<NtryRef", start, own), _currency(t, amt), raw, direction, reversal, *dates, ref,
            max(indicator, amt))


def _entry_child(doc: _Doc, entry: int, tag: str, start: int, end: int) -> int:
    """The ``tag`` directly inside the entry. ISO 20022's order puts Amt and CdtDbtInd before the
    elements holding their namesakes (Avlbty, AmtDtls, Chrgs, Intrst); this finds them in a file
    that does not keep the order, and never takes a charge's amount for the entry's."""
    t = doc.text
    i = _start(t, tag, start, end)
    while i >= 0 and t.count("<", start, i) != 2 * t.count("</", start, i) + t.count("/>", start, i):
        i = _start(t, tag, i + len(tag), end)
    if i < 0:
        what = "the entry's amount" if tag == "<Amt" else "CRDT or DBIT"
        raise doc.error(entry, f"Ntry has no {tag[1:]} ({what} is required)")
    return i


def _bank_code(text: str) -> str:
    """``PMNT-RCDT-ESCT`` from ``BkTxCd/Domn`` (code, family, sub-family), else ``Prtry/Cd``."""
    end = len(text)
    domain = _start(text, "<Domn", 0, end)
    if domain >= 0:
        family = _start(text, "<Fmly", domain, end)
        parts = [_leaf(text, "<Cd", domain, family if family >= 0 else end)]
        if family >= 0:
            parts += [_leaf(text, "<Cd", family, end), _leaf(text, "<SubFmlyCd", family, end)]
        return "-".join(p for p in parts if p)
    proprietary = _start(text, "<Prtry", 0, end)
    return _leaf(text, "<Cd", proprietary, end) if proprietary >= 0 else ""


_NO_DETAILS = ("", "", "", "", "", "")
_PARTY_TAGS = {True: ("<Dbtr>", "</Dbtr>", "<DbtrAcct", "</DbtrAcct>"),
               False: ("<Cdtr>", "</Cdtr>", "<CdtrAcct", "</CdtrAcct>")}


def _details(t: str, start: int, end: int, payer: bool, reversal: bool,
             codes: dict[str, str]) -> tuple[str, str, str, str, str, str]:
    """(counterparty name, its account, remittance text, structured reference, end-to-end id, code)
    from the ``TxDtls`` in ``t[start:end]``. A batch's details are combined: their texts joined,
    their names listed, and only an account or id they all share is kept."""
    find = t.find
    i = find("<TxDtls", start, end)
    if i < 0:
        return _NO_DETAILS
    close = find("</TxDtls", i, end)
    close = close if close >= 0 else end
    following = find("<TxDtls", close, end)
    if following < 0:
        return (_plain_detail(t, i, close, payer, codes) if not reversal else None) or (
            _detail(t, i, close, payer, reversal, codes))
    names, ibans, texts, refs, ids, code = [], [], [], [], [], ""
    while i >= 0:
        detail = (_plain_detail(t, i, close, payer, codes) if not reversal else None) or (
            _detail(t, i, close, payer, reversal, codes))
        name, iban, text, ref, e2e, detail_code = detail
        for value, seen in ((name, names), (iban, ibans), (e2e, ids), (ref, refs)):
            if value and value not in seen:
                seen.append(value)
        if text:
            texts.append(text)
        if ref and len(refs) > 1 and refs[-1] == ref:
            texts.append(ref)  # the column holds one reference; the others stay readable
        code = code or detail_code
        i = following
        if i >= 0:
            close = find("</TxDtls", i, end)
            close = close if close >= 0 else end
            following = find("<TxDtls", close, end)
    name = "; ".join(names[:3]) + (f"; +{len(names) - 3} more" if len(names) > 3 else "")
    return (name, ibans[0] if len(ibans) == 1 else "", " ".join(texts), refs[0] if refs else "",
            ids[0] if len(ids) == 1 else "", code)


def _plain_detail(t: str, i: int, close: int, payer: bool,
                  codes: dict[str, str]) -> tuple[str, str, str, str, str, str] | None:
    """One ``TxDtls`` written the usual way, read in ISO 20022's element order (Refs, BkTxCd,
    RltdPties, RmtInf): the party with ``<Nm>``, its account with ``<IBAN>``, ``Ustrd`` lines and at
    most one simple ``Strd``. None for anything else (an element written another way, an ``Othr``
    account, an ultimate party), which ``_detail`` reads."""
    find = t.find
    party, party_end, account, account_end = _PARTY_TAGS[payer]
    p = find(party, i, close)
    if p < 0:
        return None
    p_end = find(party_end, p, close)
    nm = find("<Nm>", p, p_end) if p_end >= 0 else -1
    if nm < 0:
        return None
    after = p_end
    a = find(account, p_end, close)  # "<DbtrAcct": no other element's name starts so
    if a >= 0:
        after = find(account_end, a, close)
        iban = find("<IBAN>", a, after) if after >= 0 and t[a + len(account)] == ">" else -1
        if iban < 0:
            return None
        iban = t[iban + 6:find("<", iban + 6)].strip()
    else:
        iban = ""
    ustrd = find("<Ustrd", after, close)
    strd = find("<Strd", after, close)
    if ustrd < 0 and strd < 0 or strd >= 0 and not _plain_structured(t, strd, close, ustrd >= 0):
        return None
    texts = []
    while ustrd >= 0:
        if t[ustrd + 6] != ">":
            return None
        text = t[ustrd + 7:find("<", ustrd + 7)]
        text = " ".join((_unescape(text) if "&" in text else text).split())
        if text:
            texts.append(text)
        ustrd = find("<Ustrd", ustrd + 7, close)
    name = t[nm + 4:find("<", nm + 4)]
    name = " ".join((_unescape(name) if "&" in name else name).split())
    ref = ""
    if strd >= 0:
        ref = find("<Ref>", strd, close)
        ref = t[ref + 5:find("<", ref + 5)].strip()
        ref = _unescape(ref) if "&" in ref else ref
    if not texts and find("<AddtlTxInf", after, close) >= 0:
        texts = _leaves(t, "<AddtlTxInf", after, close)
    e2e = find("<EndToEndId", i, p)
    if e2e >= 0:
        e2e = t[e2e + 12:find("<", e2e + 12)].strip() if t[e2e + 11] == ">" else _leaf(t, "<EndToEndId", e2e, p)
        e2e = "" if e2e == _NOT_PROVIDED else (_unescape(e2e) if "&" in e2e else e2e)
    else:
        e2e = ""
    code = find("<BkTxCd", i, p)
    return name, iban, " ".join(texts), ref, e2e, (_detail_code(t, code, close, codes) if code >= 0 else "")


def _plain_structured(t: str, strd: int, close: int, unstructured: bool) -> bool:
    """One ``Strd`` with one creditor reference (``CdtrRefInf/Ref``), no referred documents, and no
    additional text that would stand in for a missing ``Ustrd``."""
    info = t.find("<CdtrRefInf>", strd, close)
    return (info >= 0 and t.find("<Strd", strd + 6, close) < 0 and t.find("<CdtrRefInf", info + 12, close) < 0
            and t.find("<Ref>", info, close) >= 0 and t.find("<RfrdDocInf", strd, close) < 0
            and (unstructured or t.find("<AddtlRmtInf", strd, close) < 0))


def _detail_code(t: str, code: int, end: int, codes: dict[str, str]) -> str:
    """The code of the ``BkTxCd`` whose start tag is at ``code`` (cached by its content)."""
    c_start, c_end = _content(t, code, "BkTxCd", end)
    body = t[c_start:c_end]
    found = codes.get(body)
    if found is None:
        found = codes[body] = _bank_code(body)
    return found


def _detail(t: str, start: int, end: int, payer: bool, reversal: bool,
            codes: dict[str, str]) -> tuple[str, str, str, str, str, str]:
    """One ``TxDtls`` however it is written: (name, account, text, reference, end-to-end id, code)."""
    find = t.find
    e2e = _leaf(t, "<EndToEndId", start, end)
    party = "<Dbtr" if payer else "<Cdtr"
    name, iban = _party(t, start, end, party)
    if reversal and not name:
        name, iban = _party(t, start, end, "<Cdtr" if payer else "<Dbtr")
    if not name:
        name = _party_name(t, "<Ultmt" + party[1:], start, end)
    texts = _leaves(t, "<Ustrd", start, end)
    refs: list[str] = []
    if _start(t, "<Strd", start, end) >= 0:
        _structured(t, start, end, texts, refs)
    if not texts:
        texts = _leaves(t, "<AddtlTxInf", start, end)
    texts.extend(refs[1:])  # the column holds one reference; the others stay readable
    code = find("<BkTxCd", start, end)
    return (name, iban, " ".join(texts), refs[0] if refs else "", "" if e2e == _NOT_PROVIDED else e2e,
            _detail_code(t, code, end, codes) if code >= 0 else "")


def _party(t: str, start: int, end: int, party: str) -> tuple[str, str]:
    """Name and account (``*Acct`` IBAN or ``Othr/Id``) of the ``Dbtr`` or ``Cdtr`` of one detail."""
    account = _element(t, party + "Acct", start, end)
    return _party_name(t, party, start, end), _account_id(t, *account) if account else ""


def _party_name(t: str, tag: str, start: int, end: int) -> str:
    """``Nm`` of a party: ``Dbtr/Nm``, .08's ``Dbtr/Pty/Nm`` or ``Dbtr/Agt/FinInstnId/Nm``."""
    party = _element(t, tag, start, end)
    return " ".join(_leaf(t, "<Nm", *party).split()) if party else ""


def _structured(t: str, start: int, end: int, texts: list[str], refs: list[str]) -> None:
    """``Strd``: creditor references (RF, QRR, ISR); its additional text when there is no ``Ustrd``;
    the numbers of the documents (invoices) it refers to."""
    for info in _all(t, "<CdtrRefInf", start, end):
        ref = _leaf(t, "<Ref", info, end)
        if ref and ref not in refs:
            refs.append(ref)
    if not texts:
        texts += _leaves(t, "<AddtlRmtInf", start, end)
    for document in _all(t, "<RfrdDocInf", start, end):
        number = _leaf(t, "<Nb", *_content(t, document, "RfrdDocInf", end))
        if number:
            texts.append(number)


def _all(t: str, tag: str, start: int, end: int):
    i = _start(t, tag, start, end)
    while i >= 0:
        yield i
        i = _start(t, tag, i + len(tag), end)
