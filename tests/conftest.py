"""Shared fixtures. Real parts only: DuckDB files in tmp_path, the demo PMS over HTTP on
127.0.0.1, Prefect's test harness (one per session, for the flow tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_SERVER_LEVEL", "CRITICAL")
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from tests.hotel import Hotel  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture
def hotel(tmp_path):
    """A 10-room hotel with March 2026 of history (DST change on the 29th)."""
    h = Hotel(tmp_path)
    yield h
    h.stop()


@pytest.fixture(scope="session")
def prefect_api():
    """One Prefect test harness for the whole session (starting one costs ~25 s here)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
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
