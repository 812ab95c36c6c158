"""Golden files per statement format: tests/golden/statements/<format>/<case>.in -> <case>.out.

The .out file holds what `ledgerflow statements parse` reports for the input: the statement
lines, then LINES.csv; or the error for a file that must be refused. A bank CSV case names
its profile in <case>.profile.toml beside the input. `make golden` rewrites the .out files
for review (LEDGERFLOW_REGENERATE_GOLDEN=1).
"""

import os
import tomllib
from pathlib import Path

import pytest

from flows.statement_files import parse_one
from schemas.bank_csv import BankCsvProfile
from sources.bank_files.lines import lines_csv

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "statements"
CASES = sorted((p.parent.name, p.stem) for p in GOLDEN.glob("*/*.in"))


def render(fmt: str, case: str) -> bytes:
    source = GOLDEN / fmt / f"{case}.in"
    profile = None
    if fmt == "csv":
        settings = tomllib.loads((GOLDEN / fmt / f"{case}.profile.toml").read_text(encoding="utf-8"))
        profile = BankCsvProfile(**settings)
    cwd = os.getcwd()
    os.chdir(source.parent)  # messages name the file as given: keep them free of this machine's paths
    try:
        outcome, _ = parse_one(Path(source.name), fmt, profile)
    finally:
        os.chdir(cwd)
    head = "".join(f"{line}\n" for line in outcome.summaries)
    if outcome.error:
        return (head + f"error: {outcome.error}\n").encode("utf-8")
    return head.encode("utf-8") + b"\n" + lines_csv(outcome.rows)


@pytest.mark.parametrize(("fmt", "case"), CASES, ids=[f"{f}/{c}" for f, c in CASES])
def test_golden_statements(fmt, case):
    content = render(fmt, case)
    path = GOLDEN / fmt / f"{case}.out"
    if os.environ.get("LEDGERFLOW_REGENERATE_GOLDEN"):
        path.write_bytes(content)
    assert path.read_bytes() == content, f"{fmt}/{case}.out differs; run `make golden` and review the diff"
