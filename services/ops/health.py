"""``/healthz`` beside ``/metrics`` on a Kafka service's metrics port: is each dependency reachable?

A process keeps one ``Health``: the notifier's store writer reports the store, a probe thread asks
the broker every few seconds. ``/healthz`` answers 200 ``{"status": "ok", ...}`` while every check
is up and 503 ``{"status": "degraded", ...}`` with the failing checks and since when otherwise, so
an orchestrator or a person sees the degradation without reading logs; the same facts are the
gauges ``vpa_broker_up`` and ``vpa_store_up``.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Optional

log = logging.getLogger("vpa.health")
PROBE_INTERVAL = 5.0  # seconds between two broker probes
PROBE_TIMEOUT = 5.0


@dataclass
class Check:
    ok: bool
    detail: str
    since: float  # time.time() of the last change


class Health:
    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._lock = threading.Lock()

    def set(self, name: str, ok: bool, detail: str = "") -> None:
        with self._lock:
            held = self._checks.get(name)
            if held is None or held.ok != ok:
                self._checks[name] = Check(ok, detail, time.time())
            else:
                held.detail = detail

    def report(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            checks = {n: {"ok": c.ok, "detail": c.detail, "since": round(c.since, 3)} for n, c in self._checks.items()}
        ok = all(c["ok"] for c in checks.values())
        return ok, {"status": "ok" if ok else "degraded", "checks": checks}


HEALTH = Health()  # the process's


def wsgi_app(metrics_app: Callable, health: Health = HEALTH) -> Callable:
    """``/healthz`` from ``health``, every other path from Prometheus' WSGI app."""
    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok, body = health.report()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
            return [json.dumps(body).encode()]
        return metrics_app(environ, start_response)
    return app


def serve(port: int, health: Health = HEALTH) -> None:
    """``/metrics`` and ``/healthz`` on ``port`` in a daemon thread."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    httpd = make_server("", port, wsgi_app(make_wsgi_app(), health), ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True).start()


def probe_broker(describe: Callable[[float], Awaitable[list[dict]]], label: str, health: Health = HEALTH,
                 interval: float = PROBE_INTERVAL, gauge: Optional[Any] = None,
                 brokers: Optional[tuple[Any, Any]] = None) -> threading.Thread:
    """Ask the brokers for their cluster metadata (``describe(timeout)``, the broker adapter's
    ``cluster_brokers``) every ``interval`` seconds, in a thread with an event loop of its own (the
    service's loop does the work); reports ``broker`` in ``health``, ``label`` naming the brokers.
    ``brokers``: the gauges (known, reachable) of every broker ever seen (``BrokerWatch``)."""
    import asyncio

    from services.ops.broker_watch import BrokerWatch

    watch = BrokerWatch()

    async def once() -> list[dict]:
        return await describe(PROBE_TIMEOUT)

    def run() -> None:
        loop = asyncio.new_event_loop()
        while True:
            seen: list[dict] = []
            try:
                seen = loop.run_until_complete(once())
                health.set("broker", True, label)
                if gauge is not None:
                    gauge.set(1)
            except Exception as exc:  # noqa: BLE001 - unreachable, refused, timed out: all mean down
                health.set("broker", False, f"{type(exc).__name__}: {exc}"[:300])
                if gauge is not None:
                    gauge.set(0)
            known, up = watch.observe(seen)
            if brokers is not None:
                brokers[0].set(known)
                brokers[1].set(up)
            time.sleep(interval)  # a probe period in a thread of its own

    thread = threading.Thread(target=run, name="broker-probe", daemon=True)
    thread.start()
    return thread
