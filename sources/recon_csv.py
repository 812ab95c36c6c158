"""The canonical reconciliation files of INTERFACES §1 (BANK.csv, ITEMS.csv) and a reviewer's
DECISIONS.csv, read and checked completely.

The first problem is reported as ``FILE: line N, column C: what is wrong (got 'value')``;
callers write nothing then (``reconcile-files``) or quarantine the file (the reconcile
flow's inbox). Extra columns are ignored, as the contract says.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from schemas.currencies import ISO_4217
from schemas.money import MONEY_DTYPE

MONEY_PATTERN = r"^[+-]?[0-9]{1,16}(\.[0-9]{1,2})?$"  # [0-9], not \d: Polars' \d takes any script's digits
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
KINDS = ("invoice", "bill", "payout", "refund")


class InputError(ValueError):
    """Malformed input; the message names file, line and column."""


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    kind: str = "text"  # text | money | date | currency | id | choice


BANK_COLUMNS = [
    Column("bank_line_id", True, "id"),
    Column("bank_account", True),
    Column("booking_date", True, "date"),
    Column("value_date", False, "date"),
    Column("amount", True, "money"),
    Column("currency", True, "currency"),
    Column("counterparty_name", False),
    Column("counterparty_iban", False),
    Column("remittance_info", False),
    Column("structured_ref", False),
]
ITEM_COLUMNS = [
    Column("item_id", True, "id"),
    Column("kind", True, "choice"),
    Column("document_number", True),
    Column("issue_date", True, "date"),
    Column("due_date", False, "date"),
    Column("amount_open", True, "money"),
    Column("currency", True, "currency"),
    Column("partner_name", False),
    Column("partner_iban", False),
    Column("partner_id", False),
    Column("company_id", False),
    Column("bank_account", False),
    Column("structured_ref", False),
    Column("settlement_ref", False),
]
DECISION_COLUMNS = [  # a review file: rows left without a decision are skipped
    Column("bank_line_id", True),
    Column("item_id", False),
    Column("decision", False, "choice"),
    Column("amount_applied", False, "money"),
    Column("note", False),
]
DECISIONS = ("confirm", "confirmed", "reject", "rejected", "reverse", "reversed")


def _line_numbers(raw: bytes) -> list[int]:
    """The physical line each data row starts on (quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""))
    numbers = []
    ended = 0  # the line the previous row ended on
    for index, _ in enumerate(reader):
        if index:
            numbers.append(ended + 1)
        ended = reader.line_num
    return numbers


def _where(path: Path, raw: bytes, row: int, column: str) -> str:
    numbers = _line_numbers(raw)
    line = numbers[row] if row < len(numbers) else row + 2
    return f"{path}: line {line}, column {column}"


def _read_raw(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if not raw.strip():
        raise InputError(f"{path}: line 1: empty file (a header row is required)")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    return raw.removeprefix(b"\xef\xbb\xbf")


def _check_shape(path: Path, raw: bytes) -> list[str]:
    """The header, and every row with as many fields as it has. Lines without quotes are
    counted directly (a million lines in a fraction of a second); the csv module reads the
    rest, and the whole file when a quoted field spans lines."""
    text = raw.decode("utf-8")
    if "\n" not in text and "\r" in text:
        raise InputError(f"{path}: line 1: lines end with CR alone; expected LF or CRLF line endings")
    lines = text.rstrip("\r\n").split("\n")
    number = 1
    try:
        header = [name.strip() for name in next(csv.reader([lines[0].rstrip("\r")], strict=True))]
        width = len(header)
        for number, line in enumerate(lines[1:], 2):
            line = line.rstrip("\r")
            if not line:
                raise InputError(f"{path}: line {number}: blank line inside the file")
            if '"' in line:
                if line.count('"') % 2:
                    return _check_shape_slowly(path, text)
                fields = len(next(csv.reader([line], strict=True)))
            else:
                fields = line.count(",") + 1
            if fields != width:
                raise InputError(f"{path}: line {number}: {fields} fields where the header has {width}")
    except csv.Error as exc:
        raise InputError(f"{path}: line {number}: not valid CSV ({exc})") from None
    return header


def _check_shape_slowly(path: Path, text: str) -> list[str]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader)]
        width = len(header)
        for row in reader:
            if row and len(row) != width:
                raise InputError(
                    f"{path}: line {reader.line_num}: {len(row)} fields where the header has {width}")
    except csv.Error as exc:
        raise InputError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    return header


def read_table(path: Path, columns: list[Column]) -> pl.DataFrame:
    """Read and check one input file; return its known columns, typed (money as
    Decimal(18, 2), dates as Date, empty text as null). Extra columns are ignored."""
    path = Path(path)
    raw = _read_raw(path)
    header = _check_shape(path, raw)
    seen = set()
    for name in header:
        if name in seen:
            raise InputError(f"{path}: line 1, column {name}: appears twice in the header")
        seen.add(name)
    for column in columns:
        if column.required and column.name not in seen:
            raise InputError(f"{path}: line 1, column {column.name}: required column missing "
                             f"(header: {', '.join(header)})")
    try:
        frame = pl.read_csv(io.BytesIO(raw), infer_schema=False, has_header=True, quote_char='"',
                            new_columns=header)
    except Exception as exc:  # noqa: BLE001 - polars raises several types; the message says it
        raise InputError(f"{path}: not valid CSV ({str(exc).splitlines()[0]})") from None
    present = [c for c in columns if c.name in seen]
    frame = frame.select(
        *(_blank_to_null(pl.col(c.name)) for c in present),
        *(pl.lit(None, pl.String).alias(c.name) for c in columns if c.name not in seen),
    ).select([c.name for c in columns])
    for column in columns:
        _check_column(path, raw, frame, column)
    return frame.with_columns(
        *(pl.col(c.name).str.to_date("%Y-%m-%d") for c in columns if c.kind == "date"),
        *(pl.col(c.name).cast(MONEY_DTYPE) for c in columns if c.kind == "money"),
        *(pl.col(c.name).str.to_uppercase() for c in columns if c.kind == "currency"),
        *(pl.col(c.name).str.to_lowercase() for c in columns if c.kind == "choice"),
    )


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars()
    return pl.when(stripped.str.len_chars() > 0).then(stripped)


def _first_bad(frame: pl.DataFrame, condition: pl.Expr) -> int | None:
    hits = frame.with_row_index("_row").filter(condition.fill_null(False))["_row"]
    return None if hits.is_empty() else int(hits[0])


def _check_column(path: Path, raw: bytes, frame: pl.DataFrame, column: Column) -> None:
    col = pl.col(column.name)
    if column.required:
        row = _first_bad(frame, col.is_null())
        if row is not None:
            raise InputError(f"{_where(path, raw, row, column.name)}: a value is required")
    problems: list[tuple[pl.Expr, str]] = []
    if column.kind == "money":
        problems.append((col.is_not_null() & ~col.str.contains(MONEY_PATTERN),
                         "not an amount like -1234.50 (at most 2 decimals, '.' separator, no exponent)"))
    elif column.kind == "date":
        parsed = col.str.to_date("%Y-%m-%d", strict=False)
        problems.append((col.is_not_null() & (~col.str.contains(DATE_PATTERN) | parsed.is_null()),
                         "not a date YYYY-MM-DD"))
    elif column.kind == "currency":
        problems.append((col.is_not_null() & ~col.str.to_uppercase().is_in(sorted(ISO_4217)),
                         "not an ISO 4217 currency code"))
    elif column.kind == "choice":
        allowed = KINDS if column.name == "kind" else DECISIONS
        problems.append((col.is_not_null() & ~col.str.to_lowercase().is_in(list(allowed)),
                         f"must be one of {', '.join(allowed)}"))
    for condition, message in problems:
        row = _first_bad(frame, condition)
        if row is not None:
            raise InputError(f"{_where(path, raw, row, column.name)}: {message} (got {frame[column.name][row]!r})")
    if column.kind == "id":
        duplicated = frame.with_row_index("_row").filter(col.is_duplicated()).sort("_row")
        if duplicated.height:
            value = duplicated[column.name][0]
            rows = duplicated.filter(pl.col(column.name) == value)["_row"].to_list()
            first = _where(path, raw, rows[0], column.name).rsplit(": line ", 1)[1].split(",")[0]
            raise InputError(f"{_where(path, raw, rows[1], column.name)}: duplicate id {value!r} "
                             f"(first on line {first})")
