"""A real SMTP server on loopback (aiosmtpd) that records what it receives and can refuse."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes  # exactly as it came over the wire, CRLF line ends

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def raw_header(self, name: str) -> bytes:
        """The header's bytes as sent, unfolded lines included, to catch RFC 2047 mangling."""
        head = self.raw.split(b"\r\n\r\n", 1)[0]
        lines = head.split(b"\r\n")
        for index, line in enumerate(lines):
            if line.lower().startswith(name.lower().encode() + b":"):
                value = [line]
                for follow in lines[index + 1 :]:
                    if follow[:1] in (b" ", b"\t"):
                        value.append(follow)
                    else:
                        break
                return b"\r\n".join(value)
        raise KeyError(name)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        with self.server.lock:
            if self.server.replies:
                return self.server.replies.pop(0)
            self.server.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or envelope.content),
                )
            )
        return "250 Message accepted for delivery"


def free_port() -> int:
    # aiosmtpd cannot report a port it picked itself (port 0), so pick one first.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.replies: list[str] = []
        self.port = free_port()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        """Start (or start again, on the same port, keeping what was received)."""
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def refuse_next(self, reply: str, times: int = 1) -> None:
        """Answer the next DATA commands with this reply (e.g. '451 4.3.0 try later')."""
        with self.lock:
            self.replies.extend([reply] * times)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(
            f"expected {count} e-mail(s) within {timeout}s, got {len(self.received)}"
        )
