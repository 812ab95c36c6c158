"""Shared fixtures. Real parts only: DuckDB files in tmp_path, the demo PMS over HTTP on
127.0.0.1, Prefect's test harness (one per session, for the flow tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_SERVER_LEVEL", "CRITICAL")
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from datetime import date  # noqa: E402

from tests import bench_smokes  # noqa: E402
from tests.hotel import Hotel, SavedHotel  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture
def hotel(tmp_path):
    """A 10-room hotel with March 2026 of history (DST change on the 29th)."""
    h = Hotel(tmp_path)
    yield h
    h.stop()


LATE_FIX_DAY = date(2026, 3, 10)


def late_fix_ticket(hotel: Hotel) -> None:
    """A restaurant ticket of 10 March, 20:00: 40.00 of food at 10 % VAT (later reclassified by some tests)."""
    hotel.add_charge("LATE-FIX", hotel.local(LATE_FIX_DAY, 20), amount="40.00", category="FOOD", vat_rate="10.00")


@pytest.fixture(scope="session")
def saved_late_fix(tmp_path_factory) -> SavedHotel:
    """10 March closed, with the LATE-FIX ticket in it: where every late-change scenario starts."""
    return SavedHotel(tmp_path_factory.mktemp("late-fix"), late_fix_ticket, [LATE_FIX_DAY])


@pytest.fixture
def late_fix_hotel(saved_late_fix):
    """A fresh copy of ``saved_late_fix`` for one test (the hotel fixture after add LATE-FIX + close 10 March)."""
    with saved_late_fix.copy() as hotel:
        yield hotel


_BENCH_SMOKES = pytest.StashKey[bool]()


def pytest_collection_modifyitems(session, config, items):
    """When the benchmarks' smoke runs are among the tests, start them now, in the background."""
    config.stash[_BENCH_SMOKES] = any(item.nodeid.startswith("tests/test_bench.py") for item in items)
    if config.stash[_BENCH_SMOKES]:
        bench_smokes.start(bench_smokes.WITHOUT_PREFECT)


def pytest_sessionfinish(session, exitstatus):
    bench_smokes.stop_all()


@pytest.fixture(scope="session")
def prefect_api(pytestconfig):
    """One Prefect test harness for the whole session (starting one costs ~25 s here)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        if pytestconfig.stash.get(_BENCH_SMOKES, False):  # the backfill smoke run needs this server
            bench_smokes.start(bench_smokes.WITH_PREFECT, env={"PREFECT_API_URL": PREFECT_API_URL.value()})
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout; absent is a skip locally and a failure in CI."""
    if not SHARED.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED} is missing: CI must have ../shared beside the checkout")
        pytest.skip(f"{SHARED} is not beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory):
    """OpenSSH's sshd on 127.0.0.1 (one per session); skipped locally when sshd is missing,
    a failure under CI=true (make test installs openssh-server)."""
    from tests.sftp_server import find_sshd, start_sshd

    if find_sshd() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("sshd is missing: make test installs openssh-server")
        pytest.skip("sshd is not installed (apt-get install openssh-server)")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()
