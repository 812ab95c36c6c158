"""OAuth 2.0 for the accounting APIs: the authorisation-code bootstrap, and access tokens that are
refreshed before they expire, with the rotated refresh token stored *before* it is used.

Xero and QuickBooks Online rotate refresh tokens: each refresh returns a new one and the old
one stops working. A refresh whose answer is lost would therefore lock the organisation out,
so the new token pair is written to the store first, then used. Stores: a Prefect Secret
block (``prefect:<block-name>``, for deployments) or a JSON file (``file:<path>``, mode 0600,
for the demo and tests). Several organisations per installation: one store entry each. No
token is ever logged; errors name the store, never its content.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx

from sources import http_audit


class AuthError(RuntimeError):
    """No usable token: the message says what to do (never contains a secret)."""


class GrantRefused(AuthError):
    """The token endpoint refused the code or refresh token (``invalid_grant``)."""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: float  # seconds since the epoch (time.time)


class FileTokenStore:
    """Tokens as JSON in a file only its owner can read; written to a temporary name and renamed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return f"file:{self.path}"

    def load(self) -> Tokens | None:
        if not self.path.is_file():
            return None
        try:
            return Tokens(**json.loads(self.path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise AuthError(f"token store {self}: unreadable ({type(exc).__name__}); run `ledgerflow auth` again") \
                from None

    def save(self, tokens: Tokens) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.part")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(asdict(tokens), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


class PrefectSecretStore:
    """Tokens in a Prefect Secret block (JSON), so deployments keep them in Prefect's database."""

    def __init__(self, block: str) -> None:
        self.block = block

    def __str__(self) -> str:
        return f"prefect:{self.block}"

    def load(self) -> Tokens | None:
        from prefect.blocks.system import Secret

        try:
            value = Secret.load(self.block).get()
        except ValueError:  # no such block yet
            return None
        return Tokens(**(json.loads(value) if isinstance(value, str) else value))

    def save(self, tokens: Tokens) -> None:
        from prefect.blocks.system import Secret

        Secret(value=json.dumps(asdict(tokens))).save(self.block, overwrite=True)


def token_store(spec: str, base: Path) -> FileTokenStore | PrefectSecretStore:
    """``file:<path>`` (relative to ``base``) or ``prefect:<block-name>``."""
    kind, _, where = spec.partition(":")
    if kind == "file" and where:
        path = Path(os.path.expanduser(where))
        return FileTokenStore(path if path.is_absolute() else base / path)
    if kind == "prefect" and where:
        return PrefectSecretStore(where)
    raise AuthError(f"token_store {spec!r}: expected file:<path> or prefect:<secret-block-name>")


class OAuthSession:
    """Access tokens for one organisation of one system, refreshed a minute before they expire."""

    def __init__(self, system: str, store, *, token_url: str, client_id: str, client_secret: str,
                 timeout: float = 30.0, clock: Callable[[], float] = time.time) -> None:  # not money: seconds
        self.system, self.store, self.token_url, self.client_id = system, store, token_url, client_id
        self._client = (client_id, client_secret)
        self.timeout, self.clock = timeout, clock
        self._lock = threading.Lock()
        self._tokens: Tokens | None = None

    def access_token(self) -> str:
        with self._lock:
            if self._tokens is None:
                self._tokens = self.store.load()
                if self._tokens is None:
                    raise AuthError(f"{self.system}: no tokens in {self.store}; run `ledgerflow auth {self.system}` "
                                    "once to connect the organisation (README, Posting to accounting APIs)")
            if self._tokens.expires_at - 60 <= self.clock():
                self._refresh_locked()
            return self._tokens.access_token

    def refresh(self, rejected: str | None = None) -> None:
        """Refresh now (the server refused ``rejected``); a no-op when another thread already did."""
        with self._lock:
            if self._tokens is None or rejected is None or self._tokens.access_token == rejected:
                self._tokens = self._tokens or self.store.load()
                self._refresh_locked()

    def _refresh_locked(self) -> None:
        if self._tokens is None:
            raise AuthError(f"{self.system}: no tokens in {self.store}; run `ledgerflow auth {self.system}`")
        try:
            self._tokens = self._grant({"grant_type": "refresh_token", "refresh_token": self._tokens.refresh_token})
        except GrantRefused:
            # Another process (a close, a manual post) may have rotated the token since we read it:
            # take the pair it stored, refreshing it in turn if it is about to expire.
            stored = self.store.load()
            if stored is None or stored.refresh_token == self._tokens.refresh_token:
                raise
            self._tokens = stored
            if stored.expires_at - 60 <= self.clock():
                self._tokens = self._grant({"grant_type": "refresh_token", "refresh_token": stored.refresh_token})

    def exchange_code(self, code: str, redirect_uri: str) -> Tokens:
        """The bootstrap: the code the user's browser brought back, for the first token pair."""
        with self._lock:
            self._tokens = self._grant({"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": redirect_uri})
            return self._tokens

    def _grant(self, form: dict[str, str]) -> Tokens:
        started = time.perf_counter()
        try:
            response = httpx.post(self.token_url, data=form, auth=self._client, timeout=self.timeout,
                                  headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise AuthError(f"{self.system}: token endpoint {self.token_url} unreachable ({type(exc).__name__})") \
                from None
        http_audit.record("POST", self.token_url, {"Content-Type": "application/x-www-form-urlencoded"},
                          None, response.status_code, (time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            try:
                reason = response.json().get("error", "")
            except ValueError:
                reason = ""
            if reason == "invalid_grant":
                raise GrantRefused(f"{self.system}: token endpoint answered HTTP {response.status_code} {reason} "
                                   "(the refresh token was used or revoked: run `ledgerflow auth` again)")
            raise AuthError(f"{self.system}: token endpoint answered HTTP {response.status_code} {reason}")
        try:
            body = response.json()
            lifetime = float(body.get("expires_in", 1800))  # not money: seconds
            tokens = Tokens(body["access_token"], body["refresh_token"], self.clock() + lifetime)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AuthError(f"{self.system}: token endpoint {self.token_url} answered 200 without a token pair") \
                from None
        self.store.save(tokens)  # before use: a rotated refresh token must never be lost
        return tokens


def authorization_url(authorize_url: str, *, client_id: str, redirect_uri: str, scope: str,
                      state: str | None = None) -> tuple[str, str]:
    """The URL to open in a browser to connect an organisation, and the ``state`` to check on return."""
    state = state or secrets.token_urlsafe(16)
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                       "scope": scope, "state": state})
    return f"{authorize_url}?{query}", state
