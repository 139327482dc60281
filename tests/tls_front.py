"""A real TLS server in front of the local PostgreSQL or MariaDB (whose own TLS is off): the
tests' way to prove that database sources verify certificates, without reconfiguring the
machine's servers.

PostgreSQL negotiates TLS inside its protocol: the client sends an 8-byte SSLRequest, the
server answers `S` and both do a TLS handshake; the startup packet then follows inside TLS.
`PgTlsFront` answers the SSLRequest itself, does the handshake with Python's `ssl` module and
a certificate of a test CA (trustme), and relays the decrypted stream to the plain server.

MySQL negotiates TLS inside its protocol too: the server's greeting advertises CLIENT_SSL, the
client answers with a short SSL request packet, both do a TLS handshake and the client's login
follows inside TLS. `MysqlTlsFront` adds CLIENT_SSL to the real server's greeting, does the
handshake, and relays the login to the plain server with the packets' sequence numbers shifted
by the one packet (the SSL request) the server never saw, until the login is answered.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import select
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import trustme

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


class TlsFront:
    """Listens on 127.0.0.1 (port 0); each client that asks for TLS gets it with `cert`."""

    def __init__(
        self, pem: str, upstream: tuple[str, int], counter: Synchronized[int] | None = None
    ) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pem)  # key and certificate chain
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.counter = counter
        self._handshakes = 0
        self.failed: list[str] = []  # handshakes that failed, with why
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def handshakes(self) -> int:
        """TLS sessions established so far."""
        return self._handshakes if self.counter is None else self.counter.value

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):  # wake accept(), which a close does not interrupt
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        self.listener.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    def _handshake(self, client: socket.socket) -> ssl.SSLSocket | None:
        try:
            secure = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.failed.append(str(exc))
            client.close()
            return None
        if self.counter is None:
            self._handshakes += 1
        else:
            with self.counter.get_lock():
                self.counter.value += 1
        return secure


class PgTlsFront(TlsFront):
    def _serve(self, client: socket.socket) -> None:
        client.settimeout(10)
        try:
            first = _read_exact(client, 8)
            length, code = struct.unpack("!ii", first)
            if length == 8 and code == GSSENC_REQUEST:
                client.sendall(b"N")
                first = _read_exact(client, 8)
                length, code = struct.unpack("!ii", first)
            if length != 8 or code != SSL_REQUEST:
                client.close()  # this front speaks TLS only
                return
            client.sendall(b"S")
            secure = self._handshake(client)
            if secure is None:
                return
            upstream = socket.create_connection(self.upstream, timeout=10)
            _relay(secure, upstream)
        except (OSError, struct.error):
            client.close()


CLIENT_SSL = 0x0800


class MysqlTlsFront(TlsFront):
    def _serve(self, client: socket.socket) -> None:
        client.settimeout(10)
        upstream = socket.create_connection(self.upstream, timeout=10)
        try:
            seq, greeting = _read_packet(upstream)
            # the capability flags' lower half follows the version string, the connection id
            # (4 bytes), the first auth data (8) and a filler byte
            at = greeting.index(b"\0", 1) + 1 + 4 + 8 + 1
            (caps,) = struct.unpack_from("<H", greeting, at)
            greeting = greeting[:at] + struct.pack("<H", caps | CLIENT_SSL) + greeting[at + 2 :]
            _write_packet(client, seq, greeting)
            seq, first = _read_packet(client)
            (flags,) = struct.unpack_from("<I", first)
            if not flags & CLIENT_SSL:  # a plain login: relay as it is
                _write_packet(upstream, seq, first)
                _relay(client, upstream)
                return
            secure = self._handshake(client)
            if secure is None:
                upstream.close()
                return
            self._login(secure, upstream)
            _relay(secure, upstream)
        except (OSError, struct.error, ValueError):
            client.close()
            upstream.close()

    def _login(self, secure: ssl.SSLSocket, upstream: socket.socket) -> None:
        """Relay the login: the client counts the SSL request the server never saw."""
        seq, login = _read_packet(secure)
        (flags,) = struct.unpack_from("<I", login)
        _write_packet(upstream, seq - 1, struct.pack("<I", flags & ~CLIENT_SSL) + login[4:])
        while True:
            seq, answer = _read_packet(upstream)
            _write_packet(secure, seq + 1, answer)
            if answer[:1] in (b"\x00", b"\xff"):  # OK or ERR: the login is over
                return
            if answer[:2] == b"\x01\x03":  # caching_sha2 fast auth: an OK follows
                continue
            seq, reply = _read_packet(secure)
            _write_packet(upstream, seq - 1, reply)


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    header = _read_exact(sock, 4)
    length = int.from_bytes(header[:3], "little")
    return header[3], _read_exact(sock, length)


def _write_packet(sock: socket.socket, seq: int, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(3, "little") + bytes([seq % 256]) + payload)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _relay(secure: socket.socket, plain: socket.socket) -> None:
    """Copy both ways on one thread (an SSL socket is not shared between threads)."""
    try:
        while True:
            if not isinstance(secure, ssl.SSLSocket) or not secure.pending():
                readable, _, _ = select.select([secure, plain], [], [], 30)
                if not readable:
                    return
            else:
                readable = [secure]
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (plain if sock is secure else secure).sendall(data)
    except (OSError, ssl.SSLError):
        return
    finally:
        plain.close()
        secure.close()


class DemoCa:
    """A test CA, its PEM file, and server certificates it signs."""

    def __init__(self, directory: Path, name: str) -> None:
        self.ca = trustme.CA()
        self.pem = directory / f"{name}-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.pem))

    def leaf(self, *hosts: str) -> trustme.LeafCert:
        return self.ca.issue_cert(*hosts)


def _pem(cert: trustme.LeafCert) -> str:
    handle, name = tempfile.mkstemp(suffix=".pem")
    os.close(handle)
    cert.private_key_and_cert_chain_pem.write_to_path(name)
    return name


@contextmanager
def pg_tls_front(cert: trustme.LeafCert, upstream: tuple[str, int]) -> Iterator[PgTlsFront]:
    """A PostgreSQL TLS front on a thread of this process (libpq leaves the GIL while it
    waits, so the front can answer)."""
    front = PgTlsFront(_pem(cert), upstream)
    try:
        yield front
    finally:
        front.close()


class FrontProcess:
    """A MySQL TLS front in a process of its own: connectorx's streaming read waits for its
    connection while holding the GIL, so a front on a thread of the test process would never
    answer it."""

    def __init__(self, cert: trustme.LeafCert, upstream: tuple[str, int]) -> None:
        context = multiprocessing.get_context("spawn")
        self.counter: Synchronized[int] = context.Value("i", 0)
        parent, child = context.Pipe()
        self.process = context.Process(
            target=_serve_mysql, args=(_pem(cert), upstream, self.counter, child), daemon=True
        )
        self.process.start()
        self.port: int = parent.recv()

    @property
    def handshakes(self) -> int:
        return self.counter.value

    def close(self) -> None:
        self.process.terminate()
        self.process.join(5)


def _serve_mysql(
    pem: str, upstream: tuple[str, int], counter: Synchronized[int], conn: Connection
) -> None:
    front = MysqlTlsFront(pem, upstream, counter)
    conn.send(front.port)
    front._thread.join()


@contextmanager
def mysql_tls_front(cert: trustme.LeafCert, upstream: tuple[str, int]) -> Iterator[FrontProcess]:
    front = FrontProcess(cert, upstream)
    try:
        yield front
    finally:
        front.close()
