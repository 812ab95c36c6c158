"""Where statement files wait for us: a local (or mounted) folder, or an sFTP inbox.

Both offer the same three calls: ``names()`` (files waiting, sorted), ``read(name)`` and
``quarantine(name, reason)``. Names come from the far side and are never trusted: a name
with a path separator, ``..`` or a leading dot is skipped, so nothing outside the folder is
ever read or moved.

sFTP connections (pinned host key, secrets from environment variables) are ``sources.sftp``'s.
"""

from __future__ import annotations

import fnmatch
import shutil
import time
from pathlib import Path, PurePosixPath

from schemas.tenant import SftpInbox

REASON_SUFFIX = ".reason.txt"


class StoreError(RuntimeError):
    """The inbox could not be reached or read; nothing was taken from it."""


def safe_name(name: str) -> bool:
    """A plain file name: no path, not hidden, and text (a name that is not UTF-8 could not even be
    named in a message or a reason file; such a file is left where it is)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(name) and name not in (".", "..") and not name.startswith(".") and "/" not in name \
        and "\\" not in name and "\x00" not in name


def _free_name(exists, folder: str, name: str) -> str:
    """``name``, or ``name.1``, ``name.2``…: a bank that sends the same file name every day must not
    overwrite yesterday's archived file."""
    candidate, n = name, 0
    while exists(f"{folder}/{candidate}"):
        n += 1
        candidate = f"{name}.{n}"
    return candidate


class FolderStore:
    def __init__(self, folder: Path, pattern: str = "*", quarantine: str = "quarantine", archive: str = "processed",
                 settle_seconds: int = 0):
        self.folder = folder
        self.pattern = pattern
        self.settle_seconds = settle_seconds
        self.quarantine_folder = folder / quarantine
        self.archive_folder = folder / archive
        self.label = str(folder)

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        # A symbolic link could point anywhere: only real files of the folder itself are taken.
        settled = time.time() - self.settle_seconds
        return sorted(p.name for p in self.folder.iterdir()
                      if not p.is_symlink() and p.is_file() and safe_name(p.name)
                      and fnmatch.fnmatch(p.name, self.pattern) and not p.name.endswith(REASON_SUFFIX)
                      and (not self.settle_seconds or p.stat().st_mtime <= settled))

    def read(self, name: str) -> bytes:
        try:
            return (self.folder / name).read_bytes()
        except OSError as exc:
            raise StoreError(f"{self.label}: cannot read {name}: {exc.strerror or exc}") from None

    def _move(self, name: str, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / _free_name(lambda p: Path(p).exists(), str(folder), name)
        shutil.move(str(self.folder / name), target)
        return target

    def quarantine(self, name: str, reason: str) -> str:
        target = self._move(name, self.quarantine_folder)
        target.with_name(target.name + REASON_SUFFIX).write_text(reason + "\n", encoding="utf-8")
        return str(target)

    def archive(self, name: str) -> None:
        """Out of the inbox once loaded (or recognised as loaded before): what waits is what is new."""
        self._move(name, self.archive_folder)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SftpStore:
    def __init__(self, settings: SftpInbox, pattern: str = "*", settle_seconds: int = 0):
        self.settings = settings
        self.pattern = pattern
        self.settle_seconds = settle_seconds
        self.label = f"sftp://{settings.username}@{settings.host}:{settings.port}/{settings.remote_dir}"
        self._client = None
        self._sftp = None

    def _connect(self):
        if self._sftp is None:
            from sources.sftp import SftpError, connect

            try:
                self._client, self._sftp = connect(self.settings, self.label)
            except SftpError as exc:
                raise StoreError(str(exc)) from None
        return self._sftp

    def _path(self, *parts: str) -> str:
        return str(PurePosixPath(self.settings.remote_dir, *parts))

    def names(self) -> list[str]:
        import stat

        sftp = self._connect()
        try:
            entries = sftp.listdir_attr(self.settings.remote_dir)
        except OSError as exc:
            raise StoreError(f"{self.label}: cannot list: {exc}") from None
        settled = time.time() - self.settle_seconds
        return sorted(e.filename for e in entries
                      if e.st_mode is not None and stat.S_ISREG(e.st_mode) and safe_name(e.filename)
                      and fnmatch.fnmatch(e.filename, self.pattern) and not e.filename.endswith(REASON_SUFFIX)
                      and (not self.settle_seconds or (e.st_mtime or 0) <= settled))

    def read(self, name: str) -> bytes:
        sftp = self._connect()
        try:
            with sftp.open(self._path(name), "rb") as handle:
                handle.prefetch()
                return handle.read()
        except OSError as exc:
            raise StoreError(f"{self.label}: cannot read {name}: {exc}") from None

    def _exists(self, path: str) -> bool:
        try:
            self._connect().stat(path)
            return True
        except OSError:
            return False

    def _move(self, name: str, folder_name: str) -> str:
        sftp = self._connect()
        folder = self._path(folder_name)
        try:
            if not self._exists(folder):
                sftp.mkdir(folder)
            target = _free_name(self._exists, folder, name)
            sftp.posix_rename(self._path(name), self._path(folder_name, target))
        except OSError as exc:
            raise StoreError(f"{self.label}: cannot move {name} to {folder}: {exc}") from None
        return target

    def quarantine(self, name: str, reason: str) -> str:
        import io

        target = self._move(name, self.settings.quarantine_dir)
        try:
            self._connect().putfo(io.BytesIO((reason + "\n").encode("utf-8")),
                                  self._path(self.settings.quarantine_dir, target + REASON_SUFFIX))
        except OSError as exc:
            raise StoreError(f"{self.label}: cannot write the reason for {name}: {exc}") from None
        return f"{self.label}/{self.settings.quarantine_dir}/{target}"

    def archive(self, name: str) -> None:
        self._move(name, self.settings.archive_dir)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
