"""A tenant's export destinations in any ledger format, delivered by sFTP (OpenSSH's sshd) and
e-mail (aiosmtpd), all on 127.0.0.1: file names by format rules, the export ledger's delivery
records, no resend on a rerun unless forced, failed deliveries retried by the next run, and a
period a format refuses left pending with the run's state saying why."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime

import pytest

from destinations.deliveries import deliver_batches
from tests.destinations.test_notify import smtp, smtp_server  # noqa: F401 - fixtures
from tests.hotel import Hotel
from warehouse.db import opened

DAY = date(2026, 3, 10)
FEC_NAME = "303265045FEC20261231.txt"


def fec_destination(schedule: str = "daily", **delivery) -> dict:
    return {"type": "files", "format": "fec", "path": "", "schedule": schedule, **delivery}


def sftp_of(server, remote_dir, **changes) -> dict:
    return {"host": server.host, "port": server.port, "username": server.username, "remote_dir": str(remote_dir),
            "host_key": server.host_key, "private_key_env": "LEDGERFLOW_TEST_SFTP_KEY", "timeout_seconds": 10,
            **changes}


def email_of(port: int) -> dict:
    return {"to": ["compta@example.org"], "sender": "ledgerflow@example.org", "smtp_host": "127.0.0.1",
            "smtp_port": port, "smtp_security": "none", "timeout_seconds": 5}


@pytest.fixture
def fec_hotel(tmp_path, sftp_server, smtp, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LEDGERFLOW_TEST_SFTP_KEY", str(sftp_server.client_key))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    inbox, port = smtp
    remote = sftp_server.root / tmp_path.name  # the server is shared by the session's tests
    hotel = Hotel(tmp_path / "hotel", **{"destinations.fec": {
        **fec_destination(sftp=sftp_of(sftp_server, remote), email=email_of(port)),
        "path": str(tmp_path / "hotel" / "exports" / "fec")}})
    yield hotel, remote, inbox
    hotel.stop()


def deliveries(hotel: Hotel):
    return hotel.sql("SELECT batch_id, channel, status, forced, sha256 FROM export_delivery "
                     "WHERE system_id = 'fec' ORDER BY attempted_at, channel").rows()


def test_a_fec_destination_publishes_by_format_rules_and_delivers_once(fec_hotel, shared_dir):
    hotel, remote, inbox = fec_hotel
    summary = hotel.close_day(DAY)
    assert summary.final_state().name == "Completed", summary.final_state().message
    local = hotel.export_dir("fec") / DAY.isoformat() / FEC_NAME
    checked = subprocess.run([str(shared_dir / "validators" / "validate"), "fec", str(local)], capture_output=True,
                             text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (remote / DAY.isoformat() / FEC_NAME).read_bytes() == local.read_bytes()
    assert not list(remote.rglob("*.part"))
    attachments = {p.get_filename(): p.get_payload(decode=True) for p in inbox.parsed().iter_attachments()}
    assert attachments == {FEC_NAME: local.read_bytes()}
    assert "fec export 2026-03-10..2026-03-10" in inbox.parsed()["Subject"]
    first = deliveries(hotel)
    assert [(channel, status) for _, channel, status, _, _ in first] == [("email", "ok"), ("local", "ok"),
                                                                         ("sftp", "ok")]

    again = hotel.close_day(DAY)  # a rerun: same bytes, nothing sent again
    assert deliveries(hotel) == first and len(inbox.messages) == 1
    assert {d.status for e in again.exports for d in e.deliveries if e.destination == "fec"} == {"skipped"}


def test_a_forced_delivery_sends_again_and_is_recorded_as_forced(fec_hotel):
    hotel, remote, inbox = fec_hotel
    hotel.close_day(DAY)
    (remote / DAY.isoformat() / FEC_NAME).unlink()
    with opened(hotel.tenant.duckdb_path()) as con:
        records = deliver_batches(con, hotel.tenant, "fec", [f"fec:{DAY}"], run_id="operator", force=True,
                                  now=datetime(2026, 3, 12, tzinfo=UTC))
    assert [(r.channel, r.status) for r in records] == [("local", "skipped"), ("sftp", "ok"), ("email", "ok")]
    assert (remote / DAY.isoformat() / FEC_NAME).is_file() and len(inbox.messages) == 2
    assert sorted((channel, forced) for _, channel, _, forced, _ in deliveries(hotel)) == [
        ("email", False), ("email", True), ("local", False), ("sftp", False), ("sftp", True)]


def test_a_changed_host_key_fails_the_delivery_and_the_next_run_retries_it(fec_hotel, sftp_server, tmp_path):
    hotel, remote, inbox = fec_hotel
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    assert other.returncode == 0
    wrong = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    hotel.reconfigure(lambda doc: doc["destinations"]["fec"]["sftp"].update(host_key=wrong))
    summary = hotel.close_day(DAY)
    state = summary.final_state()
    assert state.name == "CompletedWithWarnings"
    assert f"fec: {DAY}/{FEC_NAME} not delivered by sftp" in state.message and "not the pinned one" in state.message
    assert not (remote / DAY.isoformat()).exists()
    assert len(inbox.messages) == 1  # the e-mail went: channels fail independently

    hotel.reconfigure(lambda doc: doc["destinations"]["fec"]["sftp"].update(host_key=sftp_server.host_key))
    later = hotel.close_day(date(2026, 3, 11))  # another day's run retries the failed delivery
    assert later.final_state().name == "Completed", later.final_state().message
    assert (remote / DAY.isoformat() / FEC_NAME).is_file()
    statuses = [(batch, channel, status) for batch, channel, status, _, _ in deliveries(hotel) if channel == "sftp"]
    assert statuses == [(f"fec:{DAY}", "sftp", "failed"), (f"fec:{DAY}", "sftp", "ok"),
                        ("fec:2026-03-11", "sftp", "ok")]
    assert len(inbox.messages) == 2  # the e-mail of the 10th was not sent twice


def test_a_period_the_format_cannot_carry_is_refused_written_nowhere_and_exported_once_fixed(tmp_path):
    destination = {"type": "files", "format": "datev", "path": str(tmp_path / "datev"), "schedule": "daily"}
    hotel = Hotel(tmp_path / "hotel", **{"destinations.datev": destination,
                                         "datev": {"consultant_number": 1234567, "client_number": 10001,
                                                   "account_length": 4}})
    try:
        summary = hotel.close_day(DAY)
        state = summary.final_state()
        assert state.name == "CompletedWithWarnings"
        assert "datev (datev) refused" in state.message and "account" in state.message, state.message
        assert not (tmp_path / "datev").exists() or not any((tmp_path / "datev").rglob("*.csv"))
        assert hotel.export_bytes()  # the journal CSV destinations went on
        assert hotel.sql("SELECT count(*) FROM export_log WHERE system_id = 'datev'").item() == 0

        hotel.reconfigure(lambda doc: doc["datev"].update(account_length=6))
        fixed = hotel.close_day(DAY)
        assert fixed.final_state().name == "Completed", fixed.final_state().message
        (written,) = (tmp_path / "datev" / DAY.isoformat()).glob("EXTF_*.csv")
        assert hotel.sql("SELECT count(*) FROM export_log WHERE system_id = 'datev'").item() > 0
        assert written.read_bytes()[:4] == b'"EXT'
    finally:
        hotel.stop()


def test_opening_balances_are_what_the_destination_received_before(tmp_path):
    destination = {"type": "files", "format": "sie4", "path": str(tmp_path / "sie"), "schedule": "daily"}
    hotel = Hotel(tmp_path / "hotel", **{"destinations.sie": destination})
    try:
        hotel.close_day(date(2026, 3, 1))
        hotel.close_day(date(2026, 3, 2))
        first, second = ((tmp_path / "sie" / day / f"303265045-{day}_{day}.se").read_bytes().decode("cp437")
                         for day in ("2026-03-01", "2026-03-02"))
        assert "#IB 0 " not in first
        assert "#IB 0 411000 " in second, second[:2000]
        before = sorted(p.read_bytes() for p in (tmp_path / "sie").rglob("*.se"))
        hotel.close_day(date(2026, 3, 1))  # a rerun rewrites the same bytes
        assert sorted(p.read_bytes() for p in (tmp_path / "sie").rglob("*.se")) == before
    finally:
        hotel.stop()


def test_a_destination_with_an_unknown_format_is_refused_when_the_tenant_loads(tmp_path):
    from schemas.tenant import ConfigError

    with pytest.raises(ConfigError, match="format 'nope' is not a ledger export format"):
        Hotel(tmp_path / "hotel", **{"destinations.bad": {"type": "files", "format": "nope", "path": "x"}}).stop()


def test_ledgerflow_deliver_sends_what_has_not_arrived_or_everything_when_forced(fec_hotel):
    from tests.test_cli import ledgerflow, ledgerflow_here

    hotel, remote, inbox = fec_hotel
    hotel.close_day(DAY)
    args = ("deliver", str(hotel.tenant_file), "fec", "--period", "2026-03-01..2026-03-31")
    plain = ledgerflow(*args)
    assert plain.returncode == 0, plain.stderr
    assert [line.split()[:2] for line in plain.stdout.splitlines()] == [["skipped", "local"], ["skipped", "sftp"],
                                                                        ["skipped", "email"]]
    forced = ledgerflow_here(*args, "--force")  # the same command in this process: no second interpreter
    assert forced.returncode == 0, forced.stderr
    assert [line.split()[:2] for line in forced.stdout.splitlines()] == [["skipped", "local"], ["ok", "sftp"],
                                                                         ["ok", "email"]]
    assert len(inbox.messages) == 2
    unknown = ledgerflow_here("deliver", str(hotel.tenant_file), "nope", "--period", "2026-03-01..2026-03-31")
    assert unknown.returncode == 2 and "has no destination 'nope'" in unknown.stderr


def test_a_rerun_after_the_company_changed_keeps_published_files_and_says_when_one_cannot_be_restored(tmp_path):
    destination = {"type": "files", "format": "sie4", "path": str(tmp_path / "sie"), "schedule": "daily"}
    hotel = Hotel(tmp_path / "hotel", **{"destinations.sie": destination})
    try:
        hotel.close_day(date(2026, 3, 1))
        published = tmp_path / "sie" / "2026-03-01" / "303265045-2026-03-01_2026-03-01.se"
        before = published.read_bytes()
        hotel.reconfigure(lambda doc: doc.update(name="Hôtel du Lac SAS"))  # SIE writes #FNAMN
        again = hotel.close_day(date(2026, 3, 1))
        assert again.final_state().name == "Completed" and published.read_bytes() == before
        published.unlink()
        lost = hotel.close_day(date(2026, 3, 1)).final_state()
        assert lost.name == "CompletedWithWarnings"
        assert "2026-03-01/303265045-2026-03-01_2026-03-01.se is missing or changed and cannot be restored" in lost.message
        assert not published.exists()
    finally:
        hotel.stop()
