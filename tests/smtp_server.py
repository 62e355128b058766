"""A real SMTP server for the delivery tests: aiosmtpd on 127.0.0.1, in a thread of the
test process, with a handler that can refuse, delay or drop the connection on cue."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Mailbox:
    """The handler: what the server received, and how it should misbehave.

    Attributes:
      received: (envelope recipients, message bytes) of every accepted message.
      refuse: recipient -> the permanent reply it always gets at RCPT.
      temporary: recipient -> how many more times it gets ``451`` at RCPT.
      drop_at: numbers (1-based, counting every DATA) of the DATA commands at which the
        connection is dropped before the message is kept.
      delay: seconds the server takes to reply after it has kept a message (a client
        killed meanwhile never learns that it was accepted).
    """

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    temporary: dict[str, int] = field(default_factory=dict)
    drop_at: set[int] = field(default_factory=set)
    delay: float = 0.0
    data_commands: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        if self.temporary.get(address, 0) > 0:
            self.temporary[address] -= 1
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_commands += 1
        if self.data_commands in self.drop_at:
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        if self.delay:  # queued already: a client gone by now never hears it was
            await asyncio.sleep(self.delay)
        return "250 2.0.0 Ok: queued"

    def messages(self) -> list[tuple[list[str], EmailMessage]]:
        with self.lock:
            received = list(self.received)
        return [(rcpt, email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[misc]
                for rcpt, raw in received]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, str]]:
    """(mailbox, ``smtp://127.0.0.1:PORT``) of a server running for one test."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield mailbox, f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


def attachments(message: EmailMessage) -> dict[str, bytes]:
    return {str(part.get_filename()): part.get_content() for part in message.iter_attachments()}


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1, valid for a day; the client trusts it through
    ``SSL_CERT_FILE``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_smtp_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                    ) -> Iterator[tuple[Mailbox, str, str]]:
    """(mailbox, ``smtp://`` URL, ``smtps://`` URL) of two servers that take mail only
    over TLS (STARTTLS required on the first, TLS from the start on the second) and only
    from user ``billing`` with password ``s3cret``."""
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"billing", b"s3cret")
        return AuthResult(success=ok, handled=False)  # a refusal gets the standard 535

    mailbox = Mailbox()
    common = dict(hostname="127.0.0.1", authenticator=authenticator, auth_required=True)
    starttls = Controller(mailbox, port=free_port(), tls_context=context,
                          require_starttls=True, **common)  # type: ignore[arg-type]
    # With TLS from the start aiosmtpd cannot tell that the session is encrypted, so it
    # would not offer AUTH unless told that it need not wait for STARTTLS.
    implicit = Controller(mailbox, port=free_port(), ssl_context=context,
                          auth_require_tls=False, **common)  # type: ignore[arg-type]
    starttls.start()
    implicit.start()
    try:
        yield (mailbox, f"smtp://billing@127.0.0.1:{starttls.port}",
               f"smtps://billing@127.0.0.1:{implicit.port}")
    finally:
        starttls.stop()
        implicit.stop()
