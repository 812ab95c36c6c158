"""Statement files from a folder or an sFTP inbox (OpenSSH's sshd on 127.0.0.1) into the
tenant's DuckDB file through the dlt source ``bank_files``: exactly once, with continuity
checked and bad files quarantined while good ones go on."""

from __future__ import annotations

import os
import shutil
import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import tomli_w

from flows.bank_intake import take_bank_sources
from schemas.tenant import PACKAGED_TENANTS, ConfigError, load_tenant
from tests.statements import mt940
from warehouse.db import opened, query

NOW = datetime(2026, 4, 2, 6, 0, tzinfo=UTC)


def make_tenant(tmp_path: Path, source: dict) -> object:
    document = tomllib.loads((PACKAGED_TENANTS / "demo.toml").read_text(encoding="utf-8"))
    document.update(data_dir=str(tmp_path / "data"), sources={"bank": source}, destinations={})
    path = tmp_path / "tenant.toml"
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return load_tenant(path)


@pytest.fixture
def tenant(tmp_path):
    return make_tenant(tmp_path, {"type": "bank_files", "folder": "bank-drop"})


def deliver(tenant, name: str, text: str) -> Path:
    folder = tenant.data_path() / "bank-drop"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="latin-1")
    return folder / name


def stored(tenant) -> tuple[int, int]:
    with opened(tenant.duckdb_path()) as con:
        lines = query(con, "SELECT count(*) AS n FROM bank_line")["n"][0]
        statements = query(con, "SELECT count(*) AS n FROM bank_statement")["n"][0]
    return lines, statements


MARCH_1 = mt940(1, "100.00", [("260301", "10.00", "/NAME/ACME/REMI/INV 1"), ("260302", "-4.50", "FEE"),
                              ("260302", "-4.50", "FEE")])
MARCH_2 = mt940(2, "101.00", [("260303", "25.00", "/REMI/INV 2"), ("260304", "-1.00", "FEE")])


def test_new_files_are_loaded_once_and_moved_out_of_the_inbox(tenant):
    deliver(tenant, "day1.sta", MARCH_1)
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert [(s, f, n) for s, f, n in intake.loaded] == [("bank", "day1.sta", 3)]
    assert stored(tenant) == (3, 1)  # two identical 4.50 fees on one day stay two lines
    assert (tenant.data_path() / "bank-drop" / "processed" / "day1.sta").is_file()
    assert intake.quarantined == [] and intake.gaps.is_empty()


def test_the_same_file_delivered_again_adds_no_line(tenant):
    deliver(tenant, "day1.sta", MARCH_1)
    take_bank_sources(tenant, run_id="r1", now=NOW)
    deliver(tenant, "day1.sta", MARCH_1)
    deliver(tenant, "day1-copy.sta", MARCH_1)  # same bytes under another name
    intake = take_bank_sources(tenant, run_id="r2", now=NOW)
    assert intake.loaded == [] and sorted(f for _, f in intake.skipped) == ["day1-copy.sta", "day1.sta"]
    assert stored(tenant) == (3, 1)


def test_overlapping_statements_add_only_the_lines_not_seen(tenant):
    deliver(tenant, "a.sta", MARCH_1)
    take_bank_sources(tenant, run_id="r1", now=NOW)
    # Another export of the same account covering 2 to 3 March: the 2 March fees are already in.
    overlap = mt940(7, "110.00", [("260302", "-4.50", "FEE"), ("260302", "-4.50", "FEE"),
                                  ("260303", "25.00", "/REMI/INV 2")], reference="EXPORT")
    deliver(tenant, "b.sta", overlap)
    intake = take_bank_sources(tenant, run_id="r2", now=NOW)
    assert [n for _, _, n in intake.loaded] == [1]
    assert stored(tenant) == (4, 2)
    assert intake.gaps.is_empty()  # overlapping statements cannot join up; that is not a gap


def test_a_bank_reusing_statement_ids_loses_no_line(tenant):
    deliver(tenant, "day1.sta", MARCH_1)
    deliver(tenant, "day2.sta", MARCH_2)  # both say :20:MT940
    take_bank_sources(tenant, run_id="r1", now=NOW)
    assert stored(tenant) == (5, 2)


def test_a_gap_between_statements_is_alerted_once(tenant):
    deliver(tenant, "day1.sta", MARCH_1)
    missing = mt940(3, "150.00", [("260305", "5.00", "X")])  # 101.00 expected: a statement never came
    deliver(tenant, "day3.sta", missing)
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    gap = intake.gaps.row(0, named=True)
    assert intake.gaps.height == 1
    assert (gap["previous_closing"], gap["next_opening"], gap["difference"]) == (
        Decimal("101.00"), Decimal("150.00"), Decimal("49.00"))
    assert take_bank_sources(tenant, run_id="r2", now=NOW).gaps.is_empty()


def test_a_malformed_file_is_quarantined_with_its_reason_and_the_good_one_loads(tenant):
    deliver(tenant, "good.sta", MARCH_1)
    deliver(tenant, "cut.sta", MARCH_2.split(":62F:")[0])  # no closing balance
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert [f for _, f, _ in intake.loaded] == ["good.sta"]
    assert [name for name, _ in intake.quarantined] == ["cut.sta"]
    quarantine = tenant.data_path() / "bank-drop" / "quarantine"
    assert (quarantine / "cut.sta").is_file()
    reason = (quarantine / "cut.sta.reason.txt").read_text()
    assert "cut.sta" in reason and "line" in reason
    assert stored(tenant) == (3, 1)


def test_a_file_whose_balances_do_not_add_up_is_quarantined(tenant):
    deliver(tenant, "wrong.sta", MARCH_1.replace(":62F:C260302EUR101,00", ":62F:C260302EUR999,00"))
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert "not the closing balance 999.00" in intake.quarantined[0][1]
    assert stored(tenant) == (0, 0)


def test_a_statement_file_dropped_in_the_reconcile_inbox_is_parsed(tenant):
    from warehouse.recon import take_inbox

    folder = tenant.inbox_path() / "bank"
    folder.mkdir(parents=True)
    (folder / "day1.sta").write_text(MARCH_1, encoding="latin-1")
    with opened(tenant.duckdb_path()) as con:
        result = take_inbox(con, tenant, run_id="r1", now=NOW)
        again = take_inbox(con, tenant, run_id="r2", now=NOW)
    assert result.loaded == [("day1.sta", 3)] and again.loaded == []
    assert stored(tenant) == (3, 1)


def test_a_source_needs_exactly_one_location(tmp_path):
    with pytest.raises(ConfigError, match="exactly one of folder"):
        make_tenant(tmp_path, {"type": "bank_files"})


# --------------------------------------------------------------------------- sFTP

def sftp_tenant(tmp_path, server, monkeypatch, host_key=None):
    remote = server.root / tmp_path.name
    remote.mkdir()
    monkeypatch.setenv("LF_TEST_SFTP_KEY", str(server.client_key))
    tenant = make_tenant(tmp_path, {"type": "bank_files", "sftp": {
        "host": server.host, "port": server.port, "username": server.username, "remote_dir": str(remote),
        "host_key": host_key or server.host_key, "private_key_env": "LF_TEST_SFTP_KEY"}})
    return tenant, remote


def test_sftp_inbox_files_are_loaded_and_bad_ones_quarantined_on_the_server(tmp_path, sftp_server, monkeypatch):
    tenant, remote = sftp_tenant(tmp_path, sftp_server, monkeypatch)
    (remote / "day1.sta").write_text(MARCH_1, encoding="latin-1")
    (remote / "cut.sta").write_text(MARCH_2.split(":62F:")[0], encoding="latin-1")
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert [(f, n) for _, f, n in intake.loaded] == [("day1.sta", 3)]
    assert (remote / "processed" / "day1.sta").is_file()
    assert (remote / "quarantine" / "cut.sta").is_file() and (remote / "quarantine" / "cut.sta.reason.txt").is_file()
    shutil.copy(remote / "processed" / "day1.sta", remote / "again.sta")
    assert take_bank_sources(tenant, run_id="r2", now=NOW).loaded == []
    assert stored(tenant) == (3, 1)


def test_sftp_server_with_another_host_key_is_refused(tmp_path, sftp_server, monkeypatch):
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    tenant, remote = sftp_tenant(tmp_path, sftp_server, monkeypatch, host_key=other)
    (remote / "day1.sta").write_text(MARCH_1, encoding="latin-1")
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert intake.loaded == [] and "not the pinned one" in intake.failed[0][1]
    assert (remote / "day1.sta").is_file()  # nothing taken


def test_sftp_secret_missing_is_a_clear_failure_not_a_crash(tmp_path, sftp_server, monkeypatch):
    tenant, _ = sftp_tenant(tmp_path, sftp_server, monkeypatch)
    monkeypatch.delenv("LF_TEST_SFTP_KEY")
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert "LF_TEST_SFTP_KEY is not set" in intake.failed[0][1]


def test_the_reconcile_run_takes_the_bank_sources_first_and_says_what_went_wrong(tenant):
    from flows.reconcile import alert_of, reconcile_tenant

    deliver(tenant, "day1.sta", MARCH_1)
    deliver(tenant, "cut.sta", MARCH_2.split(":62F:")[0])
    deliver(tenant, "day3.sta", mt940(3, "150.00", [("260305", "5.00", "X")]))
    summary = reconcile_tenant(tenant, run_id="r1", now=NOW, notify=False)
    state = summary.final_state()
    assert summary.report["bank_lines"] == 4
    assert state.name == "CompletedWithRejects"
    assert "1 files quarantined" in state.message and "1 new gaps between bank statements" in state.message
    alert = alert_of(tenant, summary)
    assert "quarantined file cut.sta" in alert.text and "statement gap on" in alert.text
    assert alert.payload["statement_gaps"][0]["difference"] == "49.00"


# --------------------------------------------------------------------------- what the review found

def test_identical_lines_in_a_morning_and_an_evening_statement_stay_two_lines(tenant):
    deliver(tenant, "am.sta", mt940(1, "100.00", [("260301", "-2.00", "FEE")]))
    take_bank_sources(tenant, run_id="r1", now=NOW)
    deliver(tenant, "pm.sta", mt940(2, "98.00", [("260301", "-2.00", "FEE")]))
    intake = take_bank_sources(tenant, run_id="r2", now=NOW)
    assert [n for _, _, n in intake.loaded] == [1] and stored(tenant) == (2, 2)


def test_an_amount_too_large_for_the_ledger_is_quarantined_not_a_crash(tenant):
    from sources.demo_pms.bank import camt053_statement

    huge = {"booking_date": "2026-03-01", "value_date": "2026-03-01", "amount": "12345678901234567.00",
            "counterparty_name": None, "counterparty_iban": None, "remittance_info": "X"}
    folder = tenant.data_path() / "bank-drop"
    folder.mkdir(parents=True)
    (folder / "huge.xml").write_bytes(camt053_statement([huge], date(2026, 3, 1)))
    deliver(tenant, "good.sta", MARCH_1)
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert [n for n, _ in intake.quarantined] == ["huge.xml"] and "too large" in intake.quarantined[0][1]
    assert stored(tenant) == (3, 1)
    assert take_bank_sources(tenant, run_id="r2", now=NOW).failed == []


def test_a_balance_with_three_decimals_is_refused_never_rounded(tenant):
    deliver(tenant, "odd.sta", MARCH_1.replace("C260301EUR100,00", "C260301EUR100,005")
            .replace("EUR101,00", "EUR101,005"))
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert "more than two decimals" in intake.quarantined[0][1] and stored(tenant) == (0, 0)


def test_the_same_statement_in_two_formats_is_loaded_once_with_a_warning(tenant):
    from sources.demo_pms.bank import OPENING_BALANCE, OUR_IBAN, camt053_statement

    fee = {"booking_date": "2026-03-01", "value_date": "2026-03-01", "amount": "-2.00", "counterparty_name": None,
           "counterparty_iban": None, "remittance_info": "FEE"}
    deliver(tenant, "a.sta", mt940(1, f"{OPENING_BALANCE}", [("260301", "-2.00", "FEE")], account=OUR_IBAN))
    take_bank_sources(tenant, run_id="r1", now=NOW)
    (tenant.data_path() / "bank-drop" / "a.xml").write_bytes(camt053_statement([fee], date(2026, 3, 1)))
    intake = take_bank_sources(tenant, run_id="r2", now=NOW)
    assert stored(tenant) == (1, 2) and "equals one already loaded from a.sta" in intake.warnings[0]


def test_a_gap_after_an_overlapping_statement_is_still_found(tenant):
    deliver(tenant, "a.sta", mt940(1, "100.00", [("260301", "1.00", "A")]))
    deliver(tenant, "b.sta", mt940(2, "100.00", [("260301", "1.00", "A"), ("260302", "2.00", "B")]))
    take_bank_sources(tenant, run_id="r1", now=NOW)
    deliver(tenant, "c.sta", mt940(3, "150.00", [("260304", "3.00", "C")]))
    gaps = take_bank_sources(tenant, run_id="r2", now=NOW).gaps
    assert gaps.height == 1 and gaps["previous_closing"][0] == Decimal("103.00")


def test_links_out_of_the_folder_are_not_followed(tenant, tmp_path):
    outside = tmp_path / "secret.sta"
    outside.write_text(MARCH_1, encoding="latin-1")
    folder = tenant.data_path() / "bank-drop"
    folder.mkdir(parents=True)
    (folder / "link.sta").symlink_to(outside)
    intake = take_bank_sources(tenant, run_id="r1", now=NOW)
    assert intake.loaded == [] and stored(tenant) == (0, 0) and (folder / "link.sta").is_symlink()


def test_a_file_name_sent_every_day_keeps_every_archived_copy(tenant):
    deliver(tenant, "statement.sta", MARCH_1)
    take_bank_sources(tenant, run_id="r1", now=NOW)
    deliver(tenant, "statement.sta", MARCH_2)
    take_bank_sources(tenant, run_id="r2", now=NOW)
    processed = tenant.data_path() / "bank-drop" / "processed"
    assert sorted(p.name for p in processed.iterdir()) == ["statement.sta", "statement.sta.1"]
    assert stored(tenant) == (5, 2)


def test_statement_files_dropped_in_the_inbox_are_checked_for_gaps(tenant):
    from flows.reconcile import reconcile_tenant

    folder = tenant.inbox_path() / "bank"
    folder.mkdir(parents=True)
    (folder / "d1.sta").write_text(MARCH_1, encoding="latin-1")
    (folder / "d3.sta").write_text(mt940(3, "150.00", [("260305", "5.00", "X")]), encoding="latin-1")
    summary = reconcile_tenant(tenant, run_id="r1", now=NOW, notify=False)
    assert summary.bank.gaps.height == 1


def test_a_file_still_being_written_waits_for_the_next_run(tmp_path):
    tenant = make_tenant(tmp_path, {"type": "bank_files", "folder": "bank-drop", "settle_seconds": 60})
    deliver(tenant, "fresh.sta", MARCH_1)
    assert take_bank_sources(tenant, run_id="r1", now=NOW).loaded == []
    old = (tenant.data_path() / "bank-drop" / "fresh.sta")
    os.utime(old, (old.stat().st_atime - 120, old.stat().st_mtime - 120))
    assert [f for _, f, _ in take_bank_sources(tenant, run_id="r2", now=NOW).loaded] == ["fresh.sta"]
