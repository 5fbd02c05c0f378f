"""``vpa demo``: the embedded runner, an embedded PostgreSQL and the dashlet on one machine.

The sample company's history is replayed in stream time, then the clock follows the wall
clock (one tick a second), so follow-ups fall due as they would in production.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
from datetime import datetime, timezone
from typing import Optional

from aiohttp import web

from services.bootstrap import processors
from services.common.clock import StreamClock
from services.common.embedded_runner import EmbeddedRunner
from services.common.settings import Settings
from services.dashlet.api import build_app
from services.dashlet.auth import Principal, tokens_from_env
from services.dashlet.sample import sample_lines
from services.notifier.service import write_batch

log = logging.getLogger("vpa.demo")


class EmbeddedPipeline:
    """The embedded runner plus the notifier step into the store, behind one lock."""

    def __init__(self, runner: EmbeddedRunner, store) -> None:  # noqa: ANN001
        self.runner, self.store, self._lock = runner, store, asyncio.Lock()

    async def feed(self, lines: list[str], origin: str) -> None:
        async with self._lock:
            for n, line in enumerate(lines, 1):
                self.runner.submit_raw(line, f"{origin}:{n}")
            await self._flush()

    async def tick(self, now: datetime) -> None:
        async with self._lock:
            self.runner.advance_to(now)
            await self._flush()

    async def command(self, raw: bytes, vpa_id: str) -> Optional[str]:
        async with self._lock:
            before = len(self.runner.dlq)
            self.runner.submit_raw(raw, "api")
            await self._flush()
            new = self.runner.dlq[before:]
            return new[0].reason if new else None

    async def _flush(self) -> None:
        tasks = self.runner.drain_tasks()
        if tasks:
            await write_batch(self.store, tasks)


async def start_demo(host: str, port: int, data_dir: str, database_url: Optional[str]):
    from services.notifier.store import open_store

    settings = Settings.from_env()
    store = await open_store(database_url, data_dir)
    pipeline = EmbeddedPipeline(EmbeddedRunner(processors(), settings, StreamClock()), store)
    await pipeline.feed(sample_lines(datetime.now(settings.tz).date(), settings.tz), "sample")
    tokens = tokens_from_env()
    if not tokens:
        tokens = {secrets.token_urlsafe(16): Principal("VM", "vpa_manager")}
    app = build_app(store, pipeline.command, tokens)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    actual_port = site._server.sockets[0].getsockname()[1]  # port 0 picks a free one (tests)

    async def follow_wall_clock() -> None:
        while True:
            await asyncio.sleep(1)
            await pipeline.tick(datetime.now(timezone.utc))

    ticker = asyncio.create_task(follow_wall_clock())

    async def stop() -> None:
        ticker.cancel()
        await runner.cleanup()
        await store.close()
        if not database_url:  # the demo started its own PostgreSQL: leave nothing running
            from services.common import embedded_pg

            await asyncio.to_thread(embedded_pg.stop, data_dir)

    return actual_port, tokens, stop


def run_demo(host: str, port: int, data_dir: str, database_url: Optional[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # initdb chatter on first start

    async def main() -> None:
        actual, tokens, stop = await start_demo(host, port, data_dir, database_url or os.environ.get("DATABASE_URL"))
        print(f"VPA Manager Dashlet: http://{host}:{actual}/", flush=True)
        for token, who in tokens.items():
            print(f"login token ({who.initials}, {who.role}): {token}", flush=True)
            print(f"  or open http://{host}:{actual}/#token={token}", flush=True)
        print("Ctrl-C stops the demo.", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0
