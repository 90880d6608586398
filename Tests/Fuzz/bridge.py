"""A TCP-to-Unix-socket forwarder: schemathesis speaks TCP, Till's register API listens only on its socket.

Each TCP connection gets its own connection to the socket, byte for byte both ways, so that Till sees exactly
what a register on the socket would (a test-only listener in Till itself would be one more thing to secure).

Run:  python3 Tests/Fuzz/bridge.py SOCKET_PATH [PORT]   (port 0, the default, picks a free one; it prints it)
      On SIGTERM it prints how many connections it forwarded, and exits.
"""

from __future__ import annotations

import asyncio
import signal
import sys

connections = 0


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        # Half-close where possible: an HTTP client that closes its side still reads the answer.
        try:
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
        except (ConnectionError, OSError):
            pass


async def _serve_one(socket_path: str, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
    global connections
    connections += 1
    try:
        till_reader, till_writer = await asyncio.open_unix_connection(socket_path)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(_pipe(client_reader, till_writer), _pipe(till_reader, client_writer))
    for writer in (till_writer, client_writer):
        writer.close()


async def serve(socket_path: str, port: int = 0, ready: "asyncio.Future[int] | None" = None) -> None:
    """Forwards 127.0.0.1:port to `socket_path` until cancelled; `ready` gets the bound port."""
    server = await asyncio.start_server(lambda r, w: _serve_one(socket_path, r, w), "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready.set_result(bound)
    else:
        print(bound, flush=True)
    async with server:
        await server.serve_forever()


async def _main(socket_path: str, port: int) -> None:
    serving = asyncio.ensure_future(serve(socket_path, port))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, serving.cancel)
    try:
        await serving
    except asyncio.CancelledError:
        pass
    print(f"connections {connections}", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(_main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
    except KeyboardInterrupt:
        pass
