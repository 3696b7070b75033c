"""A stand-in for `python -m fake_server` in the process-fault tests.

Same command line and startup line as the real one; it serves a plain TCP echo
on --port and counts its starts in the --db file, so a restart on the same
database is observable. `--fail-with N` exits at once with code N;
`--garbage` prints a non-JSON line first and then a broken JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path


async def serve(args: argparse.Namespace) -> None:
    db = Path(args.db)
    starts = int(db.read_text() or "0") + 1 if db.exists() else 1
    db.write_text(str(starts))

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(4096):
            writer.write(chunk)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, args.host, args.port)
    port = server.sockets[0].getsockname()[1]
    print("starting up", flush=True)  # a log line before the JSON line is allowed
    line = {
        "rest": f"https://{args.host}:{port}",
        "gateway": f"wss://{args.host}:{port}/ws?v=1&encoding=json",
        "control": f"http://{args.host}:1",
        "control_token": "secret-token",
        "ca": "/nonexistent/ca.pem",
        "health": f"https://{args.host}:{port}/health",
        "starts": starts,
    }
    print(json.dumps(line), flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--db", required=True)
    parser.add_argument("--timescale", type=float, default=1.0)
    parser.add_argument("--fail-with", type=int, default=0)
    parser.add_argument("--garbage", action="store_true")
    args = parser.parse_args()
    if args.fail_with:
        print("cannot open the database", file=sys.stderr, flush=True)
        sys.exit(args.fail_with)
    if args.garbage:
        print('{"rest": ', flush=True)
        asyncio.run(asyncio.sleep(30))
        return
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
