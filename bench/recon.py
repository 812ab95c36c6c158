"""Reconciliation: N bank lines against about N open items, from CSV files to MATCHES.csv.

Ours: ``ledgerflow reconcile-files`` end to end (``flows.recon_files.reconcile_files``: read and
check both files, every rule, write MATCHES.csv and REPORT.json). Baseline, in the same run: the
naive matcher people start with -- equal amount and currency, and the document number found as a
substring of the remittance text -- on the same files, written the same way. Both outputs are
scored against the generator's ground truth (``bench.recon_score``), so speed is never bought
with wrong matches. Targets (issue 4): 1,000,000 x 1,000,000 in under 60 s and 6 GB; on the
5,000-line mixed set pair precision >= 0.995, recall >= 0.95 and no ambiguous decoy auto-matched.
"""

from __future__ import annotations

import sys

from bench.common import DATA, peak_mb, report, run_pair

SIZES = {"smoke": 5_000, "full": 1_000_000}
SEED = 1


def folder(size: int):
    return DATA / f"recon-{size}-seed{SEED}"


def prepare(size: int) -> None:
    """Generate the files once per size (the generator is deterministic)."""
    from bench.recon_data import generate

    target = folder(size)
    if (target / "truth.csv").exists():
        return
    partial = target.with_name(target.name + ".partial")
    if partial.exists():
        import shutil

        shutil.rmtree(partial)
    generate(partial, lines=size, seed=SEED)
    partial.rename(target)


def ours(size: int) -> dict:
    import time

    from flows.recon_files import reconcile_files

    data = folder(size)
    started = time.perf_counter()
    result = reconcile_files(data / "bank.csv", data / "items.csv", data / "matches-ours.csv",
                             report=data / "report-ours.json")
    seconds = round(time.perf_counter() - started, 3)
    return {"seconds": seconds, "peak_rss_mb": peak_mb(), "rows": result.matches}


def baseline(size: int) -> dict:
    """Naive exact amount + reference substring, in Polars (a fair, vectorised baseline)."""
    import time

    import polars as pl

    from flows.recon_files import matches_csv
    from schemas.money import MONEY_DTYPE

    data = folder(size)
    started = time.perf_counter()
    bank = pl.read_csv(data / "bank.csv", infer_schema=False).select(
        "bank_line_id", "currency", pl.col("amount").cast(MONEY_DTYPE), pl.col("remittance_info").fill_null(""))
    items = pl.read_csv(data / "items.csv", infer_schema=False).select(
        "item_id", "currency", pl.col("amount_open").cast(MONEY_DTYPE).alias("amount"), "document_number")
    pairs = (
        bank.join(items, on=["currency", "amount"])
        .filter(pl.col("remittance_info").str.to_uppercase().str.contains(
            pl.col("document_number").str.to_uppercase(), literal=True))
        .unique(subset="bank_line_id", keep="first", maintain_order=True)
        .unique(subset="item_id", keep="first", maintain_order=True)
        .sort("bank_line_id")
        .select("bank_line_id", "item_id", pl.col("amount").alias("amount_applied"),
                pl.lit("naive").alias("rule"), pl.lit(1.0).alias("confidence"), pl.lit(None, pl.String).alias("reason"))
    )
    (data / "matches-baseline.csv").write_bytes(matches_csv(pairs))
    seconds = round(time.perf_counter() - started, 3)
    return {"seconds": seconds, "peak_rss_mb": peak_mb(), "rows": pairs.height}


def quality(size: int, side: str) -> dict:
    from bench.recon_score import score

    data = folder(size)
    figures = score(data / f"matches-{side}.csv", data)
    return {
        "precision": round(figures["precision"], 4),
        "recall": round(figures["recall"], 4),
        "ambiguous_auto": figures["ambiguous_auto"],
        "violations": len(figures["violations"]),
    }


def main(argv: list[str]) -> None:
    measured = run_pair("recon", SIZES, argv, ours, baseline, prepare=prepare)
    if measured:
        size, mine, bare = measured
        report("recon", size, mine, "naive exact-amount + reference substring", bare, size,
               quality=quality(size, "ours"), baseline_quality=quality(size, "baseline"),
               target_seconds=60, target_peak_rss_mb=6144)


if __name__ == "__main__":
    main(sys.argv[1:])
