"""A loopback TCP proxy that delays every chunk by a fixed time each way: a Redis with a
hosted service's round trip on one machine.

    .venv/bin/python bench/delay_proxy.py --target-port 6379 --delay-ms 1.5 [--port N]

Prints the port it listens on, then forwards until killed. A chunk read at t goes out at
t + delay, in order, so the delay adds latency without limiting throughput (pipelined
commands stay pipelined), as a network link does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    pending: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await pending.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    sender = asyncio.create_task(send())
    while True:
        try:
            data = await reader.read(65536)
        except OSError:
            data = b""
        pending.put_nowait((loop.time() + delay, data))
        if not data:
            break
    await sender


async def _main(port: int, target_port: int, delay: float) -> None:
    async def connection(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(_forward(client_r, server_w, delay), _forward(server_r, client_w, delay))

    server = await asyncio.start_server(connection, "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=1.5)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(_main(args.port, args.target_port, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
