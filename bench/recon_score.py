"""Score a MATCHES.csv against the ground truth of ``bench.recon_data`` (INTERFACES §1).

``score(matches_csv, truth_dir)`` reads the engine's MATCHES.csv and, from ``truth_dir``, truth.csv,
ambiguous.csv, cases.csv and writeoffs.csv (the last two optional), plus bank.csv and items.csv for
the invariants. It returns:

* ``precision`` -- matched (bank_line_id, item_id) pairs with a non-empty item_id that are in
  truth.csv, over all such matched pairs; ``recall`` -- truth pairs found, over truth pairs (both
  1.0 when their denominator is 0: nothing matched is nothing wrong);
* ``ambiguous_auto`` -- lines of ambiguous.csv the engine matched to an item anyway;
* ``unexpected_lines`` -- lines with no pair in truth.csv that the engine matched to an item;
* ``amount_applied`` -- among correct pairs, how many carry the amount a perfect engine applies;
* ``writeoffs`` -- expected write-off rows found, with equal amount, with equal reason;
* ``per_case`` -- the same figures by scenario;
* ``violations`` -- broken invariants of MATCHES.csv (the first 1000; ``violation_count`` and
  ``violations_by_invariant`` count them all).

    uv run python -m bench.recon_score MATCHES.csv TRUTH_DIR [--bank BANK.csv] [--items ITEMS.csv]

prints the result as one JSON object. Extra columns in any file are ignored. Money is compared in
integer cents; a million-line set scores in seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from pathlib import Path

WRITE_OFF_REASONS = {"bank_fee", "processor_fee", "discount", "rounding", "fx", "other"}
MATCH_COLUMNS = ("bank_line_id", "item_id", "amount_applied", "rule", "confidence", "reason")
MONEY = re.compile(r"(-?)([0-9]+)(?:\.([0-9]{1,2}))?")  # ASCII digits only
MAX_LISTED = 1000


def cents(text: str) -> int | None:
    """A contract money string (``-1234.5``, at most 2 decimals, no exponent) in cents, else None."""
    match = MONEY.fullmatch(text)
    if match is None:
        return None
    if text[-3:-2] == ".":  # the usual two decimals: one int() (a million times per file)
        return int(text.replace(".", ""))
    value = int(match[2]) * 100 + int((match[3] or "").ljust(2, "0"))
    return -value if match[1] else value


def _input_cents(text: str) -> int | Decimal | None:
    """Money from the generator's files (bank, items, truth): cents, exact even with more decimals
    than two; None for an empty or malformed value. Not checked as strictly as MATCHES.csv, which is
    what is being scored."""
    if text[-3:-2] == ".":
        try:
            return int(text.replace(".", "", 1))
        except ValueError:
            pass
    try:
        return Decimal(text) * 100
    except InvalidOperation:
        return None


def _show(value: int | Decimal) -> str:
    return f"{Decimal(value) / 100:.2f}"


def _columns(path: Path, names: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """The named columns (two or more) of every row of a CSV file ("" where the file or a short row
    lacks a column)."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        where = [header.index(name) if name in header else len(header) for name in names]
        get = itemgetter(*where)
        for row in reader:
            try:
                yield get(row)
            except IndexError:
                yield tuple(row[i] if i < len(row) else "" for i in where)


def _header(path: Path) -> list[str]:
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle), [])


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 1.0


class _Violations:
    """Collects broken invariants: every one is counted, the first ``MAX_LISTED`` are kept."""

    def __init__(self):
        self.listed: list[dict] = []
        self.by_invariant: Counter = Counter()

    def add(self, invariant: str, detail: str, **ids: str) -> None:
        self.by_invariant[invariant] += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append({"invariant": invariant, **ids, "detail": detail})


def _read_matches(path: Path, violations: _Violations) -> list[tuple[str, str, int | None, bool, str]]:
    """(bank_line_id, item_id, cents or None, is a write-off, reason) per row; a missing column, a
    malformed amount or confidence is a violation."""
    missing = [name for name in MATCH_COLUMNS if name not in _header(path)]
    if missing:
        violations.add("columns", f"MATCHES.csv lacks {', '.join(missing)}")
    rows = []
    for number, (line_id, item_id, text, rule, confidence, reason) in enumerate(_columns(path, MATCH_COLUMNS), 2):
        amount = cents(text)
        if amount is None:
            violations.add("money_format", f"row {number}: amount_applied {text!r} is not a decimal with at most "
                           "2 decimals", bank_line_id=line_id, item_id=item_id)
        if confidence and not _in_unit_interval(confidence):
            violations.add("confidence", f"row {number}: confidence {confidence!r} is not in 0..1",
                           bank_line_id=line_id, item_id=item_id)
        is_write_off = rule == "write_off" or not item_id
        if is_write_off:
            _check_write_off_row(line_id, item_id, rule, reason, violations)
        rows.append((line_id, item_id, amount, is_write_off, reason))
    return rows


def _in_unit_interval(text: str) -> bool:
    try:
        return 0 <= Decimal(text) <= 1
    except InvalidOperation:
        return False


def _check_write_off_row(line_id: str, item_id: str, rule: str, reason: str, violations: _Violations) -> None:
    if item_id:
        violations.add("write_off_item", "a write_off row must have an empty item_id", bank_line_id=line_id,
                       item_id=item_id)
    elif rule != "write_off":
        violations.add("write_off_rule", f"row with empty item_id has rule {rule!r}, not write_off",
                       bank_line_id=line_id)
    if reason not in WRITE_OFF_REASONS:
        violations.add("write_off_reason", f"reason {reason!r} is not one of {sorted(WRITE_OFF_REASONS)}",
                       bank_line_id=line_id)


def _load_bank(path: Path, wanted: set[str]) -> dict[str, tuple]:
    """line id -> (cents, currency) for the lines MATCHES.csv names -- only those, and with shared
    strings, so that a million-line file costs little memory."""
    shared: dict[str, str] = {}
    return {line_id: (_input_cents(amount), shared.setdefault(currency, currency))
            for line_id, amount, currency in _columns(path, ("bank_line_id", "amount", "currency"))
            if line_id in wanted}


def _load_items(path: Path, wanted: set[str]) -> dict[str, tuple]:
    """item id -> (cents, currency, is a payout, has a settlement_ref) for the items MATCHES.csv names."""
    shared: dict[str, str] = {}
    names = ("item_id", "amount_open", "currency", "kind", "settlement_ref")
    return {item_id: (_input_cents(amount), shared.setdefault(currency, currency), kind == "payout", bool(settlement))
            for item_id, amount, currency, kind, settlement in _columns(path, names) if item_id in wanted}


def check_invariants(rows: list, bank: dict, items: dict, violations: _Violations) -> dict:
    """INTERFACES §1: per line, applied amounts (write-offs included) have the line's sign and do not
    exceed it, a write-off makes the line add up exactly; per item, the same against amount_open; a
    pair at most once; at most one write-off per line; equal currencies; a payout line settles a
    payout item or settlement_ref items, never both. (Write-off rows themselves are checked as they
    are read.) Returns the matched pairs: (bank_line_id, item_id) -> cents applied."""
    per_line: dict[str, int] = defaultdict(int)
    per_item: dict[str, int] = defaultdict(int)
    write_offs: Counter = Counter()
    pairs: dict[tuple[str, str], int | None] = {}
    payout_kinds: dict[str, set[str]] = defaultdict(set)
    for line_id, item_id, amount, is_write_off, _ in rows:
        line = bank.get(line_id)
        if line is None:
            violations.add("unknown_line", f"{line_id!r} is not in bank.csv", bank_line_id=line_id)
        if amount is not None:
            per_line[line_id] += amount
        if is_write_off:
            write_offs[line_id] += 1
            continue
        if (line_id, item_id) in pairs:
            violations.add("duplicate_pair", "the pair appears more than once", bank_line_id=line_id, item_id=item_id)
        pairs[line_id, item_id] = amount
        item = items.get(item_id)
        if item is None:
            violations.add("unknown_item", f"{item_id!r} is not in items.csv", item_id=item_id)
            continue
        if line is not None and line[1] != item[1]:
            violations.add("currency", f"line in {line[1]}, item in {item[1]}", bank_line_id=line_id, item_id=item_id)
        if amount is not None:
            per_item[item_id] += amount
        if item[2] or item[3]:
            payout_kinds[line_id].add("payout_item" if item[2] else "settlement_ref")
    for line_id, count in write_offs.items():
        if count > 1:
            violations.add("multiple_write_offs", f"{count} write_off rows", bank_line_id=line_id)
    for line_id, total in per_line.items():
        if line_id in bank:
            limit = bank[line_id][0]
            _check_bound("line", total, limit, violations, bank_line_id=line_id)
            if write_offs[line_id] and total != limit:
                violations.add("write_off_amount", f"with a write-off the rows must add up to the line's "
                               f"{_show(limit)}, they add up to {_show(total)}", bank_line_id=line_id)
    for item_id, total in per_item.items():
        _check_bound("item", total, items[item_id][0], violations, item_id=item_id)
    for line_id, kinds in payout_kinds.items():
        if len(kinds) > 1:
            violations.add("payout_both", "matched to a payout item and to settlement_ref items", bank_line_id=line_id)
    return pairs


def _check_bound(what: str, total: int, limit: int | Decimal, violations: _Violations, **ids: str) -> None:
    """``total`` has the sign of ``limit`` and does not exceed it in absolute value."""
    if total and (total > 0) != (limit > 0):
        violations.add(f"{what}_sign", f"applied {_show(total)} against {_show(limit)}", **ids)
    elif abs(total) > abs(limit):
        violations.add(f"{what}_exceeds", f"applied {_show(total)}, more than {_show(limit)}", **ids)


class _Truth:
    """What a correct engine produces: ``pairs`` (bank_line_id, item_id) -> (cents applied or None,
    case); ``ambiguous`` lines; expected ``writeoffs`` line -> (cents, reason); ``lines_per_case``;
    and ``case_of`` for the lines asked for (those MATCHES.csv names) -- not for every line, which at
    a million lines would cost more than all the rest."""

    def __init__(self, truth_dir: Path, wanted_lines: set[str]):
        names: dict[str, str] = {}  # one string per case name, shared by all the rows naming it
        self.pairs: dict[tuple[str, str], tuple] = {}
        self.case_of: dict[str, str] = {}
        for line_id, item_id, case, amount in _columns(truth_dir / "truth.csv",
                                                       ("bank_line_id", "item_id", "case", "amount_applied")):
            case = names.setdefault(case, case)
            self.pairs[line_id, item_id] = (_input_cents(amount), case)
            if line_id in wanted_lines:
                self.case_of[line_id] = case
        self.ambiguous = set()
        ambiguous_cases = {}
        for line_id, case in _columns(truth_dir / "ambiguous.csv", ("bank_line_id", "case")):
            self.ambiguous.add(line_id)
            ambiguous_cases[line_id] = names.setdefault(case, case)
            if line_id in wanted_lines:
                self.case_of.setdefault(line_id, ambiguous_cases[line_id])
        self.lines_per_case: Counter = Counter()
        if (truth_dir / "cases.csv").exists():
            for line_id, case in _columns(truth_dir / "cases.csv", ("bank_line_id", "case")):
                case = names.setdefault(case, case)
                self.lines_per_case[case] += 1
                if line_id in wanted_lines:
                    self.case_of[line_id] = case
        else:  # only the lines truth.csv and ambiguous.csv name
            by_line = {line_id: case for (line_id, _), (_, case) in self.pairs.items()} | ambiguous_cases
            self.lines_per_case.update(by_line.values())
        self.writeoffs = {}
        if (truth_dir / "writeoffs.csv").exists():
            self.writeoffs = {line_id: (_input_cents(amount), reason) for line_id, amount, reason
                              in _columns(truth_dir / "writeoffs.csv", ("bank_line_id", "amount", "reason"))}


def score(matches_csv: Path, truth_dir: Path, bank_csv: Path | None = None, items_csv: Path | None = None) -> dict:
    """Precision, recall, ambiguous lines auto-matched, per-case figures and invariant violations of
    ``matches_csv`` against the ground truth in ``truth_dir`` (see the module docstring)."""
    truth_dir = Path(truth_dir)
    violations = _Violations()
    rows = _read_matches(Path(matches_csv), violations)
    line_ids = {row[0] for row in rows}
    bank = _load_bank(Path(bank_csv) if bank_csv else truth_dir / "bank.csv", line_ids)
    items = _load_items(Path(items_csv) if items_csv else truth_dir / "items.csv",
                        {row[1] for row in rows if not row[3]})
    matched = check_invariants(rows, bank, items, violations)
    found_writeoffs = {line_id: (amount, reason) for line_id, _, amount, is_write_off, reason in rows if is_write_off}
    del bank, items, rows
    truth = _Truth(truth_dir, line_ids)
    correct = [pair for pair in matched if pair in truth.pairs]
    lines_with_truth = {line_id for line_id, _ in truth.pairs}
    matched_lines = {line_id for line_id, _ in matched}
    comparable = [pair for pair in correct if truth.pairs[pair][0] is not None]
    return {
        "pairs_truth": len(truth.pairs),
        "pairs_matched": len(matched),
        "pairs_correct": len(correct),
        "precision": _ratio(len(correct), len(matched)),
        "recall": _ratio(len(correct), len(truth.pairs)),
        "ambiguous_lines": len(truth.ambiguous),
        "ambiguous_auto": len(truth.ambiguous & matched_lines),
        "unexpected_lines": len(matched_lines - lines_with_truth),
        "amount_applied": {"compared": len(comparable),
                           "equal": sum(matched[pair] == truth.pairs[pair][0] for pair in comparable)},
        "writeoffs": _writeoff_figures(truth.writeoffs, found_writeoffs),
        "per_case": _per_case(truth, matched, correct),
        "violation_count": sum(violations.by_invariant.values()),
        "violations_by_invariant": dict(sorted(violations.by_invariant.items())),
        "violations": violations.listed,
    }


def _writeoff_figures(expected: dict, found: dict) -> dict:
    hits = [line_id for line_id in expected if line_id in found]
    return {
        "expected": len(expected),
        "found": len(hits),
        "amount_equal": sum(found[line_id][0] == expected[line_id][0] for line_id in hits),
        "reason_equal": sum(found[line_id][1] == expected[line_id][1] for line_id in hits),
        "unexpected": sum(1 for line_id in found if line_id not in expected),
    }


def _per_case(truth: _Truth, matched: dict, correct: list) -> dict:
    lines = truth.lines_per_case
    truth_pairs = Counter(case for _, case in truth.pairs.values())
    matched_pairs = Counter(truth.case_of.get(line_id, "unknown") for line_id, _ in matched)
    correct_pairs = Counter(truth.pairs[pair][1] for pair in correct)
    return {name: {"lines": lines[name], "truth_pairs": truth_pairs[name], "matched_pairs": matched_pairs[name],
                   "correct": correct_pairs[name], "precision": _ratio(correct_pairs[name], matched_pairs[name]),
                   "recall": _ratio(correct_pairs[name], truth_pairs[name])}
            for name in sorted(set(lines) | set(matched_pairs))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.recon_score", description=__doc__.split("\n\n")[0])
    parser.add_argument("matches", type=Path, help="MATCHES.csv written by the engine")
    parser.add_argument("truth_dir", type=Path, help="folder written by bench.recon_data")
    parser.add_argument("--bank", type=Path, help="default: TRUTH_DIR/bank.csv")
    parser.add_argument("--items", type=Path, help="default: TRUTH_DIR/items.csv")
    args = parser.parse_args(argv)
    print(json.dumps(score(args.matches, args.truth_dir, args.bank, args.items)))


if __name__ == "__main__":
    main(sys.argv[1:])
