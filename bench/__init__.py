"""Benchmarks (INTERFACES §7). Each runs as ``python -m bench.<name> [--size smoke|full|N]`` and ends
with one JSON line; ``python -m bench`` runs them all. Our code and the baseline each run in their own
subprocess, so their peak memory is measured separately."""
