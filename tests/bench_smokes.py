"""The benchmarks' smoke runs (``python -m bench.<name> --size smoke``), as background processes.

Each is mostly a process importing libraries, and the rest of the suite keeps one core busy: the
ones that need no Prefect server start as soon as pytest has collected tests/test_bench.py (see
conftest.py), the backfill one once the session's Prefect server is up, and tests/test_bench.py
reads each result when it gets there."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WITHOUT_PREFECT = ("journal", "recon", "statements", "exports", "post", "extract")
WITH_PREFECT = ("backfill",)

_running: dict[str, tuple[subprocess.Popen, Path]] = {}
_logs = Path(tempfile.mkdtemp(prefix="ledgerflow-bench-smokes-"))


def start(names: tuple[str, ...], env: dict[str, str] | None = None) -> None:
    for name in names:
        if name in _running:
            continue
        with open(_logs / f"{name}.out", "w") as out, open(_logs / f"{name}.err", "w") as err:
            process = subprocess.Popen([sys.executable, "-m", f"bench.{name}", "--size", "smoke"], stdout=out,
                                       stderr=err, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
        _running[name] = (process, _logs / name)


def result(name: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """The finished run (started now if nothing started it yet)."""
    start((name,))
    process, stem = _running[name]
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode,
                                       stem.with_suffix(".out").read_text(), stem.with_suffix(".err").read_text())


def stop_all() -> None:
    for process, _ in _running.values():
        if process.poll() is None:
            process.kill()
