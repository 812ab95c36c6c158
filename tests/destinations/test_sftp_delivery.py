"""Export files delivered to OpenSSH's sshd on 127.0.0.1: temporary name then rename, size
checked, a connection dropped mid-upload retried without a partial file under the final name,
and a changed host key refused."""

from __future__ import annotations

import socket
import threading

import pytest

from destinations.delivery.sftp import DeliveryError, deliver_sftp
from schemas.tenant import SftpServer

OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


class DroppingProxy:
    """127.0.0.1 TCP proxy to the server that cuts the first ``drops`` connections after ``after``
    bytes from the client: a network dropping mid-upload."""

    def __init__(self, target_port: int, *, drops: int, after: int):
        self.target_port, self.drops, self.after = target_port, drops, after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.after if self.connections <= self.drops else None
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, limit), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def _pipe(source, target, limit):
        sent = 0
        try:
            while chunk := source.recv(65536):
                sent += len(chunk)
                if limit is not None and sent > limit:
                    break
                target.sendall(chunk)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self):
        self.listener.close()


def settings_for(server, remote, monkeypatch, *, port=None, host_key=None) -> SftpServer:
    monkeypatch.setenv("LF_TEST_SFTP_KEY", str(server.client_key))
    return SftpServer(host=server.host, port=port or server.port, username=server.username, remote_dir=str(remote),
                      host_key=host_key or server.host_key, private_key_env="LF_TEST_SFTP_KEY", timeout_seconds=5)


@pytest.fixture
def remote(sftp_server, tmp_path):
    folder = sftp_server.root / f"out-{tmp_path.name}"
    folder.mkdir()
    return folder


def test_files_arrive_under_their_final_name_only(sftp_server, remote, monkeypatch):
    files = [("303265045FEC20261231.txt", b"JournalCode\tJournalLib\n"), ("journal.csv", b"a,b\r\n")]
    delivered = deliver_sftp(settings_for(sftp_server, remote, monkeypatch), files)
    assert [d.attempts for d in delivered] == [1, 1]
    assert sorted(p.name for p in remote.iterdir()) == ["303265045FEC20261231.txt", "journal.csv"]
    assert (remote / "journal.csv").read_bytes() == b"a,b\r\n"


def test_a_connection_dropped_mid_upload_leaves_no_partial_file_and_the_retry_succeeds(
        sftp_server, remote, monkeypatch):
    proxy = DroppingProxy(sftp_server.port, drops=1, after=200_000)
    waits: list[float] = []
    content = bytes(range(256)) * 4096  # 1 MiB
    try:
        delivered = deliver_sftp(settings_for(sftp_server, remote, monkeypatch, port=proxy.port),
                                 [("big.xml", content)], sleep=waits.append)
    finally:
        proxy.close()
    assert delivered[0].attempts == 2 and waits == [2.0]
    assert (remote / "big.xml").read_bytes() == content
    assert [p.name for p in remote.iterdir()] == ["big.xml"]


def test_when_every_attempt_fails_nothing_is_left_under_the_final_name(sftp_server, remote, monkeypatch):
    proxy = DroppingProxy(sftp_server.port, drops=10, after=200_000)
    try:
        with pytest.raises(DeliveryError, match="not delivered after 3 attempts"):
            deliver_sftp(settings_for(sftp_server, remote, monkeypatch, port=proxy.port),
                         [("big.xml", bytes(1_000_000))], attempts=3, sleep=lambda _: None)
    finally:
        proxy.close()
    assert not (remote / "big.xml").exists()


def test_a_changed_host_key_is_refused_and_not_retried(sftp_server, remote, monkeypatch):
    waits: list[float] = []
    with pytest.raises(DeliveryError, match="not the pinned one"):
        deliver_sftp(settings_for(sftp_server, remote, monkeypatch, host_key=OTHER_KEY), [("a.txt", b"x")],
                     sleep=waits.append)
    assert waits == [] and list(remote.iterdir()) == []
