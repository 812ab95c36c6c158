"""Bytes to text and text to money/dates, the same way for every format.

Banks send CODA and MT940 in ISO-8859-1 / Windows-1252 at least as often as in UTF-8.
A parser names the encodings its format really comes in; a file that decodes in none of
them is an error naming the first bad line (we never guess silently).
"""

from __future__ import annotations

import codecs
import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal, InvalidOperation

from sources.bank_files.model import StatementError

_AMOUNT = re.compile(r"^[0-9]{1,15}([.,][0-9]{0,4})?$")


def line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode(data: bytes, file: str, encodings: tuple[str, ...] = ("utf-8",)) -> tuple[str, str]:
    """The text of ``data`` and the encoding that read it, trying ``encodings`` in order.

    A UTF-8 byte-order mark is dropped. Windows-1252 leaves five bytes undefined; a file
    using them is read as ISO-8859-1 instead (which defines every byte)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    first_error: UnicodeDecodeError | None = None
    for encoding in encodings:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
    assert first_error is not None
    bad = data[first_error.start:first_error.start + 1]
    raise StatementError(file, line_of(data, first_error.start),
                         f"byte 0x{bad.hex().upper()} is not valid {first_error.encoding} text")


SINGLE_BYTE = ("utf-8", "cp1252", "latin-1")


def amount(text: str, file: str, line: int, what: str = "amount") -> Decimal:
    """An unsigned amount as banks write it: digits, an optional ``.`` or ``,`` decimal mark."""
    raw = text.strip()
    if not _AMOUNT.match(raw):
        raise StatementError(file, line, f"{what} {raw!r} is not an amount")
    try:
        return Decimal(raw.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern already refused it
        raise StatementError(file, line, f"{what} {raw!r} is not an amount") from None


def signed_amount(text: str, file: str, line: int, what: str = "amount") -> Decimal:
    raw = text.strip()
    sign = -1 if raw.startswith("-") else 1
    return sign * amount(raw.lstrip("+-"), file, line, what)


def ymd(year: int, month: int, day: int, file: str, line: int, what: str = "date") -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise StatementError(file, line, f"{what} {year:04d}-{month:02d}-{day:02d} is not a date") from None


def yymmdd(text: str, file: str, line: int, what: str = "date") -> date:
    """SWIFT YYMMDD (MT940); years 00-79 are 20xx, 80-99 19xx."""
    if not re.fullmatch(r"[0-9]{6}", text):
        raise StatementError(file, line, f"{what} {text!r} is not YYMMDD")
    yy = int(text[:2])
    return ymd((2000 if yy < 80 else 1900) + yy, int(text[2:4]), int(text[4:]), file, line, what)


def ddmmyy(text: str, file: str, line: int, what: str = "date") -> date:
    """CODA DDMMYY; years 00-79 are 20xx, 80-99 19xx."""
    if not re.fullmatch(r"[0-9]{6}", text):
        raise StatementError(file, line, f"{what} {text!r} is not DDMMYY")
    yy = int(text[4:])
    return ymd((2000 if yy < 80 else 1900) + yy, int(text[2:4]), int(text[:2]), file, line, what)


def squeeze(text: str) -> str:
    """Runs of whitespace as one space, no leading or trailing space."""
    return " ".join(text.split())


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """A million entries are millions of new objects, none in a reference cycle: the cyclic garbage
    collector would only walk them again and again (5-15 % of the time). Paused, then restored."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
