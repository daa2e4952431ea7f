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
        from ldap3.protocol.rfc4511 import AttributeSelection, LDAPMessage
        from pyasn1.codec.ber import decoder, encoder

        decoded, _ = decoder.decode(message, asn1Spec=LDAPMessage())
        op = decoded["protocolOp"]
        if op.getName() != "searchRequest":
            return message
        request = op["searchRequest"]
        old = [str(a) for a in request["attributes"]]
        new = [limit_attribute(a, self.max_values, self.attributes) for a in old]
        if new == old:
            return message
        selection = AttributeSelection()
        for i, a in enumerate(new):
            selection.setComponentByPosition(i, a)
        request.setComponentByName("attributes", selection)
        self.rewritten += 1
        return encoder.encode(decoded)
