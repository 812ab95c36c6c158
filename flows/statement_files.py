"""``ledgerflow statements parse``: statement files in, LINES.csv out (INTERFACES §2).

Pure and offline. Every file is parsed completely; a file that does not parse, or whose
balances do not add up, is *bad*: it is named, its lines are not written, and the command
exits 2. The good files' lines are written to a temporary name and renamed at the end, so
a crash never leaves half a file. Input files are never moved or deleted (quarantine is
the bank_files flow's job).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from destinations.delivery.local import publish
from sources.bank_files.formats import parse_file
from sources.bank_files.lines import (
    Gap,
    balance_error,
    continuity_gaps,
    lines_csv,
    statement_lines,
    summary_line,
    unique_statement_ids,
)
from sources.bank_files.model import StatementError


@dataclass
class FileOutcome:
    file: str
    format: str | None = None
    summaries: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    repeated: int = 0  # lines an earlier file already had (left out of LINES.csv)


@dataclass
class ParseOutcome:
    files: list[FileOutcome]
    gaps: list[Gap]
    written: Path | None

    @property
    def ok(self) -> bool:
        return all(f.error is None for f in self.files)


def parse_one(path: Path, fmt: str, profile=None) -> tuple[FileOutcome, list]:
    """Parse and check one file; the statements come back for the continuity check."""
    outcome = FileOutcome(str(path))
    try:
        outcome.format, statements = parse_file(path, fmt, profile)
        ids = unique_statement_ids(statements)
        outcome.summaries = [summary_line(i, s) for i, s in zip(ids, statements, strict=True)]
        failed = balance_error(str(path), ids, statements)
        if failed is not None:
            raise failed
        outcome.rows = statement_lines(statements, str(path))
        return outcome, list(zip(ids, statements, strict=True))
    except StatementError as exc:
        outcome.error = str(exc)
        outcome.rows = []
        return outcome, []


def parse_statements(paths: list[Path], out: Path, fmt: str = "auto", profile=None) -> ParseOutcome:
    """Every file in turn; a line already written from an earlier file (the same file given twice,
    overlapping statements) is written once, so the ids in LINES.csv stay unique (INTERFACES §1)."""
    files, chain, overlapping, seen = [], [], set(), set()
    for path in paths:
        outcome, statements = parse_one(path, fmt, profile)
        files.append(outcome)
        repeated = {row["statement_id"] for row in outcome.rows if row["bank_line_id"] in seen}
        outcome.repeated = sum(1 for row in outcome.rows if row["bank_line_id"] in seen)
        outcome.rows = [row for row in outcome.rows if row["bank_line_id"] not in seen]
        seen.update(row["bank_line_id"] for row in outcome.rows)
        overlapping.update(len(chain) + i for i, (sid, _) in enumerate(statements) if sid in repeated)
        chain.extend(statements)
    good = [f for f in files if f.error is None]
    written = None
    if good:
        publish(out.parent, out.name, lines_csv([row for f in good for row in f.rows]))
        written = out
    return ParseOutcome(files, continuity_gaps(chain, overlapping), written)
