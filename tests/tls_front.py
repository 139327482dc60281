"""A real TLS server in front of the local PostgreSQL (whose own TLS is off): the tests' way to
prove that database sources verify certificates, without reconfiguring the machine's server.

PostgreSQL negotiates TLS inside its protocol: the client sends an 8-byte SSLRequest, the
server answers `S` and both do a TLS handshake; the startup packet then follows inside TLS.
`PgTlsFront` answers the SSLRequest itself, does the handshake with Python's `ssl` module and
a certificate of a test CA (trustme), and relays the decrypted stream to the plain server.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trustme

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


class PgTlsFront:
    """Listens on 127.0.0.1 (port 0); each client that asks for TLS gets it with `cert`."""

    def __init__(self, cert: trustme.LeafCert, upstream: tuple[str, int]) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.context)
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.handshakes = 0  # TLS sessions established
        self.failed: list[str] = []  # handshakes that failed, with why
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
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
            try:
                secure = self.context.wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.failed.append(str(exc))
                client.close()
                return
            self.handshakes += 1
            upstream = socket.create_connection(self.upstream, timeout=10)
            _relay(secure, upstream)
        except (OSError, struct.error):
            client.close()


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _relay(secure: ssl.SSLSocket, plain: socket.socket) -> None:
    """Copy both ways on one thread (an SSL socket is not shared between threads)."""
    try:
        while True:
            if not secure.pending():
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


@contextmanager
def pg_tls_front(cert: trustme.LeafCert, upstream: tuple[str, int]) -> Iterator[PgTlsFront]:
    front = PgTlsFront(cert, upstream)
    try:
        yield front
    finally:
        front.close()
