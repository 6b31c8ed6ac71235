"""A minimal, fast SMTP sink for benchmarks: accepts everything, counts, discards.

aiosmtpd's default sink saturates around a few hundred messages per second, far below what we
want to measure, so this one does only what smtplib needs (EHLO/HELO, MAIL, RCPT, DATA, RSET,
NOOP, QUIT) with asyncio streams. Run it in its own process so it does not share a GIL with the
sender: `python bench/fastsink.py --port 2525`; it prints "ready" and, on SIGTERM or SIGINT, the
number of messages it received.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

received = 0


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global received
    writer.write(b"220 fastsink ESMTP\r\n")
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-fastsink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 0\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                await reader.readuntil(b"\r\n.\r\n")
                received += 1
                writer.write(b"250 2.0.0 Ok: queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:  # HELO, MAIL, RCPT, RSET, NOOP
                writer.write(b"250 Ok\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(host: str, port: int) -> None:
    server = await asyncio.start_server(handle, host, port, limit=1 << 22)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()
    print(received, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)
