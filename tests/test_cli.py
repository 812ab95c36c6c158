"""The ledgerflow command as a user runs it: a subprocess, its output and its exit code."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ledgerflow(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=300)


def ledgerflow_here(*args: str) -> subprocess.CompletedProcess:
    """The same command run in this process by typer's runner: same arguments, exit code, stdout and
    stderr, without the second or more that a new interpreter costs (tens of seconds with Prefect).
    Each file keeps at least one ``ledgerflow`` subprocess to prove the command runs as a user starts it."""
    from typer.testing import CliRunner

    from flows.cli import app

    saved = dict(os.environ)  # commands may set defaults in the environment (Prefect's logging)
    try:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(["ledgerflow", *args], result.exit_code, result.stdout, result.stderr)


def test_help_lists_the_commands_without_importing_heavy_libraries():
    probe = ("import sys\nsys.argv = ['ledgerflow', '--help']\nfrom flows.cli import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('HEAVY', sorted(m for m in ('prefect', 'dlt', 'polars', 'duckdb', 'pandera') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert "HEAVY []" in result.stdout
    for command in ("demo", "close", "backfill", "tenant", "reconcile-files", "reconcile", "statements"):
        assert command in result.stdout


def test_tenant_check_accepts_the_demo_and_names_the_problem_in_a_broken_file(tmp_path):
    assert ledgerflow("tenant", "check", "demo").returncode == 0
    broken = tmp_path / "hotel.toml"
    broken.write_text((ROOT / "tenants/demo.toml").read_text().replace('rounding_account = "658000"',
                                                                        'rounding_account = "6580"'))
    result = ledgerflow("tenant", "check", str(broken))
    assert result.returncode == 2
    assert "hotel.toml: mapping.rounding_account: account 6580 is not in the chart" in result.stderr


def test_a_malformed_date_exits_2_with_the_option_named():
    result = ledgerflow("close", "demo", "--date", "2026-02-30")
    assert result.returncode == 2 and "--date '2026-02-30': expected a date as YYYY-MM-DD" in result.stderr


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_demo_prints_where_everything_is_and_rewrites_identical_files(tmp_path, prefect_api, monkeypatch):
    """The first run is the command as a user starts it; the rerun goes through the same command in this
    process, on the session's Prefect harness (a second interpreter importing Prefect costs ~20 s here)."""
    args = ("demo", "--days", "3", "--out", str(tmp_path / "out"), "--workdir", str(tmp_path / "work"))
    first = ledgerflow(*args, env={"PREFECT_API_URL": prefect_api}, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    for label in ("DuckDB file", "Journal", "Trial balance", "Export files"):
        assert label in first.stdout
    assert (tmp_path / "work" / "demo.duckdb").is_file() and (tmp_path / "work" / "trial_balance.csv").is_file()
    files = digest(tmp_path / "out")
    assert {f"journal-demo-2026-03-{d}{ext}" for d in (29, 30, 31) for ext in (".csv", ".manifest.json")} <= set(files)
    assert {f"fec/2026-03-{d}/303265045FEC20261231.txt" for d in (29, 30, 31)} <= set(files)
    monkeypatch.chdir(tmp_path)
    second = ledgerflow_here(*args)
    assert second.returncode == 0, second.stderr
    assert digest(tmp_path / "out") == files
