#!/usr/bin/env python3
"""bench/wan_proxy.py LISTEN_PORT TARGET_HOST:PORT DELAY_MS [LOG]

A TCP proxy that plays a wide-area link: every chunk of data is held DELAY_MS in each
direction before it is passed on (so a round trip costs 2 * DELAY_MS more), without
limiting bandwidth: chunks are pipelined, each released DELAY_MS after it arrived. netem is
not available on our machines; this is what bench/ scripts put between plakar (or restic)
and a server on 127.0.0.1. Prints "ready" once it listens.

With LOG, every HTTP request that goes through is written there as one tab-separated line
when the next one on its connection starts (or the connection closes): connection number,
method, path, Range header, then the times (monotonic seconds, as seen by the proxy) of the
request, of the first and of the last reply byte, and the reply's bytes. bench/wan.sh reads
it to count GETs, their sizes and how many were in flight.
"""
import asyncio
import re
import sys
import time

METHOD = re.compile(rb"^(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/1\.[01]\r\n")
RANGE = re.compile(rb"\r\nrange: *([^\r]*)", re.I)


class Log:
    """One connection's requests: the one in progress, flushed when the next starts."""

    def __init__(self, out, conn):
        self.out, self.conn, self.cur = out, conn, None

    def request(self, data):
        m = METHOD.match(data)
        if not m:
            return
        self.flush()
        r = RANGE.search(data)
        rng = r.group(1).decode() if r else "-"
        self.cur = [m.group(1).decode(), m.group(2).decode(), rng, time.monotonic(), 0.0, 0.0, 0]

    def reply(self, n):
        if self.cur is None:
            return
        now = time.monotonic()
        if not self.cur[6]:
            self.cur[4] = now
        self.cur[5] = now
        self.cur[6] += n

    def flush(self):
        if self.cur is not None and self.out is not None:
            m, path, rng, t0, t1, t2, n = self.cur
            self.out.write(f"{self.conn}\t{m}\t{path}\t{rng}\t{t0:.6f}\t{t1:.6f}\t{t2:.6f}\t{n}\n")
            self.out.flush()
        self.cur = None


async def pipe(reader, writer, delay, seen=None):
    queue = asyncio.Queue()

    async def release():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    sender = asyncio.create_task(release())
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            if seen is not None:
                seen(data)
            queue.put_nowait((time.monotonic() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((time.monotonic() + delay, None))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def main():
    port, target, delay_ms = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    host, tport = target.rsplit(":", 1)
    delay = delay_ms / 1000.0
    out = open(sys.argv[4], "a") if len(sys.argv) > 4 else None
    conns = [0]

    async def handle(cr, cw):
        conns[0] += 1
        log = Log(out, conns[0])
        try:
            sr, sw = await asyncio.open_connection(host, int(tport))
        except OSError:
            cw.close()
            return
        if out is None:
            await asyncio.gather(pipe(cr, sw, delay), pipe(sr, cw, delay))
        else:
            await asyncio.gather(pipe(cr, sw, delay, log.request), pipe(sr, cw, delay, lambda d: log.reply(len(d))))
            log.flush()
        for w in (cw, sw):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
