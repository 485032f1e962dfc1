"""The bare app of bench_exchange.py: a minimal sync FastAPI app, served by hypercorn.

    python tests/bench/_bare_app.py REPLY.json PORT

POST /exchanges parses a body of the gateway's request shape and returns REPLY.json (one real
exchange reply of the gateway, captured by the benchmark: the same rows, the same bytes to
encode); GET /health is the trivial endpoint. No database, no policy, no token check: the
reference the gateway's exchange is compared with. Served like `dsgw serve` serves the gateway
(hypercorn's asyncio server, one process, no access log).
"""

import asyncio
import json
import signal
import sys
from pathlib import Path

from fastapi import FastAPI
from hypercorn.asyncio import serve
from hypercorn.config import Config
from pydantic import BaseModel


class Ask(BaseModel):
    """The fields the benchmark sends to the gateway's POST /exchanges."""

    contract_id: str
    purpose: str
    limit: int | None = None


def make_app(reply: dict) -> FastAPI:
    """Return the bare app serving `reply` on POST /exchanges."""
    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/exchanges")
    def exchanges(ask: Ask) -> dict:
        return reply

    return app


def main() -> None:
    reply = json.loads(Path(sys.argv[1]).read_text())
    config = Config()
    config.bind = [f"127.0.0.1:{int(sys.argv[2])}"]
    config.accesslog = None
    config.errorlog = "-"

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(make_app(reply), config, shutdown_trigger=stop.wait)

    asyncio.run(run())


if __name__ == "__main__":
    main()
