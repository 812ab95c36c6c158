"""Posting: N journals (4 lines each) to the stateful fakes through ledgerflow's API clients and the
shared rate limiter, every request checked against the official API description.

Time is virtual for the limits: the fakes and the limiter share one clock that a wait moves
forward instead of sleeping, so Xero's 60 calls a minute (and QBO's 500 a minute and 10 a
second) are enforced exactly without the benchmark taking the hours they imply. Reported:
real seconds and requests/s (our machinery), the virtual duration the limits impose, and the
fakes' own count of refused calls (429s: must be 0) and busiest minute.

Baseline, in the same run: the naive client -- the same Xero requests in a loop with httpx and
no limiter -- against the same fake: the 429s it collects are what the limiter prevents.
"""

from __future__ import annotations

import sys
import time

from bench.common import peak_mb, report, run_pair

SIZES = {"smoke": 200, "full": 10_000}


class VirtualClock:
    """Real monotonic time plus whatever the waits skipped."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped

    def sleep(self, seconds: float) -> None:
        self.skipped += max(0.0, seconds)


def _journals(count: int):
    """Balanced four-line journals: receivable = revenue + VAT + a fee line moved to the bank."""
    from datetime import date, timedelta
    from decimal import Decimal

    from destinations.apis.base import JournalToPost, LineToPost

    result = []
    for n in range(count):
        net = Decimal(100 + n % 900)
        vat = (net / 10).quantize(Decimal("0.01"))
        fee = Decimal("1.50")
        lines = (LineToPost("411000", "Customers", "Room nights", net + vat - fee, Decimal(0), "V10", None, None),
                 LineToPost("627000", "Bank fees", "Card fee", fee, Decimal(0), None, None, None),
                 LineToPost("706100", "Rooms", "Room nights", Decimal(0), net, "V10", None, None),
                 LineToPost("445710", "VAT 10 %", "VAT", Decimal(0), vat, "V10", None, None))
        result.append(JournalToPost(f"bench-{n:06d}", date(2026, 3, 1) + timedelta(days=n % 31), "VT",
                                    f"Sales {n}", f"INV-{n}", "EUR", f"{n:064x}", lines))
    return result


def _session(system: str, fake, tokens: dict, folder):
    from destinations.apis.oauth import FileTokenStore, OAuthSession, Tokens

    store = FileTokenStore(folder / f"{system}.json")
    store.save(Tokens(tokens["access_token"], tokens["refresh_token"], time.time() + tokens["expires_in"]))
    return OAuthSession(system, store, token_url=fake.token_url, client_id=fake.client_id,
                        client_secret=fake.client_secret)


def _post(system: str, count: int) -> dict:
    import tempfile
    from pathlib import Path

    from destinations.apis.http import ApiClient
    from destinations.apis.limiter import RateLimiter

    clock = VirtualClock()
    limiter = RateLimiter(now=clock, sleep=clock.sleep)
    todo = _journals(count)
    with tempfile.TemporaryDirectory() as folder:
        if system == "xero":
            from destinations.apis.fakes.xero import FakeXero
            from destinations.apis.xero import XeroApi

            fake = FakeXero(now=clock).start()
            session = _session("xero", fake, fake.issue_tokens(), Path(folder))
            api = XeroApi(ApiClient("xero", fake.tenant_id, fake.api_url, session, limiter=limiter,
                                    sleep=clock.sleep))
        else:
            from destinations.apis.fakes.qbo import FakeQbo
            from destinations.apis.qbo import QboApi

            fake = FakeQbo(now=clock).start()
            for account in ("411000", "627000", "706100", "445710"):
                fake.add_account(account, account)
            from destinations.apis.fakes.qbo import ACCESS_TOKEN

            seeded = {"access_token": ACCESS_TOKEN, "refresh_token": "unused", "expires_in": 3600}
            session = _session("qbo", fake, seeded, Path(folder))
            api = QboApi(ApiClient("qbo", fake.realm, fake.url, session, limiter=limiter, sleep=clock.sleep),
                         {a: a for a in ("411000", "627000", "706100", "445710")})
        started_virtual = clock()
        started = time.perf_counter()
        outcomes = api.post_journals(todo)
        seconds = time.perf_counter() - started
        virtual = clock() - started_virtual
        requests = api.client.calls
        api.close()
        stored = len(fake.manual_journals) if system == "xero" else len(fake.entities["JournalEntry"])
        result = {"seconds": round(seconds, 3), "requests": requests, "requests_per_s": round(requests / seconds, 1),
                  "journals_per_s": round(count / seconds, 1), "virtual_minutes": round(virtual / 60, 1),
                  "posted": sum(o.status == "posted" for o in outcomes), "stored": stored,
                  "refused_429": len(fake.limit_violations) if isinstance(fake.limit_violations, list)
                  else fake.limit_violations,
                  "busiest_minute": fake.max_calls_per_minute if system == "xero" else fake.max_per_minute,
                  "spec_violations": len(fake.spec_violations)}
        fake.stop()
    return result


def ours(count: int) -> dict:
    xero = _post("xero", count)
    qbo = _post("qbo", count)
    return {"seconds": xero["seconds"], "xero": xero, "qbo": qbo, "peak_rss_mb": peak_mb()}


def baseline(count: int) -> dict:
    """The same Xero batches sent in a loop with httpx: no limiter, no retries."""
    import httpx

    from destinations.apis.base import json_bytes
    from destinations.apis.fakes.xero import FakeXero
    from destinations.apis.xero import BATCH, XeroApi

    clock = VirtualClock()
    fake = FakeXero(now=clock).start()
    token = fake.issue_tokens()["access_token"]
    todo = _journals(count)
    shaper = XeroApi.__new__(XeroApi)
    shaper.account_codes = {}
    headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": fake.tenant_id,
               "Content-Type": "application/json", "Accept": "application/json"}
    refused = 0
    started = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        for start in range(0, count, BATCH):
            body = json_bytes({"ManualJournals": [shaper._document(j) for j in todo[start:start + BATCH]]})
            response = client.put(f"{fake.api_url}/ManualJournals", content=body, headers=headers)
            refused += response.status_code == 429
    seconds = time.perf_counter() - started
    stored = len(fake.manual_journals)
    fake.stop()
    return {"seconds": round(seconds, 3), "refused_429": refused, "stored": stored, "peak_rss_mb": peak_mb()}


def main(argv: list[str]) -> None:
    measured = run_pair("post", SIZES, argv, ours, baseline)
    if measured:
        size, mine, bare = measured
        report("post", size, mine, "naive httpx loop to the Xero fake, no limiter (429s it collects)", bare, size,
               xero=mine["xero"], qbo=mine["qbo"], baseline_refused_429=bare["refused_429"],
               baseline_stored=bare["stored"])


if __name__ == "__main__":
    main(sys.argv[1:])
