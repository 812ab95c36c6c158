"""Statement parsing: N camt.053 entries to bank lines, plus MT940 and CODA of the same size.

Ours: the parse -- decode, read every entry into exact ``Decimal`` money, check every statement's
balances (``seconds``); then, timed apart, building the lines with their content-fingerprint ids
(``lines_seconds``), which ``statements parse`` and the bank_files source do next. Baseline, in the same run:
the bare standard-library XML pass people start with -- ``xml.etree.ElementTree.iterparse``
reading each ``Ntry``'s amount and clearing it -- which checks nothing and builds no line.
MT940 and CODA are reported beside (``mt940_entries_per_s``, ``coda_entries_per_s``).
Target (issue 5): at least 100,000 camt.053 entries per second on one million entries.
"""

from __future__ import annotations

import sys

from bench.common import DATA, in_child, peak_mb, report, run_pair

SIZES = {"smoke": 20_000, "full": 1_000_000}
SEED = 5
FORMATS = {"camt053": ("xml", "generate_camt053"), "mt940": ("sta", "generate_mt940"),
           "coda": ("cod", "generate_coda")}


def path(fmt: str, size: int):
    return DATA / f"statements-{fmt}-{size}-seed{SEED}.{FORMATS[fmt][0]}"


def prepare(size: int) -> None:
    import bench.statement_data as generators

    DATA.mkdir(parents=True, exist_ok=True)
    for fmt, (_, function) in FORMATS.items():
        target = path(fmt, size)
        if not target.exists():
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(getattr(generators, function)(size, seed=SEED))
            partial.rename(target)


def _parse(fmt: str, size: int) -> dict:
    """Parse (bytes to balance-checked statements with exact amounts), then the lines with their ids."""
    import time

    from sources.bank_files.formats import parse_bytes
    from sources.bank_files.lines import balance_error, statement_lines, unique_statement_ids

    data = path(fmt, size).read_bytes()
    started = time.perf_counter()
    _, statements = parse_bytes(data, path(fmt, size).name, fmt)
    failed = balance_error("bench", unique_statement_ids(statements), statements)
    parsed = time.perf_counter()
    rows = statement_lines(statements, "bench")
    done = time.perf_counter()
    if failed:
        raise SystemExit(str(failed))
    return {"seconds": round(parsed - started, 3), "lines_seconds": round(done - parsed, 3),
            "peak_rss_mb": peak_mb(), "entries": len(rows), "statements": len(statements)}


def ours(size: int) -> dict:
    return _parse("camt053", size)


def ours_mt940(size: int) -> dict:
    return _parse("mt940", size)


def ours_coda(size: int) -> dict:
    return _parse("coda", size)


def baseline(size: int) -> dict:
    """ElementTree iterparse: every Ntry's amount as Decimal, elements cleared as it goes."""
    import time
    import xml.etree.ElementTree as ET
    from decimal import Decimal

    started = time.perf_counter()
    entries, total = 0, Decimal(0)
    for _, element in ET.iterparse(path("camt053", size), events=("end",)):
        if element.tag.endswith("}Ntry"):
            amount = element.find("{*}Amt")
            total += Decimal(amount.text)
            entries += 1
            element.clear()
    seconds = round(time.perf_counter() - started, 3)
    return {"seconds": seconds, "peak_rss_mb": peak_mb(), "entries": entries}


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "--child" and argv[1] in ("mt940", "coda"):
        import json

        print(json.dumps((ours_mt940 if argv[1] == "mt940" else ours_coda)(int(argv[2]))))
        return
    measured = run_pair("statements", SIZES, argv, ours, baseline, prepare=prepare)
    if measured:
        size, mine, bare = measured
        others = {fmt: in_child("bench.statements", fmt, str(size)) for fmt in ("mt940", "coda")}
        extra = {"lines_seconds": mine["lines_seconds"],
                 "with_line_ids_entries_per_s": round(mine["entries"] / (mine["seconds"] + mine["lines_seconds"]))}
        for fmt, figures in others.items():
            extra[f"{fmt}_seconds"] = figures["seconds"]
            extra[f"{fmt}_entries_per_s"] = round(figures["entries"] / figures["seconds"])
            extra[f"{fmt}_peak_rss_mb"] = figures["peak_rss_mb"]
            extra[f"{fmt}_with_line_ids_entries_per_s"] = round(
                figures["entries"] / (figures["seconds"] + figures["lines_seconds"]))
        report("statements", size, mine, "ElementTree iterparse, amounts only", bare, mine["entries"],
               target_rows_per_s=100_000, **extra)


if __name__ == "__main__":
    main(sys.argv[1:])
