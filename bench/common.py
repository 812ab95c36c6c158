"""Shared plumbing: sizes, child processes that report time and peak memory, the JSON line."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).resolve().parent / ".data"


def parse_size(name: str, sizes: dict[str, int], argv: list[str] | None = None) -> tuple[str, int]:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}")
    parser.add_argument("--size", default="full", help=f"smoke, full or a number ({sizes})")
    args = parser.parse_args(argv)
    size = sizes.get(args.size)
    if size is None:
        try:
            size = int(args.size)
        except ValueError:
            parser.error(f"--size {args.size!r}: expected smoke, full or a number")
    return args.size, size


def best_of(repeat: int, prepare, timed) -> tuple[float, object]:
    """Best wall time of ``timed(resource)`` over ``repeat`` runs; ``prepare()`` (not timed) is a
    context manager giving a fresh resource each time, e.g. a new DuckDB connection."""
    best, result = None, None
    for _ in range(repeat):
        with prepare() as handle:
            started = time.perf_counter()
            result = timed(handle)
            elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    return round(best, 3), result


def peak_mb() -> int:
    """Peak resident memory of this process so far (each measurement runs in its own child)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_pair(name: str, sizes: dict[str, int], argv: list[str], ours: Callable[[int], dict],
             baseline: Callable[[int], dict], prepare: Callable[[int], None] | None = None,
             env: dict | None = None) -> tuple[int, dict, dict] | None:
    """As a child (``--child ours|baseline SIZE``): measure one side and print its JSON. As the
    parent: read ``--size``, prepare the data, run both sides in children and return their figures."""
    role = child_role(argv)
    if role:
        side, args = role
        if side == "prepare":
            prepare(int(args[0]))
            print("{}")
            return None
        print(json.dumps((ours if side == "ours" else baseline)(int(args[0]))))
        return None
    _, size = parse_size(name, sizes, argv)
    if prepare:
        # In a child too: Linux keeps a process's peak memory across exec, so a parent that grew
        # while generating data would pass its peak on to every measured child.
        in_child(f"bench.{name}", "prepare", str(size), env=env)
    return (size, in_child(f"bench.{name}", "ours", str(size), env=env),
            in_child(f"bench.{name}", "baseline", str(size), env=env))


def in_child(module: str, role: str, *args: str, env: dict | None = None) -> dict:
    """Run ``python -m <module> --child <role> ...`` and read the JSON it prints last."""
    command = [sys.executable, "-m", module, "--child", role, *args]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{module} {role} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_role(argv: list[str]) -> tuple[str, list[str]] | None:
    if len(argv) >= 2 and argv[0] == "--child":
        return argv[1], argv[2:]
    return None


def report(bench: str, size: int, ours: dict, baseline_name: str, baseline: dict, rows: int, **extra) -> dict:
    line = {
        "bench": bench,
        "size": size,
        "seconds": ours["seconds"],
        "rows_per_s": round(rows / ours["seconds"]) if ours["seconds"] else None,
        "peak_rss_mb": ours["peak_rss_mb"],
        "baseline": baseline_name,
        "baseline_seconds": baseline["seconds"],
        "baseline_peak_rss_mb": baseline["peak_rss_mb"],
        "ratio_vs_baseline": round(ours["seconds"] / baseline["seconds"], 2) if baseline["seconds"] else None,
        **extra,
    }
    print(json.dumps(line), flush=True)
    return line
