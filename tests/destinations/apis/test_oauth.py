"""Token stores and OAuth sessions: rotated refresh tokens stored before use, in a 0600 file or a
real Prefect Secret block; clear errors that name the store and never a secret."""

from __future__ import annotations

import stat
import time

import pytest

from destinations.apis.fakes.xero import CLIENT_ID, CLIENT_SECRET, FakeXero
from destinations.apis.oauth import AuthError, FileTokenStore, OAuthSession, PrefectSecretStore, Tokens, token_store


@pytest.fixture(scope="module")
def server():
    with FakeXero(specs=None) as fake:
        yield fake


def session(server, store) -> OAuthSession:
    return OAuthSession("xero", store, token_url=server.token_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


def test_a_file_store_is_private_and_round_trips(tmp_path):
    store = token_store("file:tokens/xero.json", tmp_path)
    store.save(Tokens("a", "r", 1.5))
    assert store.load() == Tokens("a", "r", 1.5)
    assert stat.S_IMODE((tmp_path / "tokens" / "xero.json").stat().st_mode) == 0o600
    with pytest.raises(AuthError, match="expected file:<path> or prefect:<secret-block-name>"):
        token_store("vault:x", tmp_path)


def test_the_code_exchange_and_each_refresh_store_the_rotated_tokens_first(server, tmp_path):
    store = FileTokenStore(tmp_path / "xero.json")
    connected = session(server, store).exchange_code(server.issue_code(redirect_uri="https://example.org/cb"),
                                                     "https://example.org/cb")
    assert store.load() == connected
    later = session(server, store)
    later.refresh(rejected=connected.access_token)
    assert store.load().refresh_token != connected.refresh_token
    stale = session(server, FileTokenStore(tmp_path / "stale.json"))
    FileTokenStore(tmp_path / "stale.json").save(connected)  # the refresh token used above: rotated away
    with pytest.raises(AuthError, match="invalid_grant.*run `ledgerflow auth` again") as refused:
        stale.refresh()
    assert connected.refresh_token not in str(refused.value) and CLIENT_SECRET not in str(refused.value)


def test_no_tokens_yet_says_how_to_connect(server, tmp_path):
    with pytest.raises(AuthError, match=r"no tokens in file:.*run `ledgerflow auth xero`"):
        session(server, FileTokenStore(tmp_path / "none.json")).access_token()


def test_an_access_token_about_to_expire_is_refreshed_before_use(server, tmp_path):
    store = FileTokenStore(tmp_path / "xero.json")
    tokens = server.issue_tokens()
    store.save(Tokens(tokens["access_token"], tokens["refresh_token"], time.time() + 30))
    assert session(server, store).access_token() != tokens["access_token"]


def test_a_prefect_secret_block_keeps_the_tokens(prefect_api):
    store = PrefectSecretStore(f"test-xero-tokens-{int(time.time() * 1000)}")
    assert store.load() is None
    store.save(Tokens("access", "refresh", 2.0))
    store.save(Tokens("access2", "refresh2", 3.0))  # overwritten, as each refresh does
    assert store.load() == Tokens("access2", "refresh2", 3.0)


def test_a_refresh_token_rotated_by_another_process_is_taken_from_the_store(server, tmp_path):
    store = FileTokenStore(tmp_path / "xero.json")
    tokens = server.issue_tokens()
    store.save(Tokens(tokens["access_token"], tokens["refresh_token"], time.time() + 1800))
    ours, theirs = session(server, store), session(server, store)
    ours.access_token()  # both read the same pair
    theirs.refresh()  # the other process rotates it and stores the new pair
    ours.refresh(rejected=tokens["access_token"])  # ours is refused the old refresh token: takes theirs
    assert ours.access_token() == store.load().access_token
