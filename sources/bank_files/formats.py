"""The one registry of statement formats: name -> parser, and auto-detection.

A parser module offers ``identify(head: bytes) -> bool`` (a cheap look at the first
bytes) and ``parse(data: bytes, file: str) -> list[Statement]``. Adding a format is one
module plus one line here plus its golden files under ``tests/golden/statements/``.
Modules are imported lazily so ``ledgerflow --help`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from sources.bank_files.model import Statement, StatementError
from sources.bank_files.text import cyclic_gc_paused

# name -> (module, parse function, identify function). Order matters for auto-detection: the XML
# dialects first (they are unambiguous), the line formats after.
PARSERS: dict[str, tuple[str, str, str]] = {
    "camt053": ("sources.bank_files.camt", "parse_camt053", "identify_camt053"),
    "camt054": ("sources.bank_files.camt", "parse_camt054", "identify_camt054"),
    "ofx": ("sources.bank_files.ofx", "parse", "identify"),
    "coda": ("sources.bank_files.coda", "parse", "identify"),
    "mt940": ("sources.bank_files.mt940", "parse", "identify"),
}
FORMAT_NAMES = ("auto", *PARSERS, "csv")
HEAD_BYTES = 4096


def _function(module: str, name: str) -> Callable:
    return getattr(importlib.import_module(module), name)


def detect(data: bytes, file: str) -> str:
    """The format of a file from its first bytes; an error if none claims it."""
    head = data[:HEAD_BYTES]
    for name, (module, _, identify) in PARSERS.items():
        if _function(module, identify)(head):
            return name
    raise StatementError(file, 1, "not a statement format ledgerflow recognises "
                                  "(coda, camt053, camt054, mt940, ofx); bank CSV needs --format csv --profile NAME")


def parse_bytes(data: bytes, file: str, fmt: str = "auto", profile=None) -> tuple[str, list[Statement]]:
    """(format, statements) of one file's bytes. ``profile`` is a ``BankCsvProfile`` (csv only)."""
    if fmt == "csv":
        if profile is None:
            raise StatementError(file, None, "--format csv needs --profile NAME")
        from sources.bank_files.bank_csv import parse as parse_csv

        with cyclic_gc_paused():
            return "csv", parse_csv(data, file, profile)
    if fmt == "auto":
        fmt = detect(data, file)
    if fmt not in PARSERS:
        raise StatementError(file, None, f"unknown format {fmt!r}; expected one of {', '.join(FORMAT_NAMES)}")
    with cyclic_gc_paused():
        return fmt, _function(*PARSERS[fmt][:2])(data, file)


def parse_file(path: Path, fmt: str = "auto", profile=None, *, name: str | None = None) -> tuple[str, list[Statement]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StatementError(name or str(path), None, f"cannot read: {exc.strerror or exc}") from None
    return parse_bytes(data, name or str(path), fmt, profile)
