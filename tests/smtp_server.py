"""A real SMTP server for the delivery tests: aiosmtpd on 127.0.0.1, in a thread of the
test process, with a handler that can refuse, delay or drop the connection on cue."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


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
