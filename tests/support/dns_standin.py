"""A small authoritative DNS server on loopback (UDP), built on dnspython's wire format: it
answers TXT questions from a dict and NXDOMAIN for everything else, so a DKIM check asks real
DNS over a real socket. ``records`` may be changed while it runs."""

from __future__ import annotations

import socket
import threading
from types import TracebackType

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsStandIn:
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.questions: list[str] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns-standin", daemon=True)

    def __enter__(self) -> DnsStandIn:
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            self.questions.append(name)
            values = self.records.get(name)
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                strings = []
                for value in values:
                    # A TXT string holds at most 255 bytes: longer values are split, as
                    # DNS servers publish a 2048-bit key.
                    chunks = [value[i : i + 255] for i in range(0, len(value), 255)]
                    strings.append(" ".join(f'"{chunk}"' for chunk in chunks))
                response.answer.append(
                    dns.rrset.from_text_list(question.name, 300, "IN", "TXT", strings)
                )
            self._socket.sendto(response.to_wire(), client)
