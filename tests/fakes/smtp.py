"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives, for assertions."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    envelope_to: list[str]
    message: EmailMessage

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else ""

    def token(self) -> str:
        """The one-shot token carried by the link in the mail."""
        match = re.search(r"token=([A-Za-z0-9_\-]+)", self.text)
        assert match, f"no token link in mail: {self.text!r}"
        return match.group(1)


class Mailbox:
    def __init__(self, url: str) -> None:
        self.url = url
        self._messages: list[Received] = []
        self._lock = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._messages.append(Received(list(envelope.rcpt_tos), message))
            self._lock.notify_all()
        return "250 OK"

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def for_address(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.envelope_to]

    async def wait_for(self, address: str, *, count: int = 1, timeout: float = 15) -> Received:
        """The ``count``-th mail to ``address``, waiting for the job to deliver it."""
        import anyio

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.for_address(address)
            if len(found) >= count:
                return found[count - 1]
            await anyio.sleep(0.05)
        seen = [m.envelope_to for m in self.messages]
        raise AssertionError(f"no mail #{count} to {address} within {timeout}s; got {seen}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    port = _free_port()
    mailbox = Mailbox(f"smtp://127.0.0.1:{port}?starttls=false&timeout=5")
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
