"""`ledgerflow statements parse` as a user runs it (INTERFACES §2): the statement lines it
prints, LINES.csv, exit codes, and what it leaves behind when a file is bad."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.statements import mt940
from tests.test_cli import ROOT, ledgerflow

DAY1 = mt940(1, "100.00", [("260301", "10.00", "/NAME/ACME/REMI/INV 1"), ("260302", "-4.50", "FEE")])
DAY2 = mt940(2, "105.50", [("260303", "25.00", "/REMI/INV 2")])
GAPPED = mt940(3, "999.00", [("260304", "1.00", "X")])


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="latin-1")
    return path


def rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_parse_prints_one_line_per_statement_and_writes_the_lines(tmp_path):
    out = tmp_path / "LINES.csv"
    done = ledgerflow("statements", "parse", str(write(tmp_path, "a.sta", DAY1)), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and done.stdout.startswith("statement ")
    assert " account NL91ABNA0417164300 opening 100.00 closing 105.50 lines 2 check ok" in done.stdout
    lines = rows(out)
    assert [r["amount"] for r in lines] == ["10.00", "-4.50"] and lines[0]["sequence"] == "1"
    assert {"bank_line_id", "statement_id", "transaction_code", "end_to_end_id"} <= set(lines[0])


def test_the_lines_can_be_reconciled_as_they_are(tmp_path):
    out = tmp_path / "LINES.csv"
    ledgerflow("statements", "parse", str(write(tmp_path, "a.sta", DAY1)), "--out", str(out))
    items = tmp_path / "ITEMS.csv"
    items.write_text("item_id,kind,document_number,issue_date,amount_open,currency\n"
                     "I1,invoice,INV 1,2026-02-20,10.00,EUR\n", encoding="utf-8")
    done = ledgerflow("reconcile-files", "--bank", str(out), "--items", str(items), "--out", str(tmp_path / "M.csv"))
    assert done.returncode == 0, done.stderr
    assert "I1" in (tmp_path / "M.csv").read_text()


def test_a_rerun_writes_the_same_bytes(tmp_path):
    source = write(tmp_path, "a.sta", DAY1)
    first, second = tmp_path / "one.csv", tmp_path / "two.csv"
    ledgerflow("statements", "parse", str(source), "--out", str(first))
    ledgerflow("statements", "parse", str(source), "--out", str(second))
    assert first.read_bytes() == second.read_bytes()


def test_a_bad_file_alone_exits_2_names_file_and_line_and_leaves_no_lines(tmp_path):
    out = tmp_path / "LINES.csv"
    cut = write(tmp_path, "cut.sta", DAY1.split(":62F:")[0])
    done = ledgerflow("statements", "parse", str(cut), "--out", str(out))
    assert done.returncode == 2
    assert "cut.sta: line " in done.stderr and not out.exists()
    assert not list(tmp_path.glob(".LINES.csv*"))  # no temporary file either


def test_a_wrong_balance_prints_failed_and_exits_2(tmp_path):
    out = tmp_path / "LINES.csv"
    wrong = write(tmp_path, "wrong.sta", DAY1.replace("EUR105,50", "EUR999,00"))
    done = ledgerflow("statements", "parse", str(wrong), "--out", str(out))
    assert done.returncode == 2 and "check FAILED" in done.stdout
    assert "not the closing balance 999.00" in done.stderr and not out.exists()


def test_with_several_files_the_good_ones_are_written_and_the_bad_named(tmp_path):
    out = tmp_path / "LINES.csv"
    good, bad = write(tmp_path, "a.sta", DAY1), write(tmp_path, "cut.sta", DAY2.split(":62F:")[0])
    done = ledgerflow("statements", "parse", str(good), str(bad), "--out", str(out))
    assert done.returncode == 2 and "cut.sta" in done.stderr
    assert len(rows(out)) == 2 and good.is_file() and bad.is_file()  # input never moved


def test_a_gap_between_statements_is_a_warning_not_an_error(tmp_path):
    out = tmp_path / "LINES.csv"
    done = ledgerflow("statements", "parse", str(write(tmp_path, "a.sta", DAY1)), str(write(tmp_path, "b.sta", DAY2)),
                      str(write(tmp_path, "c.sta", GAPPED)), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "warning: gap between statements" in done.stderr and "closes at 130.50" in done.stderr
    assert done.stderr.count("warning:") == 1  # a and b join up
    assert len(rows(out)) == 4


def test_an_unknown_format_is_refused_with_the_first_line_named(tmp_path):
    done = ledgerflow("statements", "parse", str(write(tmp_path, "x.txt", "hello\n")), "--out", str(tmp_path / "L.csv"))
    assert done.returncode == 2 and "x.txt: line 1: not a statement format" in done.stderr


def test_csv_needs_a_profile_and_an_unknown_profile_is_named(tmp_path):
    source = write(tmp_path, "x.csv", "a,b\n")
    done = ledgerflow("statements", "parse", str(source), "--format", "csv", "--out", str(tmp_path / "L.csv"))
    assert done.returncode == 2 and "--profile" in done.stderr
    done = ledgerflow("statements", "parse", str(source), "--format", "csv", "--profile", "nope",
                      "--out", str(tmp_path / "L.csv"))
    assert done.returncode == 2 and "'nope' is not a bank CSV profile" in done.stderr and "ing_nl" in done.stderr


def test_profiles_are_listed():
    done = ledgerflow("statements", "profiles")
    assert done.returncode == 0 and "generic" in done.stdout and "ing_nl" in done.stdout


def test_parse_help_answers_in_under_a_second_without_heavy_imports():
    probe = ("import sys, time; t = time.perf_counter(); from flows.cli import app; "
             "from typer.testing import CliRunner; r = CliRunner().invoke(app, ['statements', 'parse', '--help']); "
             "assert r.exit_code == 0, r.output; "
             "print(time.perf_counter() - t, [m for m in ('prefect', 'dlt', 'polars', 'duckdb') if m in sys.modules])")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    seconds, heavy = done.stdout.split(" ", 1)
    assert heavy.strip() == "[]" and float(seconds) < 1.0, (seconds, time.perf_counter() - started)


@pytest.mark.parametrize("fmt", ["coda", "mt940", "camt053", "camt054", "ofx"])
def test_every_sample_of_the_shared_set_parses_as_expected(shared_dir, fmt):
    """The development sample set (../shared/samples/bank) through its own checker."""
    done = subprocess.run([sys.executable, str(shared_dir / "samples" / "bank" / "check.py"), "--only", f"{fmt}/"],
                          capture_output=True, text=True, cwd=ROOT, env={"LEDGERFLOW": f"{sys.executable} -m flows.cli",
                                                                          "PATH": "/usr/bin:/bin"}, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]


BROKEN = json.loads(json.dumps({
    "truncated_camt053_valid_example.xml": "camt053", "truncated_coda_sample1.cod": "coda",
    "truncated_mt940_danskebank_DK.sta": "mt940", "bad_encoding_camt053_latin1_declared_utf8.xml": "camt053",
    "bad_encoding_mt940_raiffeisen-cmi_cp852.sta": "mt940",
    "wrong_balance_coda_Ontvangen_CODA.2012-01-11-18.59.15.txt": "coda",
    "wrong_balance_camt053_oca_test-camt053.xml": "camt053", "wrong_balance_mt940_abn_sample2.sta": "mt940",
    "broken_ofx_oca_test_ofx_wrong.ofx": "ofx", "unsupported_version_coda_faulty_version.txt": "coda"}))


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_every_broken_sample_exits_2_naming_file_and_line(shared_dir, tmp_path, name):
    out = tmp_path / "LINES.csv"
    done = ledgerflow("statements", "parse", str(shared_dir / "samples" / "bank" / "broken" / name),
                      "--format", BROKEN[name], "--out", str(out))
    assert done.returncode == 2 and not out.exists()
    message = done.stderr.strip().splitlines()[-1]
    assert name in message and ": line " in message, message
    if name.startswith("wrong_balance"):
        assert "check FAILED" in done.stdout


def test_a_line_in_two_given_files_is_written_once_so_ids_stay_unique(tmp_path):
    out = tmp_path / "LINES.csv"
    source = write(tmp_path, "a.sta", DAY1)
    done = ledgerflow("statements", "parse", str(source), str(source), "--out", str(out))
    assert done.returncode == 0 and "2 lines were already in an earlier file" in done.stderr
    ids = [r["bank_line_id"] for r in rows(out)]
    assert len(ids) == len(set(ids)) == 2 and "warning" not in done.stderr
