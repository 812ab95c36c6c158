"""The reconciliation benchmark's data generator and scorer (bench.recon_data, bench.recon_score).

The generated truth is only worth something if it is right, so most tests check it from the outside,
with code independent of the generator's: check digits recomputed here, amounts that make an
amount+partner match unique, no document number hidden in the noise, and the truth itself passing
every INTERFACES §1 invariant when scored as if an engine had written it.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from bench import recon_data
from bench.recon_data import CASES, generate
from bench.recon_score import score

ROOT = Path(__file__).resolve().parent.parent
NO_PAIR_CASES = {"date_out_window", "currency_mismatch", "ambiguous_same_partner", "ambiguous_no_partner",
                 "other_partner", "unrelated"}
AMOUNT_PARTNER_CASES = {"partner_iban", "partner_name", "date_in_window", "batch"}
UNREFERENCED_CASES = AMOUNT_PARTNER_CASES | {"date_out_window", "ambiguous_same_partner", "ambiguous_no_partner",
                                             "other_partner", "unrelated"}
MATCH_HEADER = ["bank_line_id", "item_id", "amount_applied", "rule", "confidence", "reason"]


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("recon") / "set"
    generate(folder, lines=600, seed=7)
    return folder


# --- independent check digits ---------------------------------------------------------------------

def _iso7064(text: str) -> int:
    return int("".join(str(ord(ch) - 55) if ch.isalpha() else ch for ch in text)) % 97


def valid_iban(value: str) -> bool:
    return _iso7064(value[4:] + value[:4]) == 1


def valid_rf(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    return compact.startswith("RF") and len(compact) <= 25 and _iso7064(compact[4:] + compact[:4]) == 1


def valid_ogm(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    if len(digits) != 12:
        return False
    remainder = int(digits[:10]) % 97
    return int(digits[10:]) == (remainder if remainder else 97)


def valid_luhn(digits: str) -> bool:
    total = 0
    for position, ch in enumerate(reversed(digits)):
        doubled = int(ch) * 2 if position % 2 else int(ch)
        total += doubled // 10 + doubled % 10
    return total % 10 == 0


def valid_kid_mod11(digits: str) -> bool:
    weights = [1] + [2, 3, 4, 5, 6, 7] * 5
    return sum(int(ch) * w for ch, w in zip(reversed(digits), weights)) % 11 == 0


def valid_finnish(digits: str) -> bool:
    body, check = digits[:-1], int(digits[-1])
    weighted = sum(int(ch) * (7, 3, 1)[i % 3] for i, ch in enumerate(reversed(body)))
    return 4 <= len(digits) <= 20 and (10 - weighted % 10) % 10 == check


def valid_reference(value: str, currency: str) -> bool:
    """By form: RF..., 12 digits (OGM), else KID in NOK, else Finnish (the generator keeps the forms
    apart: KID and Finnish references never have 12 digits)."""
    if value.replace(" ", "").upper().startswith("RF"):
        return valid_rf(value)
    digits = re.sub(r"[\s+*/]", "", value)
    assert digits.isdigit(), value
    if len(digits) == 12:
        return valid_ogm(value)
    if currency == "NOK":
        return valid_luhn(digits) or valid_kid_mod11(digits)
    return valid_finnish(digits)


def test_independent_check_digits_know_published_examples():
    assert valid_iban("GB82WEST12345698765432") and not valid_iban("GB82WEST12345698765433")
    assert valid_rf("RF18 5390 0754 7034") and valid_rf("RF18000000000539007547034")
    assert not valid_rf("RF19 5390 0754 7034")
    assert valid_ogm("+++090/9337/55493+++") and valid_ogm("***000/0000/09797***")  # remainder 0 -> 97
    assert valid_luhn("79927398713") and not valid_luhn("79927398710")
    assert valid_finnish("1232") and valid_finnish("1234561") and not valid_finnish("1234562")


# --- the generator -----------------------------------------------------------------------------

def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    first, second, other = (generate(tmp_path / name, lines=300, seed=seed)
                            for name, seed in (("a", 3), ("b", 3), ("c", 4)))
    assert set(first) >= {"bank", "items", "truth", "ambiguous", "writeoffs", "cases"}
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes(), name
    assert first["bank"].read_bytes() != other["bank"].read_bytes()


def test_worker_processes_write_the_same_bytes_as_one_process(tmp_path, monkeypatch):
    alone = generate(tmp_path / "alone", lines=400, seed=5)
    monkeypatch.setattr(recon_data, "PARALLEL_FROM", 0)
    shared = generate(tmp_path / "shared", lines=400, seed=5)
    for name in alone:
        assert alone[name].read_bytes() == shared[name].read_bytes(), name
    assert not list((tmp_path / "shared").glob(".part*"))


def test_files_keep_the_contract_columns_and_formats(mixed):
    bank, items = read(mixed / "bank.csv"), read(mixed / "items.csv")
    with (mixed / "bank.csv").open(encoding="utf-8", newline="") as handle:
        assert next(csv.reader(handle)) == recon_data.BANK_COLUMNS
    with (mixed / "items.csv").open(encoding="utf-8", newline="") as handle:
        assert next(csv.reader(handle)) == recon_data.ITEM_COLUMNS
    assert 600 <= len(bank) <= 610 and len(items) > 600
    money = re.compile(r"-?\d+\.\d\d")
    day = re.compile(r"\d{4}-\d\d-\d\d")
    assert all(money.fullmatch(row["amount"]) and day.fullmatch(row["booking_date"]) for row in bank)
    assert all(money.fullmatch(row["amount_open"]) and day.fullmatch(row["issue_date"]) for row in items)
    assert {row["kind"] for row in items} == {"invoice", "bill", "payout", "refund"}
    assert len({row["bank_line_id"] for row in bank}) == len(bank)
    assert len({row["item_id"] for row in items}) == len(items)
    assert len({row["bank_account"] for row in bank}) >= 5
    assert {row["currency"] for row in bank} == {"EUR", "USD", "GBP", "SEK", "NOK"}
    refunds = {row["amount_open"][0] == "-" for row in items if row["kind"] == "refund"}
    assert refunds == {True, False}
    assert all(row["amount_open"].startswith("-") for row in items if row["kind"] == "bill")
    for column in ("partner_id", "company_id", "bank_account"):
        filled = sum(1 for row in items if row[column])
        assert 0 < filled < len(items), column


def test_a_small_set_has_every_case_in_about_equal_shares(mixed):
    lines = Counter(row["case"] for row in read(mixed / "cases.csv"))
    assert set(lines) == set(CASES)
    assert max(lines.values()) <= 1.3 * min(lines.values())  # an instalment scenario adds 2-3 lines at once
    truth_cases = {row["case"] for row in read(mixed / "truth.csv")}
    assert truth_cases == set(CASES) - NO_PAIR_CASES
    assert {row["case"] for row in read(mixed / "ambiguous.csv")} == {"ambiguous_same_partner",
                                                                      "ambiguous_no_partner"}
    assert {row["reason"] for row in read(mixed / "writeoffs.csv")} == {"bank_fee", "discount", "rounding",
                                                                         "processor_fee"}


def test_every_structured_reference_validates(mixed):
    items, bank = read(mixed / "items.csv"), read(mixed / "bank.csv")
    cases = {row["bank_line_id"]: row["case"] for row in read(mixed / "cases.csv")}
    checked = 0
    for row in items + bank:
        if row["structured_ref"]:
            assert valid_reference(row["structured_ref"], row["currency"]), row
            checked += 1
    patterns = {"ref_ogm": r"[+*]{3}\d{3}/\d{4}/\d{5}[+*]{3}|\b\d{12}\b", "ref_rf": r"^RF\d\d[0-9A-Z ]+$",
                "ref_kid": r"(?<=KID )\d+", "ref_fi": r"(?<=Viite )\d+|(?<=Ref\. )\d+|(?<=Viitenumero )\d+"}
    for row in bank:
        case = cases[row["bank_line_id"]]
        found = re.findall(patterns[case], row["remittance_info"]) if case in patterns else []
        if case in patterns and not row["structured_ref"]:
            assert found, row  # the reference is in the text when the column is empty
        for reference in found:
            assert valid_reference(reference, row["currency"]), row
            checked += 1
    assert checked > 100
    for value in {row["partner_iban"] for row in items} | {row["counterparty_iban"] for row in bank} - {""}:
        assert not value or valid_iban(value), value
    assert all(valid_iban(a.iban) for a in recon_data.ACCOUNTS if a.iban[:2].isalpha() and a.iban[2:4].isdigit())


def _sequence(document_number: str) -> int | None:
    if document_number.startswith(("ch_", "re_")):  # a processor's charge or refund id, random characters
        return None
    runs = re.findall(r"\d+", document_number)
    return int(runs[-1]) if runs and len(runs[-1]) >= 5 else None


def test_document_numbers_appear_only_where_a_scenario_put_them(mixed):
    """No remittance text names a document by accident (customer numbers, amounts, references and
    payout ids are drawn away from them); a typo'd number names no document at all."""
    items = [row for row in read(mixed / "items.csv") if row["kind"] != "payout"]
    by_sequence = {_sequence(row["document_number"]): row["item_id"] for row in items}
    by_sequence.pop(None, None)
    paired = defaultdict(set)
    for row in read(mixed / "truth.csv"):
        paired[row["bank_line_id"]].add(row["item_id"])
    cases = {row["bank_line_id"]: row["case"] for row in read(mixed / "cases.csv")}
    for row in read(mixed / "bank.csv"):
        numbers = set()
        for run in re.findall(r"\d+", row["remittance_info"]):
            numbers.add(int(run))
            if len(run) > 9 and run[:4] in ("2024", "2025"):  # year and number run together: INV202400123
                numbers.add(int(run[4:]))
        named = {by_sequence[number] for number in numbers if number in by_sequence}
        case = cases[row["bank_line_id"]]
        if case in UNREFERENCED_CASES or case.startswith("ref_") or case == "doc_typo":
            assert not named, row
        elif paired[row["bank_line_id"]] and not case.startswith("payout"):
            expected = set() if row["structured_ref"] and case == "tolerance" else paired[row["bank_line_id"]]
            assert named == expected, row
        elif case in ("currency_mismatch", "double_payment"):
            assert len(named) == 1, row


def test_amount_and_partner_matches_are_unique_by_amount(mixed):
    """An item paid by amount and partner alone has an amount no other item has; the ambiguous
    decoys share theirs on purpose."""
    items = {row["item_id"]: row for row in read(mixed / "items.csv")}
    amounts = Counter(row["amount_open"] for row in items.values())
    truth = read(mixed / "truth.csv")
    for row in truth:
        if row["case"] in AMOUNT_PARTNER_CASES:
            assert amounts[items[row["item_id"]]["amount_open"]] == 1, row
    bank = {row["bank_line_id"]: row for row in read(mixed / "bank.csv")}
    for row in read(mixed / "ambiguous.csv"):
        line = bank[row["bank_line_id"]]
        assert amounts[line["amount"]] >= 2 and not line["structured_ref"], line
        if row["case"] == "ambiguous_no_partner":
            assert not line["counterparty_name"] and not line["counterparty_iban"]


def test_date_windows_straddle_the_default_45_days(mixed):
    from datetime import date

    items = {row["item_id"]: row for row in read(mixed / "items.csv")}
    bank = {row["bank_line_id"]: row for row in read(mixed / "bank.csv")}

    def distance(line: dict, item: dict) -> int:
        booked = date.fromisoformat(line["booking_date"])
        first = date.fromisoformat(item["issue_date"])
        last = date.fromisoformat(item["due_date"] or item["issue_date"])
        return max((first - booked).days, (booked - last).days, 0)

    inside = [distance(bank[row["bank_line_id"]], items[row["item_id"]]) for row in read(mixed / "truth.csv")
              if row["case"] == "date_in_window"]
    assert inside and max(inside) <= 45 and max(inside) >= 25
    outside_lines = [bank[row["bank_line_id"]] for row in read(mixed / "cases.csv")
                     if row["case"] == "date_out_window"]
    by_amount = defaultdict(list)
    for item in items.values():
        by_amount[item["amount_open"]].append(item)
    for line in outside_lines:
        (item,) = by_amount[line["amount"]]
        assert distance(line, item) >= 90


class _Discard:
    def writerow(self, row):
        pass


def test_generator_keeps_no_rows_in_memory():
    """Rows go straight to the writers; the only collection that grows is the partner pool, and it
    stops at PARTNER_POOL per (country, kind). The document space is sized from the whole set."""
    generator = recon_data._Generator({name: _Discard() for name in recon_data.FILES}, 1_000_000, 1)
    assert generator.docs.width == 9
    for name in CASES * 100:
        getattr(generator, f"case_{name}")()
    assert generator.line_count > 2600 and generator.item_count > 2600
    containers = {key for key, value in vars(generator).items() if isinstance(value, (list, dict, set, tuple))}
    assert containers == {"pools"}
    assert all(len(pool) <= recon_data.PARTNER_POOL for pool in generator.pools.values())


# --- the scorer ------------------------------------------------------------------------------------

def write_matches(path: Path, rows: list[list[str]], header: list[str] = MATCH_HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_the_truth_itself_scores_perfectly(mixed, tmp_path):
    rows = [[row["bank_line_id"], row["item_id"], row["amount_applied"], "truth", "1", ""]
            for row in read(mixed / "truth.csv")]
    rows += [[row["bank_line_id"], "", row["amount"], "write_off", "1", row["reason"]]
             for row in read(mixed / "writeoffs.csv")]
    result = score(write_matches(tmp_path / "matches.csv", rows), mixed)
    assert result["precision"] == 1.0 and result["recall"] == 1.0
    assert result["ambiguous_auto"] == 0 and result["unexpected_lines"] == 0
    assert result["violations"] == [] and result["violation_count"] == 0
    assert result["amount_applied"]["equal"] == result["pairs_truth"]
    assert result["writeoffs"]["found"] == result["writeoffs"]["amount_equal"] == result["writeoffs"]["expected"]
    assert all(case["precision"] == case["recall"] == 1.0 for case in result["per_case"].values())


def test_scores_wrong_missing_and_ambiguous_matches(mixed, tmp_path):
    truth = read(mixed / "truth.csv")
    ambiguous = read(mixed / "ambiguous.csv")[0]["bank_line_id"]
    items = {row["item_id"]: row for row in read(mixed / "items.csv")}
    bank = {row["bank_line_id"]: row for row in read(mixed / "bank.csv")}
    decoy = next(i for i in items.values() if i["amount_open"] == bank[ambiguous]["amount"])
    rows = [[row["bank_line_id"], row["item_id"], row["amount_applied"], "x", "0.9", ""] for row in truth[:-10]]
    rows.append([ambiguous, decoy["item_id"], decoy["amount_open"], "amount", "0.5", ""])
    result = score(write_matches(tmp_path / "m.csv", rows), mixed)
    assert result["pairs_correct"] == len(truth) - 10 and result["pairs_matched"] == len(truth) - 9
    assert result["recall"] == round((len(truth) - 10) / len(truth), 6)
    assert result["precision"] == round((len(truth) - 10) / (len(truth) - 9), 6)
    assert result["ambiguous_auto"] == 1 and result["unexpected_lines"] == 1
    case = read(mixed / "cases.csv")
    ambiguous_case = next(row["case"] for row in case if row["bank_line_id"] == ambiguous)
    assert result["per_case"][ambiguous_case]["precision"] == 0.0


@pytest.fixture
def small_truth(tmp_path) -> Path:
    folder = tmp_path / "truth"
    folder.mkdir()
    files = {
        "bank.csv": ["bank_line_id,bank_account,booking_date,amount,currency",
                     "L1,A,2024-01-10,100.00,EUR", "L2,A,2024-01-10,-50.00,EUR", "L3,A,2024-01-10,200.00,USD",
                     "L4,A,2024-01-10,90.00,EUR"],
        "items.csv": ["item_id,kind,document_number,issue_date,amount_open,currency,settlement_ref",
                      "I1,invoice,D1,2024-01-01,100.00,EUR,", "I2,bill,D2,2024-01-01,-50.00,EUR,",
                      "I3,invoice,D3,2024-01-01,80.00,EUR,", "I4,payout,po_1,2024-01-01,90.00,EUR,",
                      "I5,invoice,D5,2024-01-01,30.00,EUR,po_1", "I6,invoice,D6,2024-01-01,60.00,EUR,po_1"],
        "truth.csv": ["bank_line_id,item_id,case,amount_applied", "L1,I1,doc,100.00", "L2,I2,bill,-50.00",
                      "L4,I4,payout,90.00"],
        "ambiguous.csv": ["bank_line_id,case", "L3,ambiguous"],
    }
    for name, lines in files.items():
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


BAD_MATCHES = {
    "line_exceeds": [["L1", "I1", "100.00", "x", "1", ""], ["L1", "I3", "80.00", "x", "1", ""]],
    "line_sign": [["L2", "I1", "20.00", "x", "1", ""]],
    "item_exceeds": [["L1", "I3", "100.00", "x", "1", ""]],
    "item_sign": [["L2", "I1", "-50.00", "x", "1", ""]],
    "duplicate_pair": [["L1", "I1", "50.00", "x", "1", ""], ["L1", "I1", "50.00", "x", "1", ""]],
    "multiple_write_offs": [["L1", "I1", "98.00", "x", "1", ""], ["L1", "", "1.00", "write_off", "1", "bank_fee"],
                            ["L1", "", "1.00", "write_off", "1", "rounding"]],
    "write_off_item": [["L1", "I1", "100.00", "write_off", "1", "bank_fee"]],
    "write_off_rule": [["L1", "I1", "98.00", "x", "1", ""], ["L1", "", "2.00", "fuzzy", "1", "bank_fee"]],
    "write_off_reason": [["L1", "I1", "98.00", "x", "1", ""], ["L1", "", "2.00", "write_off", "1", "tip"]],
    "write_off_amount": [["L1", "I1", "90.00", "x", "1", ""], ["L1", "", "5.00", "write_off", "1", "bank_fee"]],
    "currency": [["L3", "I1", "100.00", "x", "1", ""]],
    "payout_both": [["L4", "I4", "30.00", "x", "1", ""], ["L4", "I5", "30.00", "x", "1", ""]],
    "unknown_line": [["L9", "I1", "10.00", "x", "1", ""]],
    "unknown_item": [["L1", "I9", "10.00", "x", "1", ""]],
    "confidence": [["L1", "I1", "100.00", "x", "1.5", ""]],
}


@pytest.mark.parametrize("invariant", sorted(BAD_MATCHES))
def test_each_broken_invariant_is_reported(small_truth, tmp_path, invariant):
    result = score(write_matches(tmp_path / "bad.csv", BAD_MATCHES[invariant]), small_truth)
    assert set(result["violations_by_invariant"]) == {invariant}, result["violations"]
    assert result["violations"][0]["invariant"] == invariant


@pytest.mark.parametrize("amount", ["1e2", "100.000", "100,00", "", "1.0E+2", " 100.00", "1_00.00", "١٠٠.٠٠"])
def test_money_must_be_a_plain_decimal_with_at_most_two_decimals(small_truth, tmp_path, amount):
    result = score(write_matches(tmp_path / "bad.csv", [["L1", "I1", amount, "x", "1", ""]]), small_truth)
    assert set(result["violations_by_invariant"]) == {"money_format"}


def test_missing_columns_are_reported_and_extra_columns_ignored(small_truth, tmp_path):
    header = ["bank_line_id", "item_id", "amount_applied", "rule", "confidence", "note"]
    result = score(write_matches(tmp_path / "m.csv", [["L1", "I1", "100.00", "x", "1", "hello"]], header),
                   small_truth)
    assert result["violations_by_invariant"] == {"columns": 1} and result["precision"] == 1.0
    clean = write_matches(tmp_path / "ok.csv", [["L1", "I1", "100.00", "x", "1", "", "extra"]],
                          MATCH_HEADER + ["extra"])
    assert score(clean, small_truth)["violation_count"] == 0


def test_command_lines_print_paths_and_json(tmp_path, small_truth):
    made = subprocess.run([sys.executable, "-m", "bench.recon_data", str(tmp_path / "cli"), "--lines", "60",
                           "--seed", "2"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert made.returncode == 0, made.stderr
    assert Path(json.loads(made.stdout)["truth"]).exists()
    matches = write_matches(tmp_path / "m.csv", [["L1", "I1", "100.00", "x", "1", ""]])
    scored = subprocess.run([sys.executable, "-m", "bench.recon_score", str(matches), str(small_truth)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["precision"] == 1.0 and result["recall"] == round(1 / 3, 6) and result["violations"] == []
