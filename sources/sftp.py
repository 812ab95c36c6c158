"""sFTP connections with a pinned host key, for statement inboxes and for deliveries.

The server's key is pinned in the tenant file ("ssh-ed25519 AAAA…"); any other key is refused
(no trust on first use). The password or private key comes from an environment variable named
in the tenant file, never from the file itself, and never appears in a message.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from pathlib import Path


class SftpError(RuntimeError):
    """The server could not be reached or refused us; the message says why (never a secret)."""


class HostKeyRefused(SftpError):
    """The server showed another host key than the pinned one: never retried."""


def _secret(variable: str | None, what: str) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise SftpError(f"{what}: environment variable {variable} is not set")
    return value


def _private_key(text: str):
    import paramiko

    source = Path(text) if "\n" not in text and Path(text).is_file() else None
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            if source is not None:
                return key_class.from_private_key_file(str(source))
            return key_class.from_private_key(io.StringIO(text))
        except paramiko.SSHException:
            continue
    raise SftpError("the private key could not be read (ed25519, ECDSA or RSA, without passphrase)")


def connect(settings, label: str):
    """(SSH client, SFTP session) for ``settings`` (host, port, username, host_key, password_env,
    private_key_env, timeout_seconds). The caller closes the client."""
    import paramiko

    key_type, key_text = settings.host_key.split(" ", 1)
    try:
        pinned = paramiko.PKey.from_type_string(key_type, base64.b64decode(key_text, validate=True))
    except (ValueError, binascii.Error, paramiko.SSHException) as exc:
        raise SftpError(f"{label}: the pinned host_key cannot be read: {exc}") from None
    client = paramiko.SSHClient()
    host = settings.host if settings.port == 22 else f"[{settings.host}]:{settings.port}"
    client.get_host_keys().add(host, key_type, pinned)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    password = _secret(settings.password_env, f"{label} password")
    key = _secret(settings.private_key_env, f"{label} private key")
    timeout = settings.timeout_seconds
    try:
        client.connect(settings.host, port=settings.port, username=settings.username, password=password,
                       pkey=_private_key(key) if key else None, timeout=timeout, banner_timeout=timeout,
                       auth_timeout=timeout, allow_agent=False, look_for_keys=False)
        return client, client.open_sftp()
    except paramiko.BadHostKeyException:
        client.close()
        raise HostKeyRefused(f"{label}: the server's host key is not the pinned one; refusing to connect (if the "
                             "server's key really changed, confirm the new one and update host_key)") from None
    except paramiko.SSHException as exc:
        client.close()
        if "not found in known_hosts" in str(exc):
            raise HostKeyRefused(f"{label}: the server's host key is not the pinned one") from None
        raise SftpError(f"{label}: {exc}") from None
    except OSError as exc:
        client.close()
        raise SftpError(f"{label}: cannot connect: {exc.strerror or exc}") from None
