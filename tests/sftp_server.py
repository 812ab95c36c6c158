"""OpenSSH's sshd on 127.0.0.1 for the sFTP tests: a generated host key and client key, a
config in a temporary folder, the current user, a free port. The real server, not a fake."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


def find_sshd() -> str | None:
    found = shutil.which("sshd")
    return found or next((c for c in SSHD_CANDIDATES if os.access(c, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SftpServer:
    host: str
    port: int
    username: str
    host_key: str  # "ssh-ed25519 AAAA…" as pinned in a tenant file
    client_key: Path  # private key file the tests log in with
    root: Path  # a folder the tests may use as remote_dir
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_sshd(base: Path) -> SftpServer:
    sshd = find_sshd()
    if sshd is None:
        raise FileNotFoundError("sshd not found: install openssh-server (make test does it when it can)")
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    host_key, client_key = base / "host_ed25519", base / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = base / "authorized_keys"
    shutil.copyfile(f"{client_key}.pub", authorized)
    os.chmod(authorized, 0o600)
    root = base / "files"
    root.mkdir()
    port = _free_port()
    config = base / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {base / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no",
        "Subsystem sftp internal-sftp", f"AllowUsers {getpass.getuser()}", "LogLevel ERROR", ""]))
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation folder sshd insists on
    process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=open(base / "sshd.log", "wb"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {(base / 'sshd.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    public = Path(f"{host_key}.pub").read_text().split()
    return SftpServer("127.0.0.1", port, getpass.getuser(), f"{public[0]} {public[1]}", client_key, root, process)
