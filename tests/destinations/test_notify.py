"""Alerts over real parts: a Starlette webhook receiver served by uvicorn and an aiosmtpd SMTP server,
both on 127.0.0.1 on free ports, one of each per module. Back-off goes through a recording sleeper,
so retries cost no wall time."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from destinations.notify import Alert, Delivery, NotifyConfigError, alert_id, email_message, send_alert
from schemas.notify import NotifySettings

KEY = "hmac-key-Zq8xW3vN7"  # planted secrets: must show up nowhere but on the wire
TOKEN = "tok3n-Pp9Lk2Mm4Qr"
PASSWORD = "pa55word-Hh6Jj1Vv"

ALERT = Alert(tenant="demo", subject="3 reconciliation problems need a look",
              text="Reconciliation of Demo Hotel:\n- stale_item: 1\n    I7: open for 45 days",
              payload={"counts": {"stale_item": 1, "write_off": 2}, "ids": ["I7", "B3", "B4"]}, severity="warning")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sleeper:
    """Stands in for time.sleep: records the back-off instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


# --- the webhook receiver ----------------------------------------------------------------------

@dataclass
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What the endpoint got, and the failures it was told to answer first: (status, headers)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)


@pytest.fixture(scope="module")
def receiver_server():
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    state = Receiver()

    async def hook(request: Request):
        state.received.append(Received(request.url.path, request.url.query, dict(request.headers),
                                       await request.body()))
        if state.failures:
            status, headers = state.failures.pop(0)
            # echo the path and query, as some services do: the sender must scrub them from its details
            return PlainTextResponse(f"failing on purpose at {request.url.path}?{request.url.query}",
                                     status_code=status, headers=headers)
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="error",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    state.url = f"http://127.0.0.1:{server.config.port}"
    yield state
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.received.clear()
    receiver_server.failures.clear()
    return receiver_server


# --- the SMTP server ---------------------------------------------------------------------------

@dataclass
class Inbox:
    """aiosmtpd handler: keeps accepted messages; answers the queued replies to DATA first."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.replies:
            return self.replies.pop(0)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def parsed(self, index: int = -1) -> email.message.EmailMessage:
        return email.message_from_bytes(self.messages[index][2], policy=email.policy.default)


def start_smtp(handler: Inbox, **kwargs):
    from aiosmtpd.controller import Controller

    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=5, **kwargs)
    controller.start()
    return controller


@pytest.fixture(scope="module")
def smtp_server():
    inbox = Inbox()
    controller = start_smtp(inbox)
    yield inbox, controller.port
    controller.stop()


@pytest.fixture
def smtp(smtp_server) -> tuple[Inbox, int]:
    inbox, port = smtp_server
    inbox.messages.clear()
    inbox.replies.clear()
    return inbox, port


def mail_settings(port: int, **changes) -> NotifySettings:
    return NotifySettings(**{"email_to": ["ops@example.org", "Finance <finance@example.org>"],
                             "email_from": "Ledgerflow <alerts@example.org>", "smtp_host": "127.0.0.1",
                             "smtp_port": port, "smtp_security": "none", "timeout_seconds": 5, **changes})


# --- webhook -----------------------------------------------------------------------------------

def test_webhook_delivers_json_with_a_valid_signature(receiver):
    settings = NotifySettings(webhook_url=f"{receiver.url}/hooks/ledgerflow", webhook_secret_env="HOOK_KEY")
    sleeper = Sleeper()
    (delivery,) = send_alert(settings, ALERT, env={"HOOK_KEY": KEY}, sleep=sleeper)
    assert delivery == Delivery("webhook", f"{receiver.url}/hooks/ledgerflow", True, "delivered (HTTP 200)")
    (request,) = receiver.received
    assert request.path == "/hooks/ledgerflow" and sleeper.delays == []
    assert request.json() == {"tenant": "demo", "severity": "warning", "subject": ALERT.subject, "text": ALERT.text,
                              "payload": ALERT.payload}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "ledgerflow"
    expected = hmac.new(KEY.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-ledgerflow-signature"], f"sha256={expected}")
    assert abs(int(request.headers["x-ledgerflow-timestamp"]) - time.time()) < 60
    assert request.headers["x-ledgerflow-alert-id"] == alert_id(ALERT)


def test_webhook_without_a_key_is_not_signed_and_slack_gets_text(receiver):
    settings = NotifySettings(webhook_url=f"{receiver.url}/slack", webhook_format="slack")
    (delivery,) = send_alert(settings, ALERT, env={}, sleep=Sleeper())
    assert delivery.ok
    (request,) = receiver.received
    assert "x-ledgerflow-signature" not in request.headers
    (text,) = request.json().values()
    assert text.startswith(f"*{ALERT.subject}* (warning, demo)\n") and "I7: open for 45 days" in text


def test_webhook_is_retried_through_500_and_429_honouring_retry_after(receiver):
    receiver.failures += [(500, {}), (429, {"Retry-After": "7"}), (503, {})]
    sleeper = Sleeper()
    (delivery,) = send_alert(NotifySettings(webhook_url=f"{receiver.url}/hook"), ALERT, env={}, sleep=sleeper)
    assert delivery.ok and delivery.detail == "delivered (HTTP 200) after 4 attempts"
    assert sleeper.delays == [1, 7, 4]  # back-off 1, then the server's 7, then back-off 4
    assert len(receiver.received) == 4
    assert len({r.body for r in receiver.received}) == 1  # the same alert each time


def test_webhook_gives_up_after_the_attempts_without_raising(receiver):
    receiver.failures += [(502, {})] * 5
    sleeper = Sleeper()
    (delivery,) = send_alert(NotifySettings(webhook_url=f"{receiver.url}/hook"), ALERT, env={}, sleep=sleeper,
                             attempts=3)
    assert not delivery.ok and delivery.detail.startswith("gave up after 3 attempts: HTTP 502: failing on purpose")
    assert sleeper.delays == [1, 2] and len(receiver.received) == 3


@pytest.mark.parametrize("status", [400, 404])
def test_a_client_error_is_not_retried(receiver, status):
    receiver.failures.append((status, {}))
    sleeper = Sleeper()
    (delivery,) = send_alert(NotifySettings(webhook_url=f"{receiver.url}/hook"), ALERT, env={}, sleep=sleeper)
    assert not delivery.ok and delivery.detail.startswith(f"HTTP {status}: ") and "(not retried)" in delivery.detail
    assert sleeper.delays == [] and len(receiver.received) == 1


def test_a_retry_after_too_far_away_is_not_waited_for(receiver):
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")  # the HTTP-date form
    receiver.failures.append((429, {"Retry-After": later}))
    sleeper = Sleeper()
    (delivery,) = send_alert(NotifySettings(webhook_url=f"{receiver.url}/hook"), ALERT, env={}, sleep=sleeper)
    assert not delivery.ok and "HTTP 429" in delivery.detail and "more than 120 s" in delivery.detail
    assert sleeper.delays == [] and len(receiver.received) == 1


# --- e-mail ------------------------------------------------------------------------------------

def test_email_reaches_every_recipient_with_subject_body_and_json_attachment(smtp):
    inbox, port = smtp
    (delivery,) = send_alert(mail_settings(port), ALERT, env={}, sleep=Sleeper())
    assert delivery == Delivery("email", "ops@example.org, Finance <finance@example.org>", True,
                                f"sent via 127.0.0.1:{port} to 2 recipient(s)")
    ((sender, recipients, _),) = inbox.messages
    assert sender == "alerts@example.org" and recipients == ["ops@example.org", "finance@example.org"]
    message = inbox.parsed()
    assert message["Subject"] == f"[ledgerflow demo] {ALERT.subject}"
    assert message["To"] == "ops@example.org, Finance <finance@example.org>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert abs(message["Date"].datetime - datetime.now(UTC)) < timedelta(minutes=1)
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip("\n") == ALERT.text
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "alert.json" and attachment.get_content_type() == "application/json"
    assert json.loads(attachment.get_content()) == ALERT.payload
    # the same alert again: the same Message-ID, so mail clients can drop the duplicate
    send_alert(mail_settings(port), ALERT, env={}, sleep=Sleeper())
    assert inbox.parsed(1)["Message-ID"] == message["Message-ID"]
    assert message["Message-ID"].startswith("<ledgerflow.") and message["Message-ID"].endswith("@example.org>")
    other = Alert(**{**ALERT.__dict__, "payload": {**ALERT.payload, "ids": ["I7"]}})
    assert email_message(mail_settings(port), other)["Message-ID"] != message["Message-ID"]


def test_email_is_retried_on_a_4xx_reply_but_not_on_a_5xx(smtp):
    inbox, port = smtp
    inbox.replies += ["451 4.3.0 try again later", "421 4.7.0 busy"]
    sleeper = Sleeper()
    (delivery,) = send_alert(mail_settings(port), ALERT, env={}, sleep=sleeper)
    assert delivery.ok and delivery.detail.endswith("after 3 attempts") and sleeper.delays == [1, 2]
    assert len(inbox.messages) == 1

    inbox.replies.append("554 5.7.1 rejected as spam")
    sleeper = Sleeper()
    (delivery,) = send_alert(mail_settings(port), ALERT, env={}, sleep=sleeper)
    assert not delivery.ok and "554 5.7.1 rejected as spam (not retried)" in delivery.detail
    assert sleeper.delays == [] and len(inbox.messages) == 1


def test_smtp_down_is_reported_while_the_webhook_still_goes_out(receiver):
    dead = free_port()  # nothing listens there
    settings = NotifySettings(webhook_url=f"{receiver.url}/hook", email_to=["ops@example.org"],
                              email_from="alerts@example.org", smtp_host="127.0.0.1", smtp_port=dead,
                              smtp_security="none", timeout_seconds=2)
    sleeper = Sleeper()
    webhook, mail = send_alert(settings, ALERT, env={}, sleep=sleeper)
    assert webhook.ok and len(receiver.received) == 1
    assert mail.channel == "email" and not mail.ok
    assert mail.detail.startswith(f"gave up after 4 attempts: could not connect to 127.0.0.1:{dead}: ")
    assert "refused" in mail.detail.lower() and sleeper.delays == [1, 2, 4]


def test_webhook_down_is_reported_while_the_email_still_goes_out(smtp):
    inbox, port = smtp
    settings = mail_settings(port, webhook_url=f"http://127.0.0.1:{free_port()}/hook")
    webhook, mail = send_alert(settings, ALERT, env={}, sleep=Sleeper(), attempts=2)
    assert not webhook.ok and webhook.detail.startswith("gave up after 2 attempts: connection failed: ConnectError")
    assert mail.ok and len(inbox.messages) == 1


# --- secrets and the audit log -----------------------------------------------------------------

def test_audit_log_records_every_attempt_and_no_secret(receiver, smtp, tmp_path, monkeypatch, caplog):
    caplog.set_level("DEBUG")
    audit = tmp_path / "http.jsonl"
    monkeypatch.setenv("LEDGERFLOW_HTTP_LOG", str(audit))
    inbox, port = smtp
    receiver.failures += [(500, {}), (400, {})]  # both echo the tokenised path back
    env = {"SLACK_URL": f"{receiver.url}/services/T0/{TOKEN}?code={TOKEN}", "HOOK_KEY": KEY}
    settings = mail_settings(port, webhook_url_env="SLACK_URL", webhook_secret_env="HOOK_KEY")
    deliveries = send_alert(settings, ALERT, env=env, sleep=Sleeper())
    webhook, mail = deliveries
    assert not webhook.ok and "HTTP 400: failing on purpose at ***" in webhook.detail and mail.ok
    assert webhook.target == f"{receiver.url}/… ($SLACK_URL)"
    assert [r.path for r in receiver.received] == [f"/services/T0/{TOKEN}"] * 2  # the real URL was used

    entries = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    assert [(e["method"], e["url"], e["status"]) for e in entries] == [("POST", f"{receiver.url}/…", 500),
                                                                       ("POST", f"{receiver.url}/…", 400)]
    assert entries[0]["json"]["payload"] == ALERT.payload and entries[0]["headers"]["User-Agent"] == "ledgerflow"
    assert entries[0]["headers"]["X-Ledgerflow-Signature"] == "***"
    everything = audit.read_text(encoding="utf-8") + repr(deliveries) + caplog.text
    for secret in (KEY, TOKEN, "/services/T0"):
        assert secret not in everything


def test_a_token_query_in_a_plain_webhook_url_is_refused_and_other_queries_are_logged(receiver, tmp_path,
                                                                                       monkeypatch):
    with pytest.raises(ValidationError, match="webhook_url_env"):
        NotifySettings(webhook_url=f"{receiver.url}/hook?token={TOKEN}")
    audit = tmp_path / "http.jsonl"
    monkeypatch.setenv("LEDGERFLOW_HTTP_LOG", str(audit))
    (delivery,) = send_alert(NotifySettings(webhook_url=f"{receiver.url}/hook?channel=finance"), ALERT, env={},
                             sleep=Sleeper())
    assert delivery.ok and delivery.target == f"{receiver.url}/hook"
    assert json.loads(audit.read_text(encoding="utf-8"))["url"] == f"{receiver.url}/hook?channel=finance"


@pytest.mark.parametrize(("settings", "env", "named"), [
    ({"webhook_url_env": "SLACK_URL"}, {}, "SLACK_URL"),
    ({"webhook_url_env": "SLACK_URL"}, {"SLACK_URL": f"ftp://x/{TOKEN}"}, "SLACK_URL"),
    ({"webhook_url": "http://127.0.0.1:9/x", "webhook_secret_env": "HOOK_KEY"}, {}, "HOOK_KEY"),
    ({"smtp_user_env": "SMTP_USER", "smtp_password_env": "SMTP_PASSWORD"}, {"SMTP_USER": "u"}, "SMTP_PASSWORD"),
])
def test_an_unset_or_unusable_variable_is_a_config_error_raised_before_sending(receiver, smtp, settings, env, named):
    inbox, port = smtp
    with pytest.raises(NotifyConfigError, match=named) as raised:
        send_alert(mail_settings(port, **settings), ALERT, env=env, sleep=Sleeper())
    assert TOKEN not in str(raised.value)
    assert receiver.received == [] and inbox.messages == []  # nothing half-sent


# --- TLS and login -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (cryptography comes with our dependencies)."""
    import ipaddress

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def _authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"ledgerflow",
                                                                                          PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_login(certificate, security, monkeypatch):
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    # aiosmtpd counts only STARTTLS as TLS when it decides whether to offer AUTH
    tls = ({"tls_context": context, "require_starttls": True, "auth_require_tls": True} if security == "starttls"
           else {"ssl_context": context, "auth_require_tls": False})
    inbox = Inbox()
    controller = start_smtp(inbox, authenticator=_authenticator, **tls)
    try:
        settings = mail_settings(controller.port, smtp_security=security, smtp_user_env="SMTP_USER",
                                 smtp_password_env="SMTP_PASSWORD")
        env = {"SMTP_USER": "ledgerflow", "SMTP_PASSWORD": PASSWORD}
        sleeper = Sleeper()
        (untrusted,) = send_alert(settings, ALERT, env=env, sleep=sleeper)
        assert not untrusted.ok and "TLS certificate not trusted" in untrusted.detail and sleeper.delays == []

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # how an operator trusts a private CA
        (delivery,) = send_alert(settings, ALERT, env=env, sleep=Sleeper())
        assert delivery.ok, delivery.detail
        assert inbox.parsed()["Subject"] == f"[ledgerflow demo] {ALERT.subject}"

        (refused,) = send_alert(settings, ALERT, env={**env, "SMTP_PASSWORD": "wrong-" + PASSWORD}, sleep=sleeper)
        assert not refused.ok and "refused the login of the user in $SMTP_USER: 535" in refused.detail
        assert sleeper.delays == [] and PASSWORD not in repr([untrusted, delivery, refused])
    finally:
        controller.stop()


# --- configuration -----------------------------------------------------------------------------

def test_defaults_and_enabled():
    assert not NotifySettings().enabled
    assert NotifySettings(webhook_url="https://example.org/hook").enabled
    assert NotifySettings(webhook_url_env="SLACK_URL").enabled
    ports = {s: NotifySettings(email_to=["a@example.org"], email_from="b@example.org", smtp_host="mail.example.org",
                               smtp_security=s).smtp_port for s in ("starttls", "ssl", "none")}
    assert ports == {"starttls": 587, "ssl": 465, "none": 25}
    assert NotifySettings(smtp_host="mail.example.org", smtp_port=2525).smtp_port == 2525


@pytest.mark.parametrize(("settings", "message"), [
    ({"email_to": ["ops@example"], "email_from": "a@example.org", "smtp_host": "h"}, "not e-mail addresses: 'ops@"),
    ({"email_to": ["ops example.org"], "email_from": "a@example.org", "smtp_host": "h"}, "not e-mail addresses"),
    ({"email_to": ["ops@example.org"], "email_from": "alerts", "smtp_host": "h"}, "email_from\n.*not an e-mail"),
    ({"email_to": ["ops@example.org"], "email_from": "a@example.org"}, "email_to needs smtp_host"),
    ({"email_to": ["ops@example.org"]}, "email_to needs email_from and smtp_host"),
    ({"webhook_url": "https://example.org/h", "webhook_url_env": "URL"}, "webhook_url and webhook_url_env are excl"),
    ({"webhook_url": "example.org/hook"}, "http:// or https://"),
    ({"webhook_url": "https://hooks.slack.com/services/T0/B0/XyZ"}, "hooks.slack.com webhook.*webhook_url_env"),
    ({"webhook_url": "https://user:pw@example.org/h"}, "user name or password"),
    ({"webhook_url_env": "https://hooks.slack.com/services/T0/B0/XyZ"}, "NAME of an environment variable"),
    ({"webhook_secret_env": "KEY"}, "need webhook_url or webhook_url_env"),
    ({"smtp_user_env": "SMTP_USER"}, "give both or neither"),
    ({"smtp_host": "smtp://mail.example.org"}, "without scheme"),
    ({"smtp_host": "mail.example.org", "smtp_security": "none", "smtp_user_env": "U", "smtp_password_env": "P"},
     "in clear"),
    ({"smtp_password": "hunter2"}, "Extra inputs are not permitted"),
    ({"smtp_security": "tls"}, "'starttls', 'ssl' or 'none'"),
])
def test_configuration_errors_are_clear(settings, message):
    with pytest.raises(ValidationError, match=message):
        NotifySettings.model_validate(settings)
