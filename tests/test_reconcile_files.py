"""``ledgerflow reconcile-files`` as a user (or an acceptance check) runs it: INTERFACES §1."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import ROOT, ledgerflow

BANK_HEADER = ["bank_line_id", "bank_account", "booking_date", "value_date", "amount", "currency",
               "counterparty_name", "counterparty_iban", "remittance_info", "structured_ref"]
ITEM_HEADER = ["item_id", "kind", "document_number", "issue_date", "due_date", "amount_open", "currency",
               "partner_name", "partner_iban", "partner_id", "company_id", "bank_account", "structured_ref",
               "settlement_ref"]
BANK = [
    ["B1", "BE68539007547034", "2026-03-10", "", "1200.00", "EUR", "NORDIC TRAVEL", "", "Invoice INV-1001", ""],
    ["B2", "BE68539007547034", "2026-03-11", "", "-450.00", "EUR", "", "", "bill 88123", ""],
    ["B3", "BE68539007547034", "2026-03-12", "", "99.00", "EUR", "", "", "thanks", ""],
]
ITEMS = [
    ["I1", "invoice", "INV-1001", "2026-03-01", "", "1200.00", "EUR", "Nordic Travel AB", "", "", "", "", "", ""],
    ["I2", "bill", "88123", "2026-03-01", "", "-450.00", "EUR", "", "", "", "", "", "", ""],
]


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    return write(tmp_path / "bank.csv", BANK_HEADER, BANK), write(tmp_path / "items.csv", ITEM_HEADER, ITEMS)


def test_matches_report_and_identical_bytes_on_rerun(files, tmp_path):
    bank, items = files
    out, report = tmp_path / "matches.csv", tmp_path / "report.json"
    result = ledgerflow("reconcile-files", "--bank", str(bank), "--items", str(items), "--out", str(out),
                        "--report", str(report))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == (b"bank_line_id,item_id,amount_applied,rule,confidence,reason\r\n"
                                b"B1,I1,1200.00,exact_ref_amount,0.97,\r\n"
                                b"B2,I2,-450.00,exact_ref_amount,0.93,\r\n")
    summary = json.loads(report.read_text())
    assert {"bank_lines", "items", "matched_lines", "matched_items", "unmatched_lines", "unmatched_items",
            "suggestions", "by_rule"} <= set(summary)
    assert summary["unmatched_lines"] == ["B3"] and summary["matched_lines"] == 2
    first = (out.read_bytes(), report.read_bytes())
    assert ledgerflow("reconcile-files", "--bank", str(bank), "--items", str(items), "--out", str(out),
                      "--report", str(report)).returncode == 0
    assert (out.read_bytes(), report.read_bytes()) == first


def test_header_only_files_are_valid_and_give_an_empty_result(tmp_path):
    bank = write(tmp_path / "bank.csv", BANK_HEADER, [])
    items = write(tmp_path / "items.csv", ITEM_HEADER, [])
    out = tmp_path / "matches.csv"
    result = ledgerflow("reconcile-files", "--bank", str(bank), "--items", str(items), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == b"bank_line_id,item_id,amount_applied,rule,confidence,reason\r\n"


def test_extra_columns_are_ignored_and_optional_ones_may_be_missing(tmp_path):
    bank = write(tmp_path / "bank.csv", ["bank_line_id", "bank_account", "booking_date", "amount", "currency",
                                         "remittance_info", "statement_id", "sequence"],
                 [["B1", "X", "2026-03-10", "1200.00", "EUR", "INV-1001", "S1", "1"]])
    items = write(tmp_path / "items.csv", ["item_id", "kind", "document_number", "issue_date", "amount_open",
                                           "currency", "note"], [["I1", "invoice", "INV-1001", "2026-03-01",
                                                                  "1200.00", "EUR", "anything"]])
    out = tmp_path / "matches.csv"
    assert ledgerflow("reconcile-files", "--bank", str(bank), "--items", str(items), "--out", str(out)).returncode == 0
    assert "B1,I1,1200.00" in out.read_text()


BAD_INPUTS = {
    "missing column": ("bank", lambda rows: (BANK_HEADER[:4] + BANK_HEADER[5:], [r[:4] + r[5:] for r in rows]),
                       "bank.csv: line 1, column amount: required column missing"),
    "bad amount": ("bank", lambda rows: (BANK_HEADER, [rows[0], rows[1][:4] + ["1.234,50"] + rows[1][5:]]),
                   "bank.csv: line 3, column amount: not an amount"),
    "float amount": ("items", lambda rows: (ITEM_HEADER, [rows[0][:5] + ["1.2e3"] + rows[0][6:]]),
                     "items.csv: line 2, column amount_open: not an amount"),
    "duplicate id": ("bank", lambda rows: (BANK_HEADER, [rows[0], rows[1], rows[0]]),
                     "bank.csv: line 4, column bank_line_id: duplicate id 'B1' (first on line 2)"),
    "unknown currency": ("items", lambda rows: (ITEM_HEADER, [rows[0], rows[1][:6] + ["EUX"] + rows[1][7:]]),
                         "items.csv: line 3, column currency: not an ISO 4217 currency code (got 'EUX')"),
    "bad date": ("bank", lambda rows: (BANK_HEADER, [rows[0][:2] + ["2026-02-30"] + rows[0][3:]]),
                 "bank.csv: line 2, column booking_date: not a date YYYY-MM-DD (got '2026-02-30')"),
    "unknown kind": ("items", lambda rows: (ITEM_HEADER, [rows[0][:1] + ["credit"] + rows[0][2:]]),
                     "items.csv: line 2, column kind: must be one of invoice, bill, payout, refund"),
    "empty required value": ("items", lambda rows: (ITEM_HEADER, [rows[0][:2] + [""] + rows[0][3:]]),
                             "items.csv: line 2, column document_number: a value is required"),
    "ragged row": ("bank", lambda rows: (BANK_HEADER, [rows[0], rows[1][:5]]),
                   "bank.csv: line 3: 5 fields where the header has 10"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS) + ["empty file", "not utf-8"])
def test_malformed_input_exits_2_naming_file_line_and_column_and_writes_nothing(files, tmp_path, case):
    bank, items = files
    if case == "empty file":
        bank.write_bytes(b"")
        expected = "bank.csv: line 1: empty file (a header row is required)"
    elif case == "not utf-8":
        items.write_bytes(items.read_bytes().replace(b"Nordic", b"Nord\xe9c"))
        expected = "items.csv: line 2: not UTF-8"
    else:
        which, change, expected = BAD_INPUTS[case]
        header, rows = change(BANK if which == "bank" else ITEMS)
        write(bank if which == "bank" else items, header, rows)
    out, report = tmp_path / "matches.csv", tmp_path / "report.json"
    result = ledgerflow("reconcile-files", "--bank", str(bank), "--items", str(items), "--out", str(out),
                        "--report", str(report))
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in " ".join(result.stderr.split()), result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3  # one message, not a traceback
    assert not out.exists() and not report.exists() and not list(tmp_path.glob(".*tmp"))


def test_bad_flags_exit_2(files, tmp_path):
    bank, items = files
    result = ledgerflow("reconcile-files", "--bank", str(bank), "--items", str(items), "--out",
                        str(tmp_path / "m.csv"), "--amount-tolerance", "three")
    assert result.returncode == 2 and "--amount-tolerance 'three'" in result.stderr
    missing = ledgerflow("reconcile-files", "--bank", str(tmp_path / "nope.csv"), "--items", str(items), "--out",
                         str(tmp_path / "m.csv"))
    assert missing.returncode == 2 and "nope.csv: file not found" in missing.stderr


def test_decisions_file_confirms_and_rejects(files, tmp_path):
    bank, items = files
    decisions = write(tmp_path / "decisions.csv", ["bank_line_id", "item_id", "decision"],
                      [["B1", "I1", "reject"], ["B3", "I1", "confirm"]])
    out = tmp_path / "matches.csv"
    result = ledgerflow("reconcile-files", "--bank", str(bank), "--items", str(items), "--out", str(out),
                        "--decisions", str(decisions))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "B3,I1,99.00,manual,1.00," in text and "B1,I1" not in text


def test_reconcile_files_never_imports_prefect(files, tmp_path):
    bank, items = files
    probe = ("import sys\nsys.argv = ['ledgerflow', 'reconcile-files', '--bank', sys.argv[1], '--items', sys.argv[2],"
             " '--out', sys.argv[3]]\nfrom flows.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('HEAVY', sorted(m for m in ('prefect', 'dlt', 'duckdb') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe, str(bank), str(items), str(tmp_path / "m.csv")],
                            capture_output=True, text=True, cwd=ROOT)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


RAW_BAD = {
    "text after a closing quote": (b'bank_line_id,bank_account,booking_date,amount,currency,counterparty_name\n'
                                   b'L1,BE1,2024-03-05,100.00,EUR,"ACME"x\n', "bank.csv: line 2: not valid CSV"),
    "CR line endings": (b"bank_line_id,bank_account,booking_date,amount,currency\rL1,BE1,2024-03-05,1.00,EUR\r",
                        "bank.csv: line 1: lines end with CR alone"),
    "digits of another script": ("bank_line_id,bank_account,booking_date,amount,currency\n"
                                 "L1,BE1,2024-03-05,\uff11\uff10\uff10.00,EUR\n".encode(),
                                 "bank.csv: line 2, column amount: not an amount"),
    "blank line inside": (b"bank_line_id,bank_account,booking_date,amount,currency\nL1,BE1,2024-03-05,1.00,EUR\n\n"
                          b"L2,BE1,2024-03-05,1.00,EUR\n", "bank.csv: line 3: blank line inside the file"),
    "a row spanning lines": (b'bank_line_id,bank_account,booking_date,amount,currency,counterparty_name\n'
                             b'L1,BE1,2024-03-05,1.00,EUR,"A\n\nB"\nL1,BE1,2024-03-05,1.00,EUR,x\n',
                             "bank.csv: line 5, column bank_line_id: duplicate id 'L1' (first on line 2)"),
}


@pytest.mark.parametrize("case", sorted(RAW_BAD))
def test_malformed_bytes_exit_2_with_the_place(files, tmp_path, case):
    bank, items = files
    data, expected = RAW_BAD[case]
    bank.write_bytes(data)
    out = tmp_path / "matches.csv"
    result = ledgerflow("reconcile-files", "--bank", str(bank), "--items", str(items), "--out", str(out))
    assert result.returncode == 2 and expected in " ".join(result.stderr.split()), result.stderr
    assert not out.exists()
