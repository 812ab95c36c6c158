"""A tenant's ``[notify]`` table: where reconciliation alerts (and failed runs) are sent.

Secrets never live in the tenant file, which is meant to be committed and reviewed: the file
names the environment variables that hold them (``*_env`` keys). That covers webhook URLs
that *are* their own credential (Slack, Teams and Discord incoming webhooks carry the token in
the path), HMAC keys and SMTP passwords.
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_SMTP_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# deliberately simple: catches typos and pasted display names, not every RFC 5322 oddity
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_SECRET_QUERY = re.compile(r"token|secret|password|passwd|api[-_]?key|signature|^(key|sig|code|auth)$", re.I)
# hosts whose webhook URLs carry their token in the path: such a URL is a credential
_TOKEN_IN_PATH = (("hooks.slack.com", "/services/"), ("webhook.office.com", "/"), ("outlook.office.com", "/webhook"),
                  ("discord.com", "/api/webhooks/"), ("discordapp.com", "/api/webhooks/"))
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def valid_address(value: str) -> bool:
    """``alerts@example.org`` or ``Ledgerflow <alerts@example.org>``."""
    name, address = parseaddr(value)
    return bool(address) and _ADDRESS.match(address) is not None


def check_webhook_url(url: str) -> str | None:
    """Why ``url`` cannot be a webhook target, or None. Shared with the sender, which checks URLs
    read from environment variables the same way."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def _secret_in_url(url: str) -> str | None:
    """Why ``url`` holds a credential (and so belongs in an environment variable), or None."""
    parts = urlsplit(url)
    if parts.password is not None or parts.username:
        return "holds a user name or password"
    if any(_SECRET_QUERY.search(key) for key, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return "holds a token in its query string"
    host = (parts.hostname or "").lower()
    for suffix, path in _TOKEN_IN_PATH:
        if (host == suffix or host.endswith("." + suffix)) and parts.path.startswith(path):
            return f"is a {suffix} webhook, whose path is its token"
    return None


class NotifySettings(BaseModel):
    """Channels an alert goes to; every configured channel gets every alert."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: str | None = None
    webhook_url_env: str | None = None
    webhook_secret_env: str | None = None
    webhook_format: Literal["json", "slack"] = "json"
    email_to: list[str] = []
    email_from: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_user_env: str | None = None
    smtp_password_env: str | None = None
    timeout_seconds: float = Field(default=10, gt=0, le=300)

    @model_validator(mode="before")
    @classmethod
    def _default_port(cls, data: Any) -> Any:
        """The port follows the security mode unless given: 587 starttls, 465 ssl, 25 none."""
        if isinstance(data, dict) and data.get("smtp_port") is None:
            port = DEFAULT_SMTP_PORTS.get(data.get("smtp_security", "starttls"))
            if port is not None:
                data = {**data, "smtp_port": port}
        return data

    @field_validator("webhook_url")
    @classmethod
    def _plain_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        problem = check_webhook_url(value)
        if problem:
            raise ValueError(problem)
        secret = _secret_in_url(value)
        if secret:
            raise ValueError(f"this URL {secret}: put it in an environment variable and name that variable in "
                             "webhook_url_env instead (secrets never go in the tenant file)")
        return value

    @field_validator("webhook_url_env", "webhook_secret_env", "smtp_user_env", "smtp_password_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError("must be the NAME of an environment variable (letters, digits and _, e.g. "
                             "LEDGERFLOW_SLACK_URL), not the secret itself")
        return value

    @field_validator("email_to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if not valid_address(address)]
        if bad:
            raise ValueError(f"not e-mail addresses: {', '.join(map(repr, bad))}")
        if len(set(value)) != len(value):
            raise ValueError("lists the same address twice")
        return value

    @field_validator("email_from")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is not None and not valid_address(value):
            raise ValueError("is not an e-mail address (e.g. alerts@example.org or 'Ledgerflow <alerts@example.org>')")
        return value

    @field_validator("smtp_host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "://" in value or "/" in value):
            raise ValueError("must be a host name or address, without scheme or path (e.g. smtp.example.org)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NotifySettings:
        """Cross-key rules: a half-configured channel would fail at 3 a.m., so refuse it at load time."""
        if self.webhook_url and self.webhook_url_env:
            raise ValueError("webhook_url and webhook_url_env are exclusive: give the URL or the name of the "
                             "environment variable that holds it, not both")
        if (self.webhook_secret_env or self.webhook_format != "json") and not self.webhook_configured:
            raise ValueError("webhook_secret_env/webhook_format need webhook_url or webhook_url_env")
        if self.email_to:
            missing = [key for key in ("email_from", "smtp_host") if getattr(self, key) is None]
            if missing:
                raise ValueError(f"email_to needs {' and '.join(missing)}")
        if bool(self.smtp_user_env) != bool(self.smtp_password_env):
            raise ValueError("smtp_user_env and smtp_password_env go together: give both or neither")
        if (self.smtp_password_env and self.smtp_security == "none"
                and (self.smtp_host or "").lower() not in _LOCAL_HOSTS):
            raise ValueError("smtp_security = 'none' with a password would send it in clear over the network: "
                             "use 'starttls' or 'ssl'")
        return self

    @property
    def webhook_configured(self) -> bool:
        return bool(self.webhook_url or self.webhook_url_env)

    @property
    def email_configured(self) -> bool:
        return bool(self.email_to)

    @property
    def enabled(self) -> bool:
        """True when at least one channel is configured: callers skip building an alert otherwise."""
        return self.webhook_configured or self.email_configured
