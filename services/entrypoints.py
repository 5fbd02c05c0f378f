"""Composition roots: what ``vpa run SERVICE`` starts (``services.cli`` parses, this wires).

The one place, with ``services.bootstrap``, that knows which adapters (faust, aiokafka,
asyncpg, aiohttp, Prometheus) go with which core.
"""
from __future__ import annotations

import asyncio
import logging


def run_service(name: str, proc=None) -> int:  # noqa: ANN001 - a Processor (tests inject one)
    """One service against Kafka until SIGTERM (faust's worker stops cleanly on it)."""
    import faust

    from services.bootstrap import follows, is_followed, processor
    from services.common.kafka.topics import ensure_topics, internal_topics
    from services.common.kafka_config import KafkaConfig
    from services.common.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cfg = KafkaConfig.from_env(name)
    if name == "dashlet":
        from services.dashlet.api import serve_forever

        return serve_forever()
    # Every topic the service touches exists before its consumer joins the group.
    asyncio.run(ensure_topics(cfg, internal_topics(cfg, name, follows(name))))
    _start_metrics(cfg.metrics_port)
    if name == "notifier":
        from services.notifier.service import build_notifier_app

        app = build_notifier_app(cfg)
    else:
        from services.common.kafka.stream_app import build_stream_app

        app = build_stream_app(proc or processor(name), Settings.from_env(), cfg, follows(name),
                               is_followed(name)).app
    worker = faust.Worker(app, loglevel="INFO", quiet=True, override_logging=False)
    worker.execute_from_commandline()
    return 0


def _start_metrics(port: int | None) -> None:
    if port:
        from prometheus_client import start_http_server

        start_http_server(port)
