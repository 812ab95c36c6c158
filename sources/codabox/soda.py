"""SODA: the payroll journal a social secretariat delivers through CodaBox, as journal lines.

SODA is CodaBox's XML format for the accounting entries of a payroll run (schema
``XMLFileSocial_V1.1c.xsd``; CodaBox does not publish it, so the shape below follows the
sample and the importer in Odoo's ``l10n_be_soda``)::

    <SocialDocument>
      <Source>social_secretariat</Source>            who made it
      <Version>0.1</Version>
      <Social>                                        one journal entry (a file may hold several)
        <SeqNumber>8908749</SeqNumber>                the secretariat's number for it
        <GenDate>2021-10-23</GenDate>                 when it was generated
        <Enterprise><EntNum>BE0477472701</EntNum><EntLabel>...</EntLabel></Enterprise>
        <AccountPeriod>202110</AccountPeriod>         the month it books (YYYYMM)
        <Transactions>
          <TransactionLine>
            <SocialPeriod>202110</SocialPeriod>
            <Accounting>
              <Account>618000</Account><Label>Remuneration</Label>
              <Amount><Debit>15655.10</Debit><Credit>0.00</Credit></Amount>
            </Accounting>
            <Department>...</Department>              optional (analytic)
          </TransactionLine> ...

What we make of it, as Odoo does: the entry is booked on the last day of ``AccountPeriod``
(payroll is a month-end entry; ``GenDate`` is only when the file was written), and its
reference is ``Source-SeqNumber-YYYY/MM``, which stays the same when the file is delivered
again. SODA carries no currency; Belgian payroll is in euros, so ``currency`` defaults to EUR.
The accounts are the secretariat's, which may differ from the tenant's chart: the journal
frame takes an optional map.

Anything we cannot read exactly is refused with :class:`SodaError`, naming the file, the XML
line, the element and the value; so is an entry whose debits and credits differ. A DOCTYPE is
refused outright: SODA has none, and refusing it rules out entity-expansion tricks.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from xml.parsers import expat

import polars as pl

from schemas.money import MONEY_DTYPE, MoneyError, parse_money

DEFAULT_CURRENCY = "EUR"
ZERO = Decimal("0.00")

# Columns of soda_journal_lines(), in order (the ``soda_line`` table adds document_id).
LINE_FIELDS = ("reference", "source", "seq_number", "enterprise_number", "account_period", "business_date",
               "line_no", "account", "description", "debit", "credit", "currency", "department", "social_period")


class SodaError(ValueError):
    """A SODA document we cannot book; the message says where and why."""

    def __init__(self, file: str, reason: str, *, line: int | None = None, element: str | None = None,
                 value: str | None = None) -> None:
        self.file, self.reason, self.line, self.element, self.value = file, reason, line, element, value
        where = file + (f": line {line}" if line is not None else "")
        what = (f" <{element}>" if element else "") + (f" {value!r}" if value is not None else "")
        super().__init__(f"{where}:{what} {reason}" if what else f"{where}: {reason}")


@dataclass
class _Node:
    tag: str
    line: int
    parts: list[str] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()

    def all(self, tag: str) -> list[_Node]:
        return [child for child in self.children if child.tag == tag]

    def first(self, tag: str) -> _Node | None:
        return next((child for child in self.children if child.tag == tag), None)


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _parse_xml(data: bytes, file: str) -> _Node:
    """A tree of elements that remembers the line each one starts on (ElementTree does not)."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Node] = []
    roots: list[_Node] = []

    def start(name: str, _attributes: dict) -> None:
        node = _Node(_local(name), parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop()

    def text(chunk: str) -> None:
        if stack:
            stack[-1].parts.append(chunk)

    def doctype(name: str, *_args: object) -> None:
        raise SodaError(file, "a DOCTYPE is not allowed in a SODA document", line=parser.CurrentLineNumber,
                        element=name)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise SodaError(file, f"is not well-formed XML ({expat.ErrorString(exc.code)}, column {exc.offset + 1})",
                        line=exc.lineno) from None
    except (LookupError, UnicodeError) as exc:  # the XML declaration names an encoding we cannot decode
        raise SodaError(file, f"cannot be decoded ({exc})", line=parser.CurrentLineNumber) from None
    except RecursionError:  # pragma: no cover - expat itself refuses absurd nesting first
        raise SodaError(file, "nests elements too deeply") from None
    if not roots or roots[0].tag != "SocialDocument":
        tag = roots[0].tag if roots else None
        raise SodaError(file, "is not a SODA document: the root element must be <SocialDocument>",
                        line=roots[0].line if roots else None, element=tag)
    return roots[0]


def _required(parent: _Node, path: str, file: str) -> _Node:
    node = parent
    for tag in path.split("/"):
        found = node.first(tag)
        if found is None:
            raise SodaError(file, f"has no <{tag}> (expected {path} inside it)", line=node.line, element=node.tag)
        node = found
    return node


def _required_text(parent: _Node, path: str, file: str) -> tuple[str, _Node]:
    node = _required(parent, path, file)
    if not node.text:
        raise SodaError(file, "is empty", line=node.line, element=node.tag)
    return node.text, node


def _period_end(node: _Node, file: str) -> tuple[str, date]:
    text = node.text
    if not re.fullmatch(r"\d{6}", text) or not 1 <= int(text[4:]) <= 12 or int(text[:4]) < 1900:
        raise SodaError(file, "is not a month written YYYYMM", line=node.line, element=node.tag, value=text)
    year, month = int(text[:4]), int(text[4:])
    return text, date(year, month, calendar.monthrange(year, month)[1])


def _amount(amount: _Node, tag: str, file: str) -> Decimal:
    node = amount.first(tag)
    if node is None:
        return ZERO
    try:
        return parse_money(node.text)
    except MoneyError as exc:
        raise SodaError(file, f"is not an amount: {exc}", line=node.line, element=tag, value=node.text) from None


def _entry_lines(social: _Node, source: str, file: str, currency: str) -> list[dict]:
    seq_number, _ = _required_text(social, "SeqNumber", file)
    period, booked_on = _period_end(_required(social, "AccountPeriod", file), file)
    enterprise = social.first("Enterprise")
    ent_num = enterprise.first("EntNum") if enterprise is not None else None
    reference = f"{source}-{seq_number}-{period[:4]}/{period[4:]}"
    transactions = _required(social, "Transactions", file)
    lines = []
    for line_no, transaction in enumerate(transactions.all("TransactionLine"), start=1):
        accounting = _required(transaction, "Accounting", file)
        account, _ = _required_text(accounting, "Account", file)
        label = accounting.first("Label")
        amount = _required(accounting, "Amount", file)
        if amount.first("Debit") is None and amount.first("Credit") is None:
            raise SodaError(file, "has neither <Debit> nor <Credit>", line=amount.line, element="Amount")
        department = transaction.first("Department")
        social_period = transaction.first("SocialPeriod")
        lines.append({
            "reference": reference, "source": source, "seq_number": seq_number,
            "enterprise_number": (ent_num.text or None) if ent_num is not None else None,
            "account_period": period, "business_date": booked_on, "line_no": line_no, "account": account,
            "description": " ".join(label.text.split()) if label is not None else "",
            "debit": _amount(amount, "Debit", file), "credit": _amount(amount, "Credit", file),
            "currency": currency,
            "department": (department.text or None) if department is not None else None,
            "social_period": (social_period.text or None) if social_period is not None else None,
        })
    if not lines:
        raise SodaError(file, "has no <TransactionLine>: nothing to book", line=transactions.line,
                        element="Transactions")
    debit = sum((line["debit"] for line in lines), ZERO)
    credit = sum((line["credit"] for line in lines), ZERO)
    if debit != credit:
        raise SodaError(file, f"entry {reference} does not balance: debits {debit} != credits {credit} "
                        f"(difference {debit - credit})", line=transactions.line, element="Transactions",
                        value=f"{debit}/{credit}")
    return lines


def soda_journal_lines(data: bytes, file: str, *, currency: str = DEFAULT_CURRENCY) -> list[dict]:
    """Every journal line of a SODA document, in document order (keys: ``LINE_FIELDS``).

    ``debit`` and ``credit`` are exact ``Decimal`` with two places; ``line_no`` counts from 1
    within each entry (``reference``). Raises :class:`SodaError` for anything else.
    """
    root = _parse_xml(data, file)
    source, _ = _required_text(root, "Source", file)
    entries = root.all("Social")
    if not entries:
        raise SodaError(file, "has no <Social> entry", line=root.line, element=root.tag)
    lines = [line for social in entries for line in _entry_lines(social, source, file, currency)]
    references = [line["reference"] for line in lines if line["line_no"] == 1]
    if len(set(references)) != len(references):
        duplicate = next(r for r in references if references.count(r) > 1)
        raise SodaError(file, "appears twice in one document", element="Social", value=duplicate)
    return lines


# --- the tenant's `soda` journal ---------------------------------------------------------------

def soda_built_lines(lines: list[dict], *, account_map: dict[str, str] | None = None) -> pl.DataFrame:
    """Journal lines with exactly the columns of ``transforms.journal.BUILT_LINE_SCHEMA``.

    Each SODA line becomes one line per non-zero side (a negative amount moves to the other
    side, so debit and credit are never negative), the description names the SODA reference,
    and lines are numbered per business date in (business_date, reference, SODA line) order.
    Every SODA entry balances, so every business date does. ``account_map`` translates the
    secretariat's account numbers into the tenant's chart; unmapped accounts are kept.
    """
    from transforms.journal import BUILT_LINE_SCHEMA

    accounts = account_map or {}
    rows = []
    for line in sorted(lines, key=lambda x: (x["business_date"], x["reference"], x["line_no"])):
        for side, amount in (("debit", line["debit"]), ("credit", line["credit"])):
            if amount == 0:
                continue
            if amount < 0:
                side, amount = ("credit" if side == "debit" else "debit"), -amount
            rows.append({
                "business_date": line["business_date"], "account": accounts.get(line["account"], line["account"]),
                "account_name": None, "partner_id": None, "partner_name": None,
                "description": f"{line['description'] or line['account']} (SODA {line['reference']})",
                "debit": amount if side == "debit" else ZERO, "credit": amount if side == "credit" else ZERO,
                "currency": line["currency"], "vat_code": None,
            })
    frame = pl.DataFrame(rows, schema={name: dtype for name, dtype in BUILT_LINE_SCHEMA.items() if name != "line_no"})
    return (
        frame.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("business_date").alias("line_no"))
        .select(list(BUILT_LINE_SCHEMA))
        .cast({"debit": MONEY_DTYPE, "credit": MONEY_DTYPE})
    )
