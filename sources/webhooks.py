"""Signed webhooks: the scheme systems that call us use (Stripe's, which the training system follows).

    <signature header>: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>[,v1=…]

Several ``v1`` values may be present while a secret is being rotated; one matching is enough. A
signature older (or further in the future) than ``tolerance`` seconds is refused, so a captured
request cannot be replayed later; the receiver also refuses an event id it has already taken.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

DEFAULT_TOLERANCE_SECONDS = 300


class SignatureRefused(ValueError):
    """The request is not signed by the holder of the secret, or not recently: it is not taken."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value a sender computes (the fakes use this; so can a tenant's own sender)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str | None, now: datetime,
           tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> int:
    """Check ``header`` against ``body``; returns the signed timestamp, or raises ``SignatureRefused``."""
    if not header:
        raise SignatureRefused("the request carries no signature")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureRefused(f"the signature header has no t= and v1= parts: {header[:80]!r}")
    age = now.timestamp() - timestamp
    if abs(age) > tolerance:
        raise SignatureRefused(f"the signature is {int(abs(age))} s {'old' if age > 0 else 'in the future'}; "
                               f"at most {tolerance} s are accepted (a replay, or a clock that is wrong)")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureRefused("the signature does not match the body (another secret, or a changed body)")
    return timestamp
