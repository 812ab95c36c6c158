"""``python -m bench [--size smoke|full|N]``: every benchmark in turn, one JSON line each."""

import sys

from bench import backfill, exports, journal, recon, statements

if __name__ == "__main__":
    for bench in (journal, backfill, recon, statements, exports):
        bench.main(sys.argv[1:])
