"""``template:<name>``: CSV/TXT files for accounting systems that import journals from a file.

A ``Template`` is data, not code: the columns in order (each a journal field, a constant or a small
derived value), header row, separator, quoting, decimal mark, date format, encoding, line ends,
one row per journal line or per two-line entry, and the file name. The built-in ``TEMPLATES``
follow the import layouts their vendors document (the URL is in each ``description``); a company
adds or overrides one with a ``[templates.NAME]`` table in COMPANY.toml (or the tenant file).

Amounts never carry a thousands separator; the same export always gives the same bytes.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import string
import unicodedata
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from destinations.exports.ledger import ExportRefused, LedgerExport

JOURNAL_FIELDS = ("entry_id", "journal_code", "entry_date", "account", "account_name", "partner_id",
                  "partner_name", "description", "debit", "credit", "currency", "vat_code", "document_ref")
DERIVED_VALUES = {
    "signed_amount": "debit minus credit (debit positive, credit negative)",
    "amount": "the line's amount without sign",
    "debit_credit": "the template's debit_code or credit_code",
    "debit_account": "the account on a debit line (per entry: the debit line's account), else empty",
    "credit_account": "the account on a credit line (per entry: the credit line's account), else empty",
    "period": "fiscal period number 1-12 of the entry date (from fiscal_year_start)",
    "entry_number": "running number of the entry in the file, from 1",
    "line_number": "number of the line inside its entry, from 1",
}
VALUES = JOURNAL_FIELDS + tuple(DERIVED_VALUES)
MONEY_VALUES = {"debit", "credit", "signed_amount", "amount"}
PLACEHOLDERS = {"start", "end", "company"}


class TemplateError(ExportRefused):
    """A template definition that cannot be used; the message names the template and the key."""


class Column(BaseModel):
    """One column: ``value`` (a journal field or derived value) or ``constant``, never both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: str = ""
    value: str | None = None
    constant: str | None = None
    required: bool = False  # an empty value is refused, naming entry and field
    max_length: int | None = Field(default=None, ge=1)  # longer values are refused, not cut
    blank_when_zero: bool = False  # for debit/credit columns of systems that want the other one empty

    @model_validator(mode="after")
    def _one_source(self) -> Column:
        if (self.value is None) == (self.constant is None):
            raise ValueError("give exactly one of value or constant")
        if self.value is not None and self.value not in VALUES:
            raise ValueError(f"value {self.value!r} is unknown; use one of {', '.join(VALUES)}")
        if self.blank_when_zero and self.value not in MONEY_VALUES:
            raise ValueError(f"blank_when_zero needs an amount value ({', '.join(sorted(MONEY_VALUES))})")
        return self


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    columns: list[Column] = Field(min_length=1)
    header: bool = True
    separator: str = Field(default=",", min_length=1, max_length=1)
    quoting: Literal["minimal", "all", "none"] = "minimal"
    decimal: Literal[".", ","] = "."
    date_format: str = "%Y-%m-%d"
    encoding: str = "utf-8"
    line_ending: Literal["CRLF", "LF"] = "CRLF"
    layout: Literal["line", "entry"] = "line"
    debit_code: str = "D"
    credit_code: str = "C"
    file_name: str = "journal-{company}-{start}_{end}.csv"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"encoding {encoding!r} is unknown to Python's codecs") from None
        return encoding

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, date_format: str) -> str:
        sample = date(2026, 3, 14).strftime(date_format)
        if sample == date_format or re.search(r"%[HIMSfpzZ]", date_format):
            raise ValueError(f"date_format {date_format!r} has no date directive (or a time one); e.g. %d/%m/%Y")
        return date_format

    @field_validator("file_name")
    @classmethod
    def _file_name(cls, pattern: str) -> str:
        fields = {field for _, field, _, _ in string.Formatter().parse(pattern) if field is not None}
        if fields - PLACEHOLDERS:
            raise ValueError(f"file_name {pattern!r}: unknown placeholder(s) {', '.join(sorted(fields - PLACEHOLDERS))}"
                             f"; use {{start}}, {{end}}, {{company}}")
        if "/" in pattern or "\\" in pattern or not pattern.strip():
            raise ValueError(f"file_name {pattern!r} must be a plain file name")
        return pattern

    @model_validator(mode="after")
    def _consistent(self) -> Template:
        if self.separator in "\r\n\"":
            raise ValueError(f"separator {self.separator!r} cannot separate fields")
        if self.separator == self.decimal and self.quoting == "none":
            raise ValueError(f"decimal {self.decimal!r} equals the separator and quoting is none")
        if self.header:
            missing = [str(i + 1) for i, column in enumerate(self.columns) if not column.header]
            if missing:
                raise ValueError(f"header = true but column(s) {', '.join(missing)} have no header")
        if self.layout == "entry":
            per_line = [c.value for c in self.columns if c.value in ("line_number", "debit_credit")]
            if per_line:
                raise ValueError(f"layout 'entry' writes one row per entry; {per_line[0]} has no meaning there")
        return self


def template_from_mapping(name: str, mapping: dict) -> Template:
    """A template from a TOML table (``[templates.NAME]``); a bad definition is refused naming each key."""
    try:
        return Template.model_validate(mapping)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(table)'}: {e['msg']}"
                             for e in exc.errors())
        raise TemplateError(f"[templates.{name}]: {problems}") from None


def _fiscal_period(day: date, fiscal_year_start: str) -> int:
    return (day.month - int(fiscal_year_start.split("-")[0])) % 12 + 1


def _money(amount: Decimal, decimal_mark: str) -> str:
    return f"{amount.quantize(Decimal('0.01')):f}".replace(".", decimal_mark)


def _rows(template: Template, export: LedgerExport) -> list[tuple[str, dict]]:
    """(entry_id, values) per output row, every value still typed."""
    names = export.company.account_names
    rows: list[tuple[str, dict]] = []
    entries = export.journal.partition_by("entry_id", maintain_order=True, as_dict=False)
    for number, entry in enumerate(entries, start=1):
        lines = list(entry.iter_rows(named=True))
        for line_number, line in enumerate(lines, start=1):
            line["account_name"] = line["account_name"] or names.get(line["account"], "")
            is_debit = line["debit"] != 0
            line.update(signed_amount=line["debit"] - line["credit"], amount=line["debit"] + line["credit"],
                        debit_credit=template.debit_code if is_debit else template.credit_code,
                        debit_account=line["account"] if is_debit else "",
                        credit_account="" if is_debit else line["account"],
                        period=_fiscal_period(line["entry_date"], export.company.fiscal_year_start),
                        entry_number=number, line_number=line_number)
        if template.layout == "line":
            rows.extend((line["entry_id"], line) for line in lines)
            continue
        if len(lines) != 2:
            raise ExportRefused(f"entry {lines[0]['entry_id']}: has {len(lines)} lines; this template writes one "
                                f"row per entry (layout 'entry') and can only carry entries of two lines")
        debit_line, credit_line = sorted(lines, key=lambda line: line["debit"] == 0)
        rows.append((debit_line["entry_id"], {**debit_line, "credit_account": credit_line["account"],
                                              "signed_amount": debit_line["amount"]}))
    return rows


def _cell(template: Template, column: Column, values: dict, entry_id: str) -> str:
    if column.constant is not None:
        text = column.constant
    else:
        value = values[column.value]
        if column.value in MONEY_VALUES:
            text = "" if column.blank_when_zero and value == 0 else _money(value, template.decimal)
        elif isinstance(value, date):
            text = value.strftime(template.date_format)
        else:
            text = "" if value is None else str(value)
    field = column.value or f"constant of column {column.header!r}"
    if column.required and not text:
        raise ExportRefused(f"entry {entry_id}, field {field}: empty, but the template requires a value")
    if column.max_length is not None and len(text) > column.max_length:
        raise ExportRefused(f"entry {entry_id}, field {field}: {text!r} is longer than {column.max_length} "
                            f"characters")
    return text


def _check_text(template: Template, text: str, where: str) -> None:
    try:
        text.encode(template.encoding)
    except UnicodeEncodeError as exc:
        raise ExportRefused(f"{where}: character {text[exc.start]!r} in {text!r} cannot be written in "
                            f"{template.encoding}") from None
    # Line breaks inside a field break most importers even when quoted; without quoting, so do
    # the separator and the quote character.
    forbidden = "\r\n" + (template.separator + '"' if template.quoting == "none" else "")
    bad = next((c for c in text if c in forbidden), None)
    if bad is not None:
        raise ExportRefused(f"{where}: {text!r} contains {bad!r}, which this template cannot carry")


def company_slug(name: str) -> str:
    """``{company}`` in file names: the company name in ASCII, e.g. ``hotel-du-lac-sarl``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "company"


def render(template: Template, export: LedgerExport) -> tuple[str, bytes]:
    """(file name, content) of one template for one export."""
    table: list[list[str]] = []
    if template.header:
        for index, column in enumerate(template.columns, start=1):
            _check_text(template, column.header, f"header of column {index}")
        table.append([column.header for column in template.columns])
    for entry_id, values in _rows(template, export):
        cells = [_cell(template, column, values, entry_id) for column in template.columns]
        for column, text in zip(template.columns, cells):
            _check_text(template, text, f"entry {entry_id}, field {column.value or 'constant ' + repr(column.header)}")
        table.append(cells)
    buffer = io.StringIO()
    quoting = {"minimal": csv.QUOTE_MINIMAL, "all": csv.QUOTE_ALL, "none": csv.QUOTE_NONE}[template.quoting]
    csv.writer(buffer, delimiter=template.separator, quoting=quoting, escapechar=None,
               lineterminator="\r\n" if template.line_ending == "CRLF" else "\n").writerows(table)
    name = template.file_name.format(start=export.period_start.isoformat(), end=export.period_end.isoformat(),
                                     company=company_slug(export.company.name))
    return name, buffer.getvalue().encode(template.encoding)


def company_templates(export: LedgerExport) -> dict[str, dict]:
    templates = (export.company.model_extra or {}).get("templates", {})
    if not isinstance(templates, dict):
        raise TemplateError("[templates] must be a table of tables ([templates.NAME])")
    return templates


def write_template(name: str, export: LedgerExport) -> list[tuple[str, bytes]]:
    """``ledgerflow export template:<name>``: the company's own ``[templates.<name>]`` first, then the built-ins."""
    own = company_templates(export)
    if name in own:
        template = template_from_mapping(name, own[name])
    elif name in TEMPLATES:
        template = TEMPLATES[name]
    else:
        known = sorted(set(own) | set(TEMPLATES))
        raise ExportRefused(f"template {name!r} is unknown; known templates: {', '.join(known)} "
                            f"(add your own as [templates.{name}] in COMPANY.toml)")
    return [render(template, export)]


def _column(header: str, value: str | None = None, constant: str | None = None, **options) -> Column:
    return Column(header=header, value=value, constant=constant, **options)


TEMPLATES: dict[str, Template] = {
    # Sage 50 Accounts (UK) "Audit Trail Transaction" import, nominal journals as JD/JC rows; fields A-J
    # of https://gb-kb.sage.com/portal/app/portlets/results/view2.jsp?k2dockey=250321114601443
    "sage50-uk-audit-trail": Template(
        description="Sage 50 Accounts (UK) transaction import (Audit Trail Transaction CSV, fields A-J): "
                    "journal debit/credit (JD/JC) rows, Net Amount without sign, tax code T9 (non-VAT "
                    "journal). Source: https://gb-kb.sage.com/portal/app/portlets/results/view2.jsp?"
                    "k2dockey=250321114601443",
        columns=[_column("Type", "debit_credit"), _column("Account Reference", constant=""),
                 _column("Nominal A/C Ref", "account", required=True, max_length=8),
                 _column("Department Code", constant=""), _column("Date", "entry_date"),
                 _column("Reference", "document_ref", max_length=30),
                 _column("Details", "description", max_length=60), _column("Net Amount", "amount"),
                 _column("Tax Code", constant="T9"), _column("Tax Amount", constant="0.00")],
        date_format="%d/%m/%Y", encoding="cp1252", debit_code="JD", credit_code="JC",
        file_name="sage50-audit-trail-{start}_{end}.csv"),
    "xero-manual-journal": Template(
        description="Xero manual journal import (CSV template): lines with the same narration and date form "
                    "one journal; Amount positive = debit, negative = credit; TaxRate is a tax rate name of "
                    "the organisation ('No VAT' in the UK; override the template for other regions). "
                    "Source: https://help.xero.com/uk/ManualJournalsImport",
        columns=[_column("*Narration", "entry_id", required=True), _column("*Date", "entry_date"),
                 _column("Description", "description"), _column("*AccountCode", "account", required=True),
                 _column("*TaxRate", constant="No VAT"), _column("*Amount", "signed_amount")],
        date_format="%d/%m/%Y", file_name="xero-manual-journals-{start}_{end}.csv"),
    "quickbooks-online-au-journal": Template(
        description="QuickBooks Online (Australia) journal entry import: Journal No. groups the lines, account "
                    "by name (account numbers switched off during the import), Debits or Credits with the other "
                    "empty, dates dd/mm/yyyy. Source: https://quickbooks.intuit.com/learn-support/en-au/"
                    "help-article/import-export-files/import-journal-entries-quickbooks-online/L4tQBwbs7_AU_en_AU",
        columns=[_column("Journal No.", "entry_id", required=True), _column("Journal Date", "entry_date"),
                 _column("Account Name", "account_name", required=True),
                 _column("Description", "description"),
                 _column("Debits", "debit", blank_when_zero=True), _column("Credits", "credit", blank_when_zero=True),
                 _column("Name", "partner_name")],
        date_format="%d/%m/%Y", file_name="qbo-journal-entries-{start}_{end}.csv"),
    "banana-double-entry": Template(
        description="Banana Accounting double-entry transactions, 'Text file with column headers': tab "
                    "separated, header of NameXml column names, yyyy-mm-dd, UTF-8, one record per line; a "
                    "journal line fills AccountDebit or AccountCredit (a composite transaction shares its Doc). "
                    "Source: https://www.banana.ch/doc/en/node/9947",
        columns=[_column("Date", "entry_date"), _column("Doc", "entry_id"), _column("Description", "description"),
                 _column("AccountDebit", "debit_account"), _column("AccountCredit", "credit_account"),
                 _column("Amount", "amount")],
        separator="\t", quoting="none", line_ending="LF", file_name="banana-{company}-{start}_{end}.txt"),
}
