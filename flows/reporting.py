"""Run summaries for people: markdown tables for Prefect artifacts, CSV for files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

import polars as pl

from destinations.delivery.local import publish
from schemas.money import format_money

MAX_ROWS = 200


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format_money(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Iterable[Sequence[object]], headers: Sequence[str], *, limit: int = MAX_ROWS) -> str:
    rows = list(rows)
    text = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    text += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        text.append(f"\n… and {len(rows) - limit} more rows (see the tenant's DuckDB file).")
    return "\n".join(text)


def frame_table(frame: pl.DataFrame, *, limit: int = MAX_ROWS) -> str:
    return markdown_table(frame.iter_rows(), frame.columns, limit=limit)


def trial_balance_markdown(balance: pl.DataFrame, title: str) -> str:
    debit = balance.get_column("debit").sum() if balance.height else Decimal(0)
    credit = balance.get_column("credit").sum() if balance.height else Decimal(0)
    rows = [*balance.iter_rows(), ("", "**Total**", debit, credit, debit - credit)]
    return f"## {title}\n\n" + markdown_table(rows, balance.columns, limit=10_000)


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    """A report as CSV with money printed exactly (same bytes for the same frame)."""
    content = frame.write_csv(line_terminator="\r\n", quote_style="necessary").encode("utf-8")
    return publish(path.parent, path.name, content).path
