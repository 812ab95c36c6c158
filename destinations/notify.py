"""Send an alert to a tenant's webhook and/or e-mail recipients (the ``[notify]`` table).

An alert is a side channel of a run, never its purpose: a delivery that fails is returned as a
``Delivery`` with ``ok=False`` (for the run's artifact and logs) instead of raising, and each channel
is tried on its own so a broken webhook does not swallow the e-mail. Only a configuration problem
(a named environment variable that is not set) raises, before anything is sent, since retrying
cannot fix it. Secrets (tokenised URLs, HMAC keys, SMTP passwords) never reach a return value,
a log line or the HTTP audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from schemas.notify import NotifySettings, check_webhook_url
from sources import http_audit

MAX_WAIT_SECONDS = 120.0  # a Retry-After beyond this is not worth holding a run for
SLACK_TEXT_LIMIT = 3900  # Slack shows "Show more" and truncates hard at 40k; keep alerts readable
USER_AGENT = "ledgerflow"
SIGNATURE_HEADER = "X-Ledgerflow-Signature"
TIMESTAMP_HEADER = "X-Ledgerflow-Timestamp"
ALERT_ID_HEADER = "X-Ledgerflow-Alert-Id"

log = logging.getLogger(__name__)


class NotifyConfigError(ValueError):
    """The ``[notify]`` settings cannot be used as they stand (e.g. a named variable is unset)."""


@dataclass(frozen=True)
class Alert:
    tenant: str
    subject: str
    text: str  # plain text / markdown, for people
    payload: dict  # JSON-serialisable details, for machines (counts, lists of ids)
    severity: Literal["info", "warning", "error"] = "warning"


@dataclass(frozen=True)
class Delivery:
    channel: str  # "webhook" or "email"
    target: str  # redacted: URL without query or token, or the recipient list
    ok: bool
    detail: str


@dataclass(frozen=True)
class _Attempt:
    """The outcome of one try: whether trying again can help, and how long the server asked to wait."""

    ok: bool
    detail: str
    retry: bool = False
    wait: float | None = None  # not money: seconds


@dataclass(frozen=True)
class _Webhook:
    url: str  # the real URL, possibly a credential
    log_url: str  # what the audit log may see
    target: str  # what the Delivery may show
    key: bytes | None  # HMAC key
    secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class _Mail:
    sender: str
    recipients: tuple[str, ...]  # bare addresses, for RCPT TO
    credentials: tuple[str, str] | None = field(default=None, repr=False)
    user_env: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)


def send_alert(settings: NotifySettings, alert: Alert, *, env: Mapping[str, str] | None = None,
               sleep: Callable[[float], None] = time.sleep, attempts: int = 4) -> list[Delivery]:
    """Deliver ``alert`` to every configured channel; one ``Delivery`` per channel, in the order
    webhook, e-mail. Raises ``NotifyConfigError`` (naming the variable, never its value) before
    sending anything when the settings cannot work; never raises for a failed delivery."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    env = os.environ if env is None else env
    hook = _webhook_of(settings, env) if settings.webhook_configured else None
    mail = _mail_of(settings, env) if settings.email_configured else None
    deliveries = []
    if hook is not None:
        deliveries.append(_guarded("webhook", hook.target, hook.secrets,
                                   lambda: _send_webhook(settings, hook, alert, sleep, attempts)))
    if mail is not None:
        deliveries.append(_guarded("email", ", ".join(settings.email_to), mail.secrets,
                                   lambda: _send_mail(settings, mail, alert, sleep, attempts)))
    return deliveries


def alert_id(alert: Alert) -> str:
    """A stable fingerprint of an alert (tenant, subject, payload): the same alert sent twice gets the
    same id, so receivers and mail clients can drop the duplicate."""
    canonical = json.dumps([alert.tenant, alert.subject, alert.payload], sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- configuration -----------------------------------------------------------------------------

def _env_value(env: Mapping[str, str], name: str, purpose: str) -> str:
    value = env.get(name)
    if not value:
        raise NotifyConfigError(f"[notify] {purpose}: environment variable {name} is not set (or is empty)")
    return value


def _webhook_of(settings: NotifySettings, env: Mapping[str, str]) -> _Webhook:
    """Resolve the URL and key. A URL from the environment is treated as a credential as a whole:
    only scheme and host are ever shown."""
    secrets: list[str] = []
    if settings.webhook_url_env:
        url = _env_value(env, settings.webhook_url_env, "webhook_url_env")
        problem = check_webhook_url(url)
        if problem:
            raise NotifyConfigError(f"[notify] webhook_url_env: the value of {settings.webhook_url_env} {problem}")
        parts = urlsplit(url)
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        log_url = f"{parts.scheme}://{host}/…"
        target = f"{log_url} (${settings.webhook_url_env})"
        secrets += [url, parts.path, parts.query, parts.password or "", parts.username or ""]
    else:
        assert settings.webhook_url is not None
        url = settings.webhook_url
        parts = urlsplit(url)
        log_url = url
        target = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
    key = None
    if settings.webhook_secret_env:
        secret = _env_value(env, settings.webhook_secret_env, "webhook_secret_env")
        key = secret.encode("utf-8")
        secrets.append(secret)
    return _Webhook(url, log_url, target, key, tuple(s for s in secrets if len(s) > 3))


def _mail_of(settings: NotifySettings, env: Mapping[str, str]) -> _Mail:
    assert settings.email_from is not None and settings.smtp_host is not None  # the schema guarantees it
    credentials = None
    secrets: tuple[str, ...] = ()
    if settings.smtp_user_env and settings.smtp_password_env:
        user = _env_value(env, settings.smtp_user_env, "smtp_user_env")
        password = _env_value(env, settings.smtp_password_env, "smtp_password_env")
        credentials = (user, password)
        secrets = (password,) if len(password) > 3 else ()
    return _Mail(parseaddr(settings.email_from)[1], tuple(parseaddr(a)[1] for a in settings.email_to),
                 credentials, settings.smtp_user_env, secrets)


# --- retries and scrubbing ---------------------------------------------------------------------

def _guarded(channel: str, target: str, secrets: Iterable[str], send: Callable[[], tuple[bool, str]]) -> Delivery:
    """Run one channel; any surprise becomes a failed Delivery so the other channels still go out."""
    try:
        ok, detail = send()
    except Exception as exc:  # noqa: BLE001 - a bug here must not cost the other channel its alert
        ok, detail = False, f"unexpected {type(exc).__name__}: {exc}"
    detail = _scrub(detail, secrets)
    log.debug("alert via %s to %s: %s", channel, target, detail)  # the caller logs the Delivery
    return Delivery(channel, target, ok, detail)


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """Defence in depth: exception texts and response bodies may echo a URL or a key."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _with_retries(attempt: Callable[[], _Attempt], *, what: str, attempts: int, sleep: Callable[[float], None],
                  secrets: tuple[str, ...] = ()) -> tuple[bool, str]:
    """Try up to ``attempts`` times, waiting 1, 2, 4 … s (or what the server asked) between tries."""
    for number in range(1, attempts + 1):
        result = attempt()
        result = replace(result, detail=_scrub(result.detail, secrets))
        if result.ok:
            return True, result.detail + (f" after {number} attempts" if number > 1 else "")
        if not result.retry:
            return False, f"{result.detail} (not retried)"
        if number == attempts:
            break
        delay = result.wait if result.wait is not None else float(2 ** (number - 1))  # not money: seconds
        if delay > MAX_WAIT_SECONDS:
            return False, f"{result.detail}; the server asked to wait {delay:g} s, more than {MAX_WAIT_SECONDS:g} s"
        log.info("%s attempt %d of %d failed (%s); retrying in %g s", what, number, attempts, result.detail, delay)
        sleep(delay)
    return False, f"gave up after {attempts} attempts: {result.detail}"


# --- webhook -----------------------------------------------------------------------------------

def webhook_body(settings: NotifySettings, alert: Alert) -> bytes:
    """The JSON document posted: ours, or Slack/Teams' ``{"text": …}``."""
    if settings.webhook_format == "slack":
        text = f"*{alert.subject}* ({alert.severity}, {alert.tenant})\n{alert.text}"
        if len(text) > SLACK_TEXT_LIMIT:
            text = text[:SLACK_TEXT_LIMIT - 20] + "\n… (truncated)"
        document: dict = {"text": text}
    else:
        document = {"tenant": alert.tenant, "severity": alert.severity, "subject": alert.subject,
                    "text": alert.text, "payload": alert.payload}
    return json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")


def sign(key: bytes, body: bytes) -> str:
    """The signature header's value: receivers recompute it over the raw body with the shared key."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _send_webhook(settings: NotifySettings, hook: _Webhook, alert: Alert, sleep: Callable[[float], None],
                  attempts: int) -> tuple[bool, str]:
    body = webhook_body(settings, alert)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, ALERT_ID_HEADER: alert_id(alert)}
    if hook.key is not None:
        headers[SIGNATURE_HEADER] = sign(hook.key, body)
    with _scrubbed_logs(hook.secrets), httpx.Client(timeout=settings.timeout_seconds, follow_redirects=False) as client:
        return _with_retries(lambda: _post(client, hook, headers, body, settings.timeout_seconds),
                             what="webhook", attempts=attempts, sleep=sleep, secrets=hook.secrets)


class _ScrubFilter(logging.Filter):
    """httpx logs every request's full URL at INFO ("HTTP Request: POST https://hooks…/T0/B0/token"):
    rewrite such records before any handler (Prefect's included) sees them."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = _scrub(message, self.secrets)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


@contextmanager
def _scrubbed_logs(secrets: tuple[str, ...]) -> Iterator[None]:
    if not secrets:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    scrub = _ScrubFilter(secrets)
    for logger in loggers:
        logger.addFilter(scrub)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(scrub)


def _post(client: httpx.Client, hook: _Webhook, headers: dict[str, str], body: bytes,
          timeout: float) -> _Attempt:  # not money: seconds
    headers = {**headers, TIMESTAMP_HEADER: str(int(time.time()))}
    started = time.perf_counter()
    try:
        response = client.post(hook.url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        _audit(hook, headers, body, None, started)
        return _Attempt(False, f"no answer within {timeout:g} s ({type(exc).__name__})", retry=True)
    except httpx.TransportError as exc:  # refused, reset, DNS, TLS
        _audit(hook, headers, body, None, started)
        return _Attempt(False, f"connection failed: {type(exc).__name__}: {exc}", retry=True)
    _audit(hook, headers, body, response.status_code, started)
    status = response.status_code
    if 200 <= status < 300:
        return _Attempt(True, f"delivered (HTTP {status})")
    excerpt = re.sub(r"\s+", " ", response.text).strip()[:200]
    detail = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
    if status == 429 or status >= 500:
        wait = http_audit.retry_after_seconds(response.headers.get("Retry-After"))
        return _Attempt(False, detail, retry=True, wait=wait)
    return _Attempt(False, detail)


def _audit(hook: _Webhook, headers: dict[str, str], body: bytes, status: int | None,
           started: float) -> None:  # not money: a clock reading
    """INTERFACES §6; the signature is withheld too: with the body beside it, it invites guessing the key."""
    shown = {k: ("***" if k == SIGNATURE_HEADER else v) for k, v in headers.items()}
    http_audit.record("POST", hook.log_url, shown, body, status, (time.perf_counter() - started) * 1000)


# --- e-mail ------------------------------------------------------------------------------------

def email_message(settings: NotifySettings, alert: Alert, *, now: datetime | None = None) -> EmailMessage:
    """Plain text for people, the payload as ``alert.json`` for tools; a Message-ID derived from the
    alert so a resent alert threads with (or is dropped as) the first."""
    assert settings.email_from is not None
    domain = parseaddr(settings.email_from)[1].rpartition("@")[2]
    message = EmailMessage()
    message["Subject"] = f"[ledgerflow {alert.tenant}] {alert.subject}"
    message["From"] = settings.email_from
    message["To"] = ", ".join(settings.email_to)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = f"<ledgerflow.{alert_id(alert)[:40]}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    message["X-Ledgerflow-Severity"] = alert.severity
    if alert.severity == "error":
        message["Importance"] = "high"
    message.set_content(alert.text)
    payload = json.dumps(alert.payload, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    message.add_attachment(payload, maintype="application", subtype="json", filename="alert.json")
    return message


def _send_mail(settings: NotifySettings, mail: _Mail, alert: Alert, sleep: Callable[[float], None],
               attempts: int) -> tuple[bool, str]:
    return _send_message(settings, mail, email_message(settings, alert), sleep, attempts)


def _send_message(settings: NotifySettings, mail: _Mail, message: EmailMessage, sleep: Callable[[float], None],
                  attempts: int) -> tuple[bool, str]:
    context = ssl.create_default_context()  # honours SSL_CERT_FILE for a private CA
    return _with_retries(lambda: _smtp_attempt(settings, mail, message, context), what="e-mail",
                         attempts=attempts, sleep=sleep, secrets=mail.secrets)


def send_email(settings: NotifySettings, message: EmailMessage, *, env: Mapping[str, str] | None = None,
               sleep: Callable[[float], None] = time.sleep, attempts: int = 4) -> Delivery:
    """Send a ready message (e.g. export files as attachments) to ``settings.email_to`` over the same
    SMTP path as alerts: STARTTLS or SSL, login from environment variables, retries on 4xx and network
    trouble. Raises ``NotifyConfigError`` when the settings cannot work; never for a failed delivery."""
    mail = _mail_of(settings, os.environ if env is None else env)
    return _guarded("email", ", ".join(settings.email_to), mail.secrets,
                    lambda: _send_message(settings, mail, message, sleep, attempts))


def _open_smtp(settings: NotifySettings, context: ssl.SSLContext) -> smtplib.SMTP:
    host, port, timeout = settings.smtp_host, settings.smtp_port or 0, settings.timeout_seconds
    if settings.smtp_security == "ssl":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    smtp = smtplib.SMTP(host, port, timeout=timeout)
    if settings.smtp_security == "starttls":
        try:
            smtp.starttls(context=context)
        except BaseException:
            smtp.close()
            raise
    return smtp


def _smtp_attempt(settings: NotifySettings, mail: _Mail, message: EmailMessage,
                  context: ssl.SSLContext) -> _Attempt:
    """One SMTP session; 4xx replies and network trouble are worth another try, 5xx are not."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        smtp = _open_smtp(settings, context)
    except smtplib.SMTPNotSupportedError:
        return _Attempt(False, f"{where} does not offer STARTTLS: set smtp_security to 'ssl' or 'none'")
    except ssl.SSLCertVerificationError as exc:
        return _Attempt(False, f"{where}: TLS certificate not trusted: {exc.verify_message}")
    except smtplib.SMTPResponseException as exc:
        return _reply_attempt(f"{where} refused the connection", exc.smtp_code, exc.smtp_error)
    except (OSError, smtplib.SMTPException) as exc:
        return _Attempt(False, f"could not connect to {where}: {exc or type(exc).__name__}", retry=True)
    try:
        if mail.credentials:
            smtp.login(*mail.credentials)
        refused = smtp.send_message(message, from_addr=mail.sender, to_addrs=list(mail.recipients))
    except smtplib.SMTPAuthenticationError as exc:
        return _Attempt(False, f"{where} refused the login of the user in ${mail.user_env}: "
                               f"{exc.smtp_code} {_text(exc.smtp_error)}")
    except smtplib.SMTPNotSupportedError as exc:  # e.g. no AUTH offered: asking again will not change that
        return _Attempt(False, f"{where}: {exc}")
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        return _Attempt(False, f"{where} refused every recipient: {_refusals(exc.recipients)}",
                        retry=all(400 <= code < 500 for code in codes))
    except smtplib.SMTPResponseException as exc:
        return _reply_attempt(f"{where} answered", exc.smtp_code, exc.smtp_error)
    except (OSError, smtplib.SMTPException) as exc:
        return _Attempt(False, f"connection to {where} failed: {exc or type(exc).__name__}", retry=True)
    finally:
        _close(smtp)
    if refused:  # some accepted: a retry would send them a duplicate, so report instead
        return _Attempt(False, f"sent, but {where} refused {_refusals(refused)}")
    return _Attempt(True, f"sent via {where} to {len(mail.recipients)} recipient(s)")


def _reply_attempt(what: str, code: int, error: bytes | str) -> _Attempt:
    return _Attempt(False, f"{what} {code} {_text(error)}", retry=400 <= code < 500)


def _refusals(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{address} ({code} {_text(error)})" for address, (code, error) in refused.items())


def _text(error: bytes | str) -> str:
    return error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)


def _close(smtp: smtplib.SMTP) -> None:
    """QUIT politely; a server that hangs up first is no failure once the message is accepted."""
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
