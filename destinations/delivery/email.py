"""Deliver export files by e-mail: one message, the files attached, sent over SMTP (STARTTLS or
SSL, login from environment variables) to the tenant's recipients, through the same sending path
as alerts (``destinations.notify.send_email``).

The message is a pure function of the files and the period: its Message-ID derives from the
files' hashes and its Date from the given time, so a resend is recognisable as the same mail.
"""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from schemas.notify import NotifySettings


def export_message(settings: NotifySettings, files: list[tuple[str, bytes]], *, subject: str, sent_at: datetime,
                   note: str = "") -> EmailMessage:
    digests = [hashlib.sha256(content).hexdigest() for _, content in files]
    domain = parseaddr(settings.email_from or "")[1].rpartition("@")[2] or "ledgerflow.invalid"
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.email_from
    message["To"] = ", ".join(settings.email_to)
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = f"<ledgerflow.export.{hashlib.sha256(''.join(digests).encode()).hexdigest()[:40]}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    listing = "\n".join(f"- {name} ({len(content)} bytes, sha256 {digest})"
                        for (name, content), digest in zip(files, digests, strict=True))
    message.set_content((note + "\n\n" if note else "") + f"Attached:\n{listing}\n")
    for name, content in files:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.lower().endswith((".txt", ".csv", ".se")):
            kind = "text/plain" if not name.lower().endswith(".csv") else "text/csv"
        maintype, subtype = kind.split("/", 1)
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    message.set_boundary(f"ledgerflow-{digests[0][:32] if digests else 'empty'}")  # not random: same bytes each time
    return message


def deliver_email(settings: NotifySettings, files: list[tuple[str, bytes]], *, subject: str, sent_at: datetime,
                  note: str = "", sleep=None, attempts: int = 4):
    """Send ``files`` attached to one message; returns the ``Delivery`` (ok or the reason)."""
    import time

    from destinations.notify import send_email

    return send_email(settings, export_message(settings, files, subject=subject, sent_at=sent_at, note=note),
                      sleep=sleep or time.sleep, attempts=attempts)
