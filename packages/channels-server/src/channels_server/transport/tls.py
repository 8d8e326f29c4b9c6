"""TLS: the SSL context of a listening socket, and the TLS facts of one connection.

:func:`server_context` turns an endpoint's :class:`~channels_server.config.TLSSettings`
(from an ``ssl:`` description or the ``--ssl-*`` flags) into an
:class:`ssl.SSLContext` when the server starts, before it binds anything, so
that a bad file stops the server with one line naming that file
(``cannot load the TLS private key /etc/app/key.pem: wrong password``)
rather than failing on the first client. The files are loaded one at a time
so that each OpenSSL error can be blamed on the file that caused it.

The context accepts TLS 1.2 and 1.3 only, refuses renegotiation, asks for a
client certificate only when ``cert_reqs`` says so, and offers ALPN
``h2`` (when HTTP/2 is enabled) and ``http/1.1``.

:class:`ConnectionTLS` holds one connection's SSL object and builds the ASGI
``tls`` extension (``../shared/reference/asgi/tls.rst``, version 0.2) the
first time a scope needs it; the later requests of the connection reuse it.
Plain-TCP connections have none, so they pay nothing for TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from ..config import TLSSettings
from ..errors import ConfigurationError

__all__ = [
    "TLS_CLOSE_GRACE",
    "ConnectionTLS",
    "ServerSSLContext",
    "abort_once_sent",
    "alpn_protocols",
    "rfc4514_name",
    "server_context",
    "write_buffer_size",
]

_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)
# A PEM private key that needs a password: PKCS#8 ("ENCRYPTED PRIVATE KEY")
# or OpenSSL's traditional format ("Proc-Type: 4,ENCRYPTED").
_ENCRYPTED_KEY = re.compile(r"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED")

#: TLS protocol versions as ``SSLObject.version()`` names them, and their
#: numbers on the wire (RFC 8446 §4.2.1 and earlier), which the ``tls``
#: extension reports.
_TLS_VERSIONS = {"TLSv1.3": 0x0304, "TLSv1.2": 0x0303, "TLSv1.1": 0x0302, "TLSv1": 0x0301}


#: How long a TLS connection being closed has, once everything it queued has
#: left, before it is dropped. Closing waits for the client's close_notify
#: (up to the loop's 30 s ``ssl_shutdown_timeout``), so a client that never
#: answers would hold the connection, and a graceful shutdown, that long; RFC
#: 8446 §6.1 lets the closing side not wait for the reply. The same two
#: seconds as the HTTP/1.1 linger; bytes that do not leave at all are the
#: write timeout's.
TLS_CLOSE_GRACE = 2.0


def abort_once_sent(loop: asyncio.AbstractEventLoop, transport: asyncio.Transport) -> None:
    """After ``transport.close()`` on TLS: drop the connection once its write
    buffer is found empty, checking every :data:`TLS_CLOSE_GRACE` seconds.

    Harmless if the connection ends first: a closed transport reports an
    empty buffer, and aborting it again does nothing.
    """

    def check() -> None:
        if write_buffer_size(transport):
            loop.call_later(TLS_CLOSE_GRACE, check)
        else:
            transport.abort()

    loop.call_later(TLS_CLOSE_GRACE, check)


def write_buffer_size(transport: asyncio.BaseTransport) -> int:
    """``transport.get_write_buffer_size()``, or 0 once a TLS transport's socket is gone.

    Python 3.10's SSL transport raises ``AttributeError`` then (its
    ``sslproto`` was rewritten in 3.11); a plain transport never does.
    """
    try:
        return transport.get_write_buffer_size()  # type: ignore[attr-defined, no-any-return]
    except AttributeError:
        return 0


def alpn_protocols(http2: bool) -> list[str]:
    """The ALPN protocols offered, most preferred first (RFC 7301)."""
    return ["h2", "http/1.1"] if http2 else ["http/1.1"]


class ServerSSLContext(ssl.SSLContext):
    """A server-side :class:`ssl.SSLContext` that also keeps what the ``tls`` extension reports.

    Each connection's SSL object points back to its context, so the facts
    shared by every connection of a listener are found there, not stored
    per connection.
    """

    #: The server's certificate, PEM-encoded (``server_cert`` in the extension).
    server_cert: str | None
    #: OpenSSL cipher names to their IANA numbers (``cipher_suite``).
    cipher_ids: dict[str, int]
    #: Whether clients are asked for a certificate (``cert_reqs`` not CERT_NONE).
    asks_client_cert: bool


def server_context(settings: TLSSettings, *, http2: bool) -> ServerSSLContext:
    """The SSL context of a listener with *settings*; *http2*: offer ``h2`` by ALPN.

    Raises :class:`~channels_server.errors.ConfigurationError` with one line
    naming the file (or the setting) at fault: a file missing or unreadable,
    a certificate or key that is not PEM, an encrypted key without its
    password or with a wrong one, a key that does not match the certificate,
    bad DH parameters or a cipher list that selects nothing.
    """
    context = ServerSSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Renegotiation only serves attacks on a server (CVE-2011-1473 class);
    # TLS 1.3 has none anyway.
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    leaf = _load_certificates(context, settings)
    if settings.dh_params is not None:
        _check_readable(settings.dh_params, "DH parameters (dhParameters)")
        try:
            context.load_dh_params(settings.dh_params)
        except ssl.SSLError as exc:
            raise _file_error("DH parameters (dhParameters)", settings.dh_params, exc) from None
    if settings.ca_certs is not None:
        _load_client_cas(context, settings.ca_certs)
    context.verify_mode = ssl.VerifyMode(settings.cert_reqs)
    if settings.ciphers is not None:
        try:
            context.set_ciphers(settings.ciphers)
        except ssl.SSLError:
            raise ConfigurationError(
                f"TLS cipher list {settings.ciphers!r} (ssl_ciphers) selects no cipher "
                "OpenSSL knows"
            ) from None
    context.set_alpn_protocols(alpn_protocols(http2))
    context.server_cert = ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(leaf))
    # The low 16 bits of OpenSSL's cipher id are the IANA number (0x0300C02F
    # is TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, 0xC02F).
    context.cipher_ids = {cipher["name"]: cipher["id"] & 0xFFFF for cipher in context.get_ciphers()}
    context.asks_client_cert = settings.cert_reqs != ssl.CERT_NONE
    return context


def _load_certificates(context: ssl.SSLContext, settings: TLSSettings) -> str:
    """Load the certificate, its intermediates and the key; the leaf certificate's PEM."""
    certfile = settings.certfile
    keyfile = settings.keyfile or certfile
    certificates = _certificates_in(certfile, "certificate")
    chain = list(certificates)
    if settings.extra_cert_chain is not None:
        chain += _certificates_in(settings.extra_cert_chain, "certificate chain (extraCertChain)")
    if keyfile != certfile:
        _check_readable(keyfile, "private key")
    asked = False

    def password() -> str:
        nonlocal asked
        asked = True
        if settings.password is None:
            # Without a callback OpenSSL would prompt on the terminal.
            raise _NoPassword
        return settings.password

    # OpenSSL reads a certificate chain from one file only: with
    # extraCertChain, the certificates (never the key) go to a private
    # temporary file, removed at once.
    joined = chain if settings.extra_cert_chain is not None else None
    with _chain_file(certfile, joined) as chain_file:
        try:
            context.load_cert_chain(chain_file, keyfile, password)
        except _NoPassword:
            raise ConfigurationError(
                f"cannot load the TLS private key {keyfile}: it is encrypted and no "
                "password was given (ssl_keyfile_password)"
            ) from None
        except ValueError as exc:  # A password over OpenSSL's 1024-byte limit.
            raise ConfigurationError(f"cannot load the TLS private key {keyfile}: {exc}") from None
        except ssl.SSLError as exc:
            if exc.reason == "KEY_VALUES_MISMATCH":
                reason = f"it does not match the certificate {certfile}"
            elif asked:
                reason = "wrong password"
            else:
                reason = "not a PEM private key"
            raise ConfigurationError(
                f"cannot load the TLS private key {keyfile}: {reason}"
            ) from None
        except OSError as exc:
            raise _file_error("private key", keyfile, exc) from None
    return certificates[0]


class _NoPassword(Exception):
    """Raised from the password callback when the key is encrypted and no password was given."""


def _certificates_in(path: str, what: str) -> list[str]:
    """The PEM certificates in the file at *path*, checked by OpenSSL; *what* names the file."""
    try:
        with open(path, "rb") as file:
            text = file.read().decode("ascii", "replace")
    except OSError as exc:
        raise _file_error(what, path, exc) from None
    found = _PEM_CERTIFICATE.findall(text)
    if not found:
        raise ConfigurationError(f"cannot load the TLS {what} {path}: no PEM certificate in it")
    try:
        # Parses every certificate (a throwaway store: nothing is trusted).
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cadata="\n".join(found))
    except ssl.SSLError as exc:
        raise _file_error(what, path, exc) from None
    return found


@contextlib.contextmanager
def _chain_file(certfile: str, certificates: Sequence[str] | None) -> Iterator[str]:
    """*certfile* itself, or a temporary file of *certificates* when there are more to send."""
    if certificates is None:
        yield certfile
        return
    try:
        descriptor, path = tempfile.mkstemp(prefix="channels-server-chain-", suffix=".pem")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write a temporary file to join the TLS certificate {certfile} and its "
            f"extraCertChain: {exc.strerror} (set TMPDIR to a writable directory)"
        ) from None
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write("\n".join(certificates) + "\n")
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _load_client_cas(context: ssl.SSLContext, path: str) -> None:
    what = "client CA certificates (ssl_ca_certs)"
    if not os.path.isdir(path):
        _check_readable(path, what)
    try:
        if os.path.isdir(path):
            context.load_verify_locations(capath=path)
        else:
            context.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError) as exc:
        raise _file_error(what, path, exc) from None


def _check_readable(path: str, what: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise _file_error(what, path, exc) from None


def _file_error(what: str, path: str, exc: OSError) -> ConfigurationError:
    """``cannot load the TLS <what> <path>: <reason>``, on one line."""
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").replace("_", " ").lower() or "OpenSSL cannot read it"
    else:
        reason = (exc.strerror or str(exc)).lower()
    return ConfigurationError(f"cannot load the TLS {what} {path}: {reason}")


# -- one connection -----------------------------------------------------------------------------

#: RFC 4514 §3: the attribute types written by their short names; Python's
#: ``getpeercert()`` gives OpenSSL's long names.
_RFC4514_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
#: Other common attribute types, written as dotted OIDs (RFC 4514 §2.3).
_OIDS = {
    "emailAddress": "1.2.840.113549.1.9.1",
    "serialNumber": "2.5.4.5",
    "surname": "2.5.4.4",
    "title": "2.5.4.12",
    "postalCode": "2.5.4.17",
    "name": "2.5.4.41",
    "givenName": "2.5.4.42",
    "initials": "2.5.4.43",
    "generationQualifier": "2.5.4.44",
    "dnQualifier": "2.5.4.46",
    "pseudonym": "2.5.4.65",
    "businessCategory": "2.5.4.15",
}
_ESCAPED = re.compile(r'([\\"+,;<>])')


def rfc4514_name(subject: Sequence[Sequence[tuple[str, str]]]) -> str:
    """The distinguished name *subject* (as ``getpeercert()["subject"]`` gives it) per RFC 4514.

    The relative names are written last to first (§2.1), the values of a
    multi-valued one joined with ``+``; types without a short name in §3 are
    written as dotted OIDs, with their values as strings (as the
    ``cryptography`` package writes them) rather than hex-encoded BER.
    """
    parts = []
    for relative_name in reversed(subject):
        parts.append(
            "+".join(
                f"{_RFC4514_NAMES.get(kind) or _OIDS.get(kind, kind)}={_escape(value)}"
                for kind, value in relative_name
            )
        )
    return ",".join(parts)


def _escape(value: str) -> str:
    # RFC 4514 §2.4.
    value = _ESCAPED.sub(r"\\\1", value).replace("\x00", "\\00")
    if value[:1] in ("#", " "):
        value = "\\" + value
    if value[-1:] == " " and len(value) > 1:
        value = value[:-1] + "\\ "
    return value


class ConnectionTLS:
    """The TLS side of one connection: what its scopes' ``tls`` extension says.

    :param ssl_object: the transport's ``ssl_object`` (after the handshake).
    """

    __slots__ = ("_extension", "ssl_object")

    def __init__(self, ssl_object: ssl.SSLObject) -> None:
        self.ssl_object = ssl_object
        self._extension: dict[str, Any] | None = None

    @property
    def alpn_protocol(self) -> str | None:
        """The protocol ALPN chose (``"h2"``, ``"http/1.1"``), or None."""
        return self.ssl_object.selected_alpn_protocol()

    def extension(self) -> dict[str, Any]:
        """The ``tls`` extension of a scope on this connection (a new dict each call).

        Present on every TLS connection; the client certificate fields are
        filled when the listener asks clients for a certificate
        (``ssl_cert_reqs`` 1 or 2), and are empty otherwise, as the client
        then sends none. A client certificate that fails verification fails
        the handshake, so ``client_cert_error`` is always None.
        """
        extension = self._extension
        if extension is None:
            extension = self._extension = _extension_of(self.ssl_object)
        return extension.copy()


def _extension_of(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    context = ssl_object.context
    if isinstance(context, ServerSSLContext):
        server_cert = context.server_cert
        cipher_ids = context.cipher_ids
        asks_client_cert = context.asks_client_cert
    else:  # pragma: no cover - every listener's context is made by server_context()
        server_cert, cipher_ids, asks_client_cert = None, {}, True
    chain: list[str] = []
    name: str | None = None
    if asks_client_cert:
        chain = _client_chain(ssl_object)
        if chain:
            subject = (ssl_object.getpeercert() or {}).get("subject", ())
            name = rfc4514_name(subject)  # type: ignore[arg-type]
    cipher = ssl_object.cipher()
    version = ssl_object.version()
    return {
        "server_cert": server_cert,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(version) if version is not None else None,
        "cipher_suite": cipher_ids.get(cipher[0]) if cipher is not None else None,
    }


def _client_chain(ssl_object: ssl.SSLObject) -> list[str]:
    """The client's certificate then the intermediates it sent, PEM-encoded.

    Python before 3.13 gives only the client's own certificate; 3.13's
    ``get_unverified_chain()`` gives what the client sent.
    """
    leaf = ssl_object.getpeercert(binary_form=True)
    if not leaf:
        return []
    chain = [leaf]
    sent = getattr(ssl_object, "get_unverified_chain", None)
    if sent is not None:
        for certificate in sent() or ():
            if certificate != leaf:
                chain.append(certificate)
    return [ssl.DER_cert_to_PEM_cert(der) for der in chain]
