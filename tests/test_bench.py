"""Benchmarks at smoke size: they run, keep their contract (INTERFACES §7) and check their own results.

Each benchmark runs in its own process, started early (tests/bench_smokes.py) so that it shares the
machine's cores with the rest of the suite instead of queueing (the figures of a smoke run are not
compared, only its contract and its own checks)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import bench_smokes

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"bench", "size", "seconds", "rows_per_s", "peak_rss_mb", "baseline", "baseline_seconds",
        "baseline_peak_rss_mb", "ratio_vs_baseline"}


@pytest.fixture(scope="module")
def smokes(prefect_api):
    """name -> the finished smoke run; those without Prefect were started when pytest collected this file."""
    bench_smokes.start(bench_smokes.WITHOUT_PREFECT)
    bench_smokes.start(bench_smokes.WITH_PREFECT, env={"PREFECT_API_URL": prefect_api})

    class Results(dict):
        def __missing__(self, name):
            self[name] = bench_smokes.result(name)
            return self[name]

    return Results()


@pytest.mark.parametrize("name", ["journal", "backfill"])
def test_benchmark_smoke_size_prints_one_json_line(name, smokes):
    done = smokes[name]
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert KEYS <= set(line) and line["bench"] == name
    assert line["seconds"] > 0 and line["baseline_seconds"] > 0


def test_recon_smoke_size_meets_the_quality_targets(smokes):
    """The 5,000-line mixed set of issue 4: pair precision >= 0.995, recall >= 0.95, no ambiguous
    decoy auto-matched, and MATCHES.csv keeps every invariant of INTERFACES §1."""
    done = smokes["recon"]
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert KEYS <= set(line) and line["bench"] == "recon" and line["size"] == 5000
    quality = line["quality"]
    assert quality["precision"] >= 0.995 and quality["recall"] >= 0.95, quality
    assert quality["ambiguous_auto"] == 0 and quality["violations"] == 0, quality


def test_statements_smoke_size_parses_every_format(smokes):
    """camt.053 against the bare ElementTree pass, MT940 and CODA beside it: all entries parsed."""
    done = smokes["statements"]
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert KEYS <= set(line) and line["bench"] == "statements" and line["size"] == 20_000
    assert line["rows_per_s"] > 0 and line["mt940_entries_per_s"] > 0 and line["coda_entries_per_s"] > 0


def test_exports_smoke_size_writes_every_ledger_format(smokes):
    done = smokes["exports"]
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert KEYS <= set(line) and line["bench"] == "exports"
    assert set(line["seconds_per_format"]) == {"csv", "fec", "datev", "saft-no", "xaf", "sie4", "beancount", "hledger",
                                               "template:xero-manual-journal"}
    assert set(line["ms_per_invoice"]) == {"ubl", "facturx"}


def test_post_smoke_size_posts_every_journal_once_within_the_limits(smokes):
    done = smokes["post"]
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert KEYS <= set(line) and line["bench"] == "post"
    for system in ("xero", "qbo"):
        figures = line[system]
        assert figures["posted"] == figures["stored"] == line["size"], figures
        assert figures["refused_429"] == 0 and figures["spec_violations"] == 0, figures
    assert line["xero"]["busiest_minute"] <= 60 and line["qbo"]["busiest_minute"] <= 500


def test_extract_smoke_size_loads_every_record_on_both_sides(smokes):
    """Ours (sources.extract on the demo PMS source) and the bare dlt pipeline read the same paginated
    fake and both load every record; a size that is not one is refused with a clear message."""
    done = smokes["extract"]
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert KEYS <= set(line) and line["bench"] == "extract" and line["size"] == 5000
    assert line["stored"] == line["baseline_stored"] == 5000 and line["requests"] == 6, line
    refused = subprocess.run([sys.executable, "-m", "bench.extract", "--size", "lots"], capture_output=True,
                             text=True, cwd=ROOT, timeout=60)
    assert refused.returncode == 2 and "--size 'lots': expected smoke, full or a number" in refused.stderr
