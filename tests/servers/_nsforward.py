"""TCP forwarder from root-namespace loopback ports into a network namespace (stdlib only).

Started as ``ip netns exec NS python _nsforward.py FD:PORT [FD:PORT ...]``. Each FD is a
listening socket the parent created (and bound to 127.0.0.1 in the root namespace) and
passed down; sockets keep the namespace they were created in, so accepting on them still
serves root-namespace clients while every outgoing connection made here to
127.0.0.1:PORT lands on the namespace's own loopback. One process, no fork per connection.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

TARGET_HOST = "127.0.0.1"
CONNECT_TIMEOUT = 10.0
CHUNK = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            writer.close()


def _handler(port: int):
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.wait_for(
                asyncio.open_connection(TARGET_HOST, port), CONNECT_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError):
            client_w.close()
            return
        for w in (client_w, upstream_w):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))
        finally:
            client_w.close()
            upstream_w.close()

    return handle


async def main(pairs: list[tuple[int, int]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = []
    for fd, port in pairs:
        listener = socket.socket(fileno=fd)
        listener.setblocking(False)
        servers.append(await asyncio.start_server(_handler(port), sock=listener))
    print("forwarding " + ", ".join(f"fd {fd} -> {TARGET_HOST}:{p}" for fd, p in pairs), flush=True)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    parsed = []
    for arg in sys.argv[1:]:
        fd, _, port = arg.partition(":")
        parsed.append((int(fd), int(port)))
    if not parsed:
        sys.exit("usage: _nsforward.py FD:PORT [FD:PORT ...]")
    asyncio.run(main(parsed))
