import json
from datetime import UTC, date, datetime

from sources import http_audit
from sources.extract import extract


def test_secrets_are_replaced_in_headers_urls_and_bodies(tmp_path, monkeypatch):
    log = tmp_path / "http.jsonl"
    monkeypatch.setenv(http_audit.ENV, str(log))
    http_audit.record("POST", "https://api.example/x?api_key=abc&page=2",
                      {"Authorization": "Bearer t0k", "Accept": "application/json"},
                      json.dumps({"refresh_token": "r", "amount": "1.00"}), 200, 12.34)
    entry = json.loads(log.read_text())
    assert entry["headers"] == {"Authorization": "***", "Accept": "application/json"}
    assert entry["url"] == "https://api.example/x?api_key=***&page=2"
    assert entry["json"] == {"refresh_token": "***", "amount": "1.00"}
    assert (entry["method"], entry["status"], entry["response_ms"]) == ("POST", 200, 12.3)


def test_every_request_of_an_extraction_is_logged_when_asked(hotel, tmp_path, monkeypatch):
    log = tmp_path / "http.jsonl"
    monkeypatch.setenv(http_audit.ENV, str(log))
    hotel.morning_after(date(2026, 3, 5))
    extract(hotel.tenant, "pms", updated_since=datetime(2026, 3, 4, tzinfo=UTC))
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e["url"].split("?")[0].rsplit("/", 1)[1] for e in entries} == {"charges", "payments"}
    assert all(e["status"] == 200 and e["method"] == "GET" for e in entries)
