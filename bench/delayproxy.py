#!/usr/bin/env python3
"""bench/delayproxy.py -- a TCP proxy that adds a fixed one-way delay.

    delayproxy.py --listen 127.0.0.1:PORT --connect 127.0.0.1:PORT --delay-ms 5

Every chunk read from one side is written to the other side DELAY ms after
it was read, in order, without holding up the reading of later chunks, so
the proxy adds latency but does not limit throughput: a round trip through
it takes 2 * DELAY more (5 ms each way = 10 ms RTT).  With --delay-ms 0
chunks are forwarded as soon as they are read (to measure the proxy's own
cost).  The kernel here has no netem, hence this.  Standard library only;
stops on SIGTERM/SIGINT.  Prints "listening PORT" once ready.
"""

import argparse
import asyncio
import collections
import signal
import socket
import sys

CHUNK = 256 * 1024


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    try:
        if delay <= 0:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            return
        queue = collections.deque()
        ready = asyncio.Event()
        done = False

        async def read_side():
            nonlocal done
            while True:
                data = await reader.read(CHUNK)
                queue.append((loop.time() + delay, data))
                ready.set()
                if not data:
                    done = True
                    return

        task = asyncio.ensure_future(read_side())
        try:
            while True:
                if not queue:
                    ready.clear()
                    await ready.wait()
                    continue
                due, data = queue[0]
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                queue.popleft()
                if not data:
                    break
                writer.write(data)
                # coalesce whatever else is already due into this write
                while queue and queue[0][1] and queue[0][0] <= loop.time():
                    writer.write(queue.popleft()[1])
                await writer.drain()
        finally:
            task.cancel()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def handle(creader, cwriter, target, delay):
    try:
        sreader, swriter = await asyncio.open_connection(*target)
    except OSError:
        cwriter.close()
        return
    for w in (cwriter, swriter):
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await asyncio.gather(pump(creader, swriter, delay), pump(sreader, cwriter, delay))
    except asyncio.CancelledError:
        pass
    finally:
        for w in (cwriter, swriter):
            w.close()


async def main_async(args):
    host, port = args.listen.rsplit(":", 1)
    thost, tport = args.connect.rsplit(":", 1)
    delay = args.delay_ms / 1000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, (thost, int(tport)), delay), host, int(port),
        reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("listening %d" % server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await stop.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--listen", required=True, help="HOST:PORT (port 0: any free port)")
    ap.add_argument("--connect", required=True, help="HOST:PORT of the server")
    ap.add_argument("--delay-ms", type=float, default=5.0, help="one-way delay (default 5)")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
