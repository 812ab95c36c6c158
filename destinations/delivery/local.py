"""Publish files into a local (or mounted) folder, atomically and without needless rewrites."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Published:
    path: Path
    written: bool  # False when an identical file was already there


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def publish(folder: Path, name: str, content: bytes) -> Published:
    """Write ``content`` as ``folder/name``: to a temporary name first, then renamed, so a reader
    never sees half a file. An identical existing file is left alone (same bytes, same mtime)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if target.is_file() and target.stat().st_size == len(content) and target.read_bytes() == content:
        return Published(target, written=False)
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Published(target, written=True)
