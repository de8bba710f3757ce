"""A TCP proxy on loopback between the gateway and PostgreSQL, which a test can cut or restart.

``cut()`` is a network partition: every byte in either direction is held (nothing is refused,
nothing answered, as when a cable is pulled), and new connections hang. ``restore()`` lets the
held bytes through. ``restart()`` is the server going away: every connection is reset at once
and new ones are refused until ``restore()``.
"""

from __future__ import annotations

import asyncio
import socket
import struct


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._open = asyncio.Event()
        self._open.set()
        self._refusing = False
        self._connections: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self._open.set()
        self._reset_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def cut(self) -> None:
        self._open.clear()

    async def restart(self) -> None:
        self._refusing = True
        self._reset_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def restore(self) -> None:
        self._refusing = False
        self._open.set()
        if self._server is None:
            await self.start()

    def _reset_all(self) -> None:
        for writer in list(self._connections):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0: close with a RST, as a server that died does.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        self._connections.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        await self._open.wait()
        if self._refusing:
            client_writer.transport.abort()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.transport.abort()
            return
        self._connections.update((client_writer, server_writer))
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer),
                             return_exceptions=True)
        for writer in (client_writer, server_writer):
            self._connections.discard(writer)
            writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.transport.abort()
                return
            await self._open.wait()  # held while the network is cut
            writer.write(data)
            await writer.drain()
