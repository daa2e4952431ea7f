"""A TCP proxy that makes a directory enforce ranged retrieval the way Windows AD does.

Windows AD never returns more than MaxValRange (1,500 by default) values of a multi-valued
attribute in one answer: asked for ``member`` (or ``member;range=0-*``, or a wider range) it sends
``member;range=0-1499`` and the client must ask for the next range. Samba honours ranges when
asked but never imposes one. :class:`RangeLimitProxy` sits in front of a real server (Samba) and
rewrites the attribute list of every SearchRequest so that no more than ``max_values`` values of
the listed attributes are asked for: the real server then answers exactly as a Windows DC with
that MaxValRange would. Responses pass through untouched. Plain LDAP only (no TLS).
"""

from __future__ import annotations

import contextlib
import socket
import threading

from ._util import LOOPBACK

__all__ = ["RangeLimitProxy", "limit_attribute"]


def limit_attribute(selector: str, max_values: int, attributes: tuple[str, ...]) -> str:
    """``member`` → ``member;range=0-<max-1>``; ``member;range=lo-*`` or a wider range → capped."""
    name, _, bounds = selector.partition(";range=")
    if name.lower() not in attributes:
        return selector
    low_text, _, high = bounds.partition("-") if bounds else ("0", "", "*")
    low = int(low_text or 0)
    cap = low + max_values - 1
    if high == "*" or int(high) > cap:
        return f"{name};range={low}-{cap}"
    return selector


def _message_size(data: bytes | bytearray) -> int:
    """Length of the BER-encoded LDAPMessage at the start of ``data``, -1 when incomplete."""
    if len(data) < 2:
        return -1
    if data[1] < 0x80:
        return data[1] + 2
    n = data[1] & 0x7F
    if len(data) < 2 + n:
        return -1
    return int.from_bytes(data[2:2 + n], "big") + 2 + n


class RangeLimitProxy:
    """``with RangeLimitProxy(host, port, max_values=1500) as proxy: proxy.uri ...``"""

    def __init__(self, host: str, port: int, max_values: int = 1500,
                 attributes: tuple[str, ...] = ("member",)) -> None:
        self.target = (host, port)
        self.max_values = max_values
        self.attributes = tuple(a.lower() for a in attributes)
        self.rewritten = 0
        """How many search requests were rewritten (tests assert the proxy did something)."""
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        assert self._listener is not None
        return self._listener.getsockname()[1]

    @property
    def uri(self) -> str:
        return f"ldap://{LOOPBACK}:{self.port}"

    def start(self) -> "RangeLimitProxy":
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(16)
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._stop.set()
        for s in [self._listener, *self._sockets]:
            if s is not None:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> "RangeLimitProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target, *args) -> None:  # noqa: ANN001
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target, timeout=30)
            server.settimeout(None)
            self._sockets += [client, server]
            self._spawn(self._pump, server, client, False)
            self._spawn(self._pump, client, server, True)

    def _pump(self, src: socket.socket, dst: socket.socket, rewrite: bool) -> None:
        buffer = bytearray()
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if not rewrite:
                    dst.sendall(chunk)
                    continue
                buffer += chunk
                while True:
                    size = _message_size(buffer)
                    if size < 0 or len(buffer) < size:
                        break
                    message, buffer = bytes(buffer[:size]), buffer[size:]
                    dst.sendall(self._rewrite(message))
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _rewrite(self, message: bytes) -> bytes:
        """Cap the ranged attributes of a SearchRequest; everything else passes unchanged.

        BER is walked by hand (pyasn1 with ldap3's spec cannot decode every filter ldap3 encodes,
        e.g. ``(!(...))``): LDAPMessage = SEQUENCE { messageID, protocolOp, [0] controls OPTIONAL };
        SearchRequest = [APPLICATION 3] { base, scope, deref, sizeLimit, timeLimit, typesOnly,
        filter, attributes SEQUENCE OF OCTET STRING }.
        """
        _, body, end = _tlv(message, 0)
        _, _, after_id = _tlv(message, body)  # messageID
        op_tag, op_body, op_end = _tlv(message, after_id)
        if op_tag != 0x63:  # not a searchRequest
            return message
        pos = op_body
        for _ in range(7):  # base … filter
            pos = _tlv(message, pos)[2]
        attrs_tag, attrs_body, attrs_end = _tlv(message, pos)
        old: list[str] = []
        p = attrs_body
        while p < attrs_end:
            _, vb, ve = _tlv(message, p)
            old.append(message[vb:ve].decode("utf-8"))
            p = ve
        new = [limit_attribute(a, self.max_values, self.attributes) for a in old]
        if new == old:
            return message
        self.rewritten += 1
        attrs = _encode(0x30, b"".join(_encode(0x04, a.encode("utf-8")) for a in new))
        search = _encode(0x63, message[op_body:pos] + attrs + message[attrs_end:op_end])
        return _encode(0x30, message[body:after_id] + search + message[op_end:end])


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the single-byte-tag TLV at ``pos``."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    n = first & 0x7F
    length = int.from_bytes(data[pos + 2:pos + 2 + n], "big")
    return tag, pos + 2 + n, pos + 2 + n + length


def _encode(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + value
