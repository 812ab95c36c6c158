"""``python -m bench [--size smoke|full|N]``: every benchmark in turn, one JSON line each."""

import sys

from bench import backfill, exports, extract, journal, post, recon, statements

if __name__ == "__main__":
    for bench in (journal, backfill, recon, statements, exports, post, extract):
        bench.main(sys.argv[1:])
