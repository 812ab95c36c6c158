"""Export files delivered by e-mail to a real SMTP server (aiosmtpd on 127.0.0.1): attachments
byte for byte, the recipients, a temporary refusal retried, a permanent one reported."""

from __future__ import annotations

from datetime import UTC, datetime

from destinations.delivery.email import deliver_email, export_message
from tests.destinations.test_notify import mail_settings, smtp, smtp_server  # noqa: F401 - fixtures

FILES = [("303265045FEC20261231.txt", "JournalCode\tJournalLib\nVT\tVentes é\n".encode("utf-8")),
         ("journal.csv", b"a,b\r\n1,2\r\n")]
SENT = datetime(2026, 3, 31, 0, 0, tzinfo=UTC)


def test_the_files_arrive_attached_byte_for_byte_to_every_recipient(smtp):  # noqa: F811
    inbox, port = smtp
    delivery = deliver_email(mail_settings(port), FILES, subject="FEC March 2026", sent_at=SENT, sleep=lambda _: None)
    assert delivery.ok, delivery.detail
    sender, recipients, _ = inbox.messages[0]
    assert recipients == ["ops@example.org", "finance@example.org"]
    attachments = {part.get_filename(): part.get_payload(decode=True) for part in inbox.parsed().iter_attachments()}
    assert attachments == dict(FILES)
    assert inbox.parsed()["Subject"] == "FEC March 2026"


def test_the_same_files_make_the_same_message(smtp):  # noqa: F811
    _, port = smtp
    one = export_message(mail_settings(port), FILES, subject="s", sent_at=SENT)
    two = export_message(mail_settings(port), FILES, subject="s", sent_at=SENT)
    assert one["Message-ID"] == two["Message-ID"] and one.as_bytes() == two.as_bytes()


def test_a_temporary_refusal_is_retried_and_a_permanent_one_reported(smtp):  # noqa: F811
    inbox, port = smtp
    waits: list[float] = []
    inbox.replies.append("451 try again later")
    assert deliver_email(mail_settings(port), FILES, subject="s", sent_at=SENT, sleep=waits.append).ok
    assert waits and len(inbox.messages) == 1
    inbox.replies.append("554 rejected")
    failed = deliver_email(mail_settings(port), FILES, subject="s", sent_at=SENT, sleep=lambda _: None)
    assert not failed.ok and "554" in failed.detail
