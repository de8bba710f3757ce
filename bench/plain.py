"""The baseline of the CPU figure: a plain aiohttp JSON handler, in a process of its own.

``python -m bench.plain PORT [--loop asyncio|uvloop]``: every POST's body is decoded as JSON
and answered with a small JSON document, the least any JSON service does per request. It runs
on the loop ``gateway serve`` runs on (``gateway.eventloop``) unless told otherwise, so the
ratio of the two processes' CPU measures the gateway's own work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from aiohttp import web


async def _handle(request: web.Request) -> web.Response:
    document = await request.json()
    return web.json_response({"received": True, "fields": len(document),
                              "message_id": request.headers.get("X-Message-Id")})


async def _serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/{path:.*}", _handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(json.dumps({"listening": port, "loop": type(loop).__module__}), flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plain")
    parser.add_argument("port", type=int)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"))
    args = parser.parse_args()
    if args.loop == "asyncio":
        asyncio.run(_serve(args.port))
        return
    if args.loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(args.port))
        return
    from gateway.eventloop import run

    run(_serve(args.port))


if __name__ == "__main__":
    main()
