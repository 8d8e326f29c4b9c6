"""Certificates made by the tests (``trustme``), written to files as a server reads them.

:class:`Certificates` holds a root CA, an intermediate CA, a server
certificate for 127.0.0.1 and ``localhost`` issued by the intermediate, and
a client certificate issued by the root; :meth:`Certificates.client_context`
makes the client side. Nothing here uses the server's own TLS code.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = [
    "FFDHE2048",
    "TLS13_CIPHER_SUITES",
    "Certificates",
    "https_get",
    "rfc4514_of",
    "same_certificate",
]

#: The ffdhe2048 group of RFC 7919 (Appendix A.1) as PEM DH parameters, as
#: ``openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048`` writes it.
FFDHE2048 = """\
-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""

#: RFC 8446 Appendix B.4: the TLS 1.3 cipher suites and their numbers.
TLS13_CIPHER_SUITES = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
}


class Certificates:
    """A small PKI in *folder*; the attributes ending in ``_file`` are paths to PEM files.

    * ``key_file``: the server's private key; ``cert_file``: its certificate
      alone; ``chain_file``: the intermediate CA certificate (what Twisted
      calls ``extraCertChain``); ``fullchain_file``: certificate then
      intermediate (what ``--ssl-certfile`` takes); ``key_and_chain_file``: key, certificate and
      intermediate in one file;
    * ``ca_file``: the root CA, which clients trust and which issued the
      client certificate (``client_cert_file``, ``client_key_file``);
    * ``encrypted_key_file``: the server key encrypted with ``password``.
    """

    password = "correct horse"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = trustme.CA()
        self.intermediate = self.ca.create_child_ca()
        self.server = self.intermediate.issue_cert("127.0.0.1", "localhost")
        self.client = self.ca.issue_cert(
            "alice@example.org", common_name="alice", organization_name="Example, Inc."
        )
        self.key_file = self._write("key.pem", self.server.private_key_pem.bytes())
        self.cert_file = self._write("cert.pem", self.server.cert_chain_pems[0].bytes())
        self.chain_file = self._write("chain.pem", self.server.cert_chain_pems[1].bytes())
        self.fullchain_file = self._write(
            "fullchain.pem", b"".join(pem.bytes() for pem in self.server.cert_chain_pems)
        )
        self.key_and_chain_file = self._write(
            "key-and-chain.pem", self.server.private_key_and_cert_chain_pem.bytes()
        )
        self.ca_file = self._write("ca.pem", self.ca.cert_pem.bytes())
        self.client_cert_file = self._write("client.pem", self.client.cert_chain_pems[0].bytes())
        self.client_key_file = self._write("client-key.pem", self.client.private_key_pem.bytes())
        key = serialization.load_pem_private_key(self.server.private_key_pem.bytes(), None)
        self.encrypted_key_file = self._write(
            "encrypted-key.pem",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(self.password.encode()),
            ),
        )
        self.dh_file = self._write("dh.pem", FFDHE2048.encode())

    def _write(self, name: str, data: bytes) -> str:
        path = self.folder / name
        path.write_bytes(data)
        return str(path)

    def file(self, name: str, data: bytes | str) -> str:
        """Write another file (a broken one, say) next to the others; its path."""
        return self._write(name, data.encode() if isinstance(data, str) else data)

    @property
    def server_cert_pem(self) -> str:
        return self.server.cert_chain_pems[0].bytes().decode()

    @property
    def client_cert_pem(self) -> str:
        return self.client.cert_chain_pems[0].bytes().decode()

    def client_context(
        self, *, client_cert: bool = False, alpn: list[str] | None = None
    ) -> ssl.SSLContext:
        """A client context that trusts the root CA only (so the server must send
        the intermediate), with the client certificate when *client_cert*."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if client_cert:
            context.load_cert_chain(self.client_cert_file, self.client_key_file)
        if alpn is not None:
            context.set_alpn_protocols(alpn)
        return context


def same_certificate(first: str, second: str) -> bool:
    """Whether two PEM texts hold the same certificate (whatever their line breaks)."""
    return bool(
        x509.load_pem_x509_certificate(first.encode())
        == x509.load_pem_x509_certificate(second.encode())
    )


def rfc4514_of(pem: str) -> str:
    """The subject of a PEM certificate as ``cryptography`` writes it (RFC 4514)."""
    return x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()


async def https_get(
    port: int, context: ssl.SSLContext, path: str = "/", *, timeout: float = 5
) -> tuple[bytes, ssl.SSLObject]:
    """GET *path* over TLS, ``Connection: close``: (all that was read, the client's SSL object)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost"),
        timeout,
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        writer.write(
            f"GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout), ssl_object
    finally:
        writer.close()
