"""Deliver export files to an sFTP server, safely.

Each file is uploaded under a temporary name in the target folder (``.<name>.part``), its size
checked on the server, then renamed to its final name: a reader never sees half a file, and a
connection dropped mid-upload leaves no file under the final name. Dropped connections and
timeouts are retried with back-off (a fresh connection each time, the temporary file
overwritten); a changed host key is never retried. ``sleep`` is injectable for tests.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from sources.sftp import HostKeyRefused, SftpError, connect

log = logging.getLogger("ledgerflow.delivery")


class DeliveryError(RuntimeError):
    """A file could not be delivered; the message names server and file (never a secret)."""


@dataclass(frozen=True)
class Delivered:
    name: str
    remote_path: str
    size: int
    attempts: int


def _upload(sftp, folder: str, name: str, content: bytes) -> str:
    """``name`` may hold folders (``2026-03/FEC.txt``), created when missing."""
    final = PurePosixPath(folder, name)
    _make_folders(sftp, final.parent)
    partial = str(final.parent / f".{final.name}.part")
    final = str(final)
    sftp.putfo(io.BytesIO(content), partial, file_size=len(content), confirm=True)
    size = sftp.stat(partial).st_size
    if size != len(content):
        raise OSError(f"{partial} has {size} bytes on the server, {len(content)} were sent")
    sftp.posix_rename(partial, final)  # atomic on the server, replacing an older file of that name
    return final


def _make_folders(sftp, folder: PurePosixPath) -> None:
    missing = []
    while str(folder) not in (".", "/", ""):
        try:
            sftp.stat(str(folder))
            break
        except FileNotFoundError:
            missing.append(folder)
            folder = folder.parent
    for path in reversed(missing):
        sftp.mkdir(str(path))


def deliver_sftp(settings, files: list[tuple[str, bytes]], *, attempts: int = 4, backoff_seconds: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep) -> list[Delivered]:
    """Upload ``files`` (name, content) into ``settings.remote_dir``; every file or a DeliveryError."""
    label = f"sftp://{settings.username}@{settings.host}:{settings.port}/{settings.remote_dir}"
    delivered: list[Delivered] = []
    for name, content in files:
        for attempt in range(1, attempts + 1):
            client = None
            try:
                client, sftp = connect(settings, label)
                path = _upload(sftp, settings.remote_dir, name, content)
                delivered.append(Delivered(name, path, len(content), attempt))
                break
            except HostKeyRefused as exc:
                raise DeliveryError(str(exc)) from None
            except (SftpError, OSError, EOFError) as exc:
                failure = exc
            except Exception as exc:  # paramiko raises SSHException and friends on a dropped session
                if type(exc).__module__.split(".")[0] != "paramiko":
                    raise
                failure = exc
            finally:
                if client is not None:
                    client.close()
            if attempt == attempts:
                raise DeliveryError(f"{label}: {name} not delivered after {attempts} attempts: {failure}")
            wait = backoff_seconds * 2 ** (attempt - 1)
            log.warning("%s: %s: attempt %d failed (%s); retrying in %.0f s", label, name, attempt, failure, wait)
            sleep(wait)
    return delivered
