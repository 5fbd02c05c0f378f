"""Composition roots: what ``vpa run SERVICE`` starts (``services.app.cli`` parses, this wires).

The one place, with ``services.app.bootstrap``, that knows which adapters (aiokafka,
asyncpg, aiohttp, Prometheus) go with which core.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from schemas.topics import Topic

if TYPE_CHECKING:
    from services.runners.embedded.runner import EmbeddedRunner
    from services.config.settings import Settings


def replay(paths: list[str], settings: "Settings", until: Optional[datetime] = None,
           keep_versions: bool = False, on_progress: Any = None) -> "EmbeddedRunner":
    """``vpa replay``: every service in one embedded runner, in stream time, over ``paths``.

    ``keep_versions``: the runner keeps every task version (tests); ``vpa replay`` keeps only the
    latest of each task with its history folded in, so memory does not grow with versions."""
    from services.app.bootstrap import processors
    from services.core.clock import StreamClock
    from services.engine.records import EngineLimits
    from services.runners.embedded.replay import feed
    from services.runners.embedded.runner import EmbeddedRunner

    runner = EmbeddedRunner(processors(), settings, StreamClock(), limits=EngineLimits.of(settings),
                            keep_versions=keep_versions)
    return feed(runner, paths, until, on_progress)


def history_from_kafka(folder: str, days: Optional[int]) -> tuple[list[str], str]:
    """The retained ``vpa.events``, ``vpa.commands`` and ``at.roster`` as one JSONL file in
    ``folder`` (ordered as the services merge them), read without a consumer group; with ``days``
    only the last ``days`` days. Returns the file and a line saying how far back the history reaches."""
    import os
    from datetime import timedelta, timezone

    from services.broker.client import read_retained
    from services.engine.order import TOPIC_RANK
    from services.config.kafka import KafkaConfig
    from services.core.timeutil import parse

    cfg = KafkaConfig.from_env("whatif")
    records = asyncio.run(read_retained(cfg, (Topic.events, Topic.commands, Topic.roster)))
    keyed = []
    for r in records:
        try:
            at = parse(json.loads(r.value)["occurred_at"])
        except Exception:  # noqa: BLE001 - an invalid record: the replay reports it, at the end
            at = None
        keyed.append((at, TOPIC_RANK.get(r.topic, 3), r.partition, r.offset, r.value or b""))
    dated = [k for k in keyed if k[0] is not None]
    cut = max(k[0] for k in dated) - timedelta(days=days) if days and dated else None
    kept = sorted((k for k in dated if cut is None or k[0] >= cut), key=lambda k: (k[0], k[1], k[2], k[3]))
    kept += [k for k in keyed if k[0] is None]
    path = os.path.join(folder, "history.jsonl")
    with open(path, "wb") as f:
        for k in kept:
            f.write(k[4].replace(b"\n", b" ") + b"\n")
    first = min((k[0] for k in kept if k[0] is not None), default=None)
    reach = (f"Kafka: {len(kept):,} retained records ({cfg.bootstrap_servers}), history from "
             f"{first.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if first else "Kafka: no retained records")
    return [path], reach


def whatif(paths: list[str], sets: list[str], since: Optional[datetime], until: Optional[datetime],
           as_json: bool, from_kafka: bool = False, days: Optional[int] = None, html: Optional[str] = None,
           progress: bool = False) -> int:
    """``vpa whatif``: ``paths`` (or the history retained in Kafka) replayed with the current
    business-rule settings and with ``sets`` changed; prints how the work differs. 2 on a bad
    --set (the reason on stderr)."""
    import os
    import sys
    import tempfile

    from services.config.loader import ConfigError
    from services.runners.embedded.replay import final_tasks
    from services.whatif.compare import WhatIfError, compare, dumps, render_text, rule_changes, settings_pair

    try:
        changes = rule_changes(sets)
        current, changed = settings_pair(os.environ, changes)
    except (WhatIfError, ConfigError) as exc:
        print(f"vpa whatif: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vpa-whatif-") as folder:
        reach = None
        if from_kafka:
            try:
                paths, reach = history_from_kafka(folder, days)
            except Exception as exc:  # noqa: BLE001 - the cluster: one line, no traceback
                print(f"vpa whatif: cannot read the history from Kafka ({type(exc).__name__}: {exc})", file=sys.stderr)
                return 1
            print(f"vpa whatif: {reach}", file=sys.stderr)
        def step(half: int) -> Any:  # --progress: "progress 0.42" lines on stderr, for a job
            if not progress:
                return None
            return lambda done, total: print(f"progress {(half + done / total) / 2:.2f}", file=sys.stderr,
                                             flush=True)
        base = final_tasks(replay(paths, current, until, on_progress=step(0)).drain_tasks())
        other = final_tasks(replay(paths, changed, until, on_progress=step(1)).drain_tasks())
    report = compare(base, other, current.tz, changes, since, until)
    if reach:
        report["history"] = reach
    if html:
        from services.whatif.report import render_html

        with open(html, "w", encoding="utf-8") as f:
            f.write(render_html(report))
        print(f"vpa whatif: the report is in {html}", file=sys.stderr)
    sys.stdout.write(dumps(report) if as_json else render_text(report))
    return 0


def verify(replay_files: Optional[list[str]], until: Optional[datetime], as_json: bool,
           replay_versions: bool = True) -> int:
    """``vpa verify``: the store against ``dashlet.tasks`` and, given input files, ``vpa replay``.
    Prints the report; 0 without drift, 1 with."""
    import sys

    from services.config.kafka import KafkaConfig
    from services.runners.embedded.replay import final_tasks
    from services.config.process import StoreConfig
    from services.config.settings import Settings
    from services.notifier.verify import render, verify as compare_all

    kafka, store = KafkaConfig.from_env("verify"), StoreConfig.from_env()
    expected = final_tasks(replay(replay_files, Settings.from_env(), until).drain_tasks()) if replay_files else None
    report = asyncio.run(compare_all(kafka, store.url, store.data_dir, expected, replay_versions))
    sys.stdout.write(render(report, as_json))
    return 0 if report.ok else 1


def run_service(name: str, proc=None) -> int:  # noqa: ANN001 - a Processor (tests inject one)
    """One service against Kafka until SIGTERM (a clean stop within 5 s: services.ops.lifecycle)."""
    from services.app.bootstrap import follows, is_followed, processor
    from services.broker.topic_setup import ensure_topics
    from services.config.kafka import KafkaConfig
    from services.ops.lifecycle import run_until_signalled, stop_early_on_signals
    from services.config.settings import Settings

    cfg = KafkaConfig.from_env(name)  # logging is configured by the caller (services.app.cli)
    if name == "dashlet":
        return serve_dashlet()
    stop_early_on_signals()
    from services.ops.broker_watch import install

    install(name)  # a broker lost: one warning when it goes, one when it is back
    # Every topic the service touches exists as specified before its consumer joins the group.
    report = asyncio.run(ensure_topics(cfg, (name, *follows(name))))
    if report.errors:
        for error in report.errors:
            logging.getLogger("vpa.topics").error("%s cannot start: %s; `vpa topics create` (with credentials that "
                                                   "may create topics) sets them up", name, error)
        return 2
    _start_metrics(cfg)
    if name == "notifier":
        from services.config.process import NotifierConfig, StoreConfig
        from services.notifier.service import Notifier

        runner = Notifier(cfg, NotifierConfig.from_env(), StoreConfig.from_env(), Settings.from_env())
    else:
        from services.runners.kafka.stream_app import build_stream_app

        runner = build_stream_app(proc or processor(name), Settings.from_env(), cfg, follows(name),
                                  is_followed(name))
    os.makedirs(cfg.state_dir, exist_ok=True)

    async def main(stop: asyncio.Event) -> int:
        await runner.run(stop)
        return 1 if runner.failed is not None else 0

    return run_until_signalled(main)


def _start_metrics(cfg) -> None:  # noqa: ANN001 - a KafkaConfig
    """``/metrics`` and ``/healthz`` (broker probe; the notifier adds the store) on the metrics port;
    the broker probe runs either way (it tells the log when a lost broker is back)."""
    from services.broker.client import cluster_brokers
    from services.ops import health, metrics

    if cfg.metrics_port:
        health.serve(cfg.metrics_port)
    health.probe_broker(lambda timeout: cluster_brokers(cfg, timeout), cfg.bootstrap_servers, gauge=metrics.BROKER_UP,
                        brokers=(metrics.BROKERS_KNOWN, metrics.BROKERS_REACHABLE))


def serve_dashlet() -> int:
    """``vpa run dashlet``: the API against Kafka and the PostgreSQL dashlet store, until SIGTERM."""
    import signal

    from aiohttp import web

    from services.config.kafka import KafkaConfig
    from services.config.process import DashletConfig, StoreConfig
    from services.config.settings import Settings
    from services.dashlet.api import build_app, kafka_sink
    from services.dashlet.auth import parse_tokens
    from services.dashlet.whatif_job import WhatIfJobs
    from services.store.postgres import open_store

    kafka, store_cfg, dashlet = KafkaConfig.from_env("dashlet"), StoreConfig.from_env(), DashletConfig.from_env()
    log = logging.getLogger("vpa.dashlet")

    async def main() -> None:
        store = await open_store(store_cfg.url, store_cfg.data_dir)
        sink, close = kafka_sink(kafka)
        app = build_app(store, sink, parse_tokens(dashlet.dashlet_tokens.get_secret_value()), Settings.from_env(),
                        crm_url_template=dashlet.crm_url_template, commands_per_second=dashlet.commands_per_second,
                        command_burst=dashlet.command_burst, feeds_per_token=dashlet.feeds_per_token,
                        metrics_on_api=dashlet.dashlet_metrics_port is None,
                        whatif=WhatIfJobs(),  # a what-if reads the history retained in Kafka
                        env=os.environ)
        if dashlet.dashlet_metrics_port is not None:
            from services.ops import health

            health.serve(dashlet.dashlet_metrics_port)  # /metrics (and /healthz of the process) apart from the API
        runner = web.AppRunner(app, shutdown_timeout=2)
        await runner.setup()
        await web.TCPSite(runner, dashlet.http_host, dashlet.http_port).start()
        log.info("dashlet API on http://%s:%s", dashlet.http_host, dashlet.http_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            await close()
            await store.close()

    asyncio.run(main())
    return 0


def erase_vpa(vpa_id: str, reason: Optional[str], with_kafka: bool = True) -> int:
    """``vpa erase VPA_ID``: the store forgets the VPA's tasks now (and records the erasure by hash,
    which a running ``vpa demo`` on that database follows), and ``cmd.vpa.erase`` on
    ``vpa.commands`` makes every stream service drop its state of the VPA (a tombstone in its
    changelog) and put a tombstone for each task on the compacted ``dashlet.tasks``. Both are
    reached first: when one cannot be, nothing is changed. Run again, it finishes what it began."""
    import json
    import sys
    import uuid
    from datetime import datetime, timezone

    from services.config.kafka import KafkaConfig
    from services.config.process import StoreConfig
    from services.store.postgres import open_store

    kafka, store_cfg = KafkaConfig.from_env("erase"), StoreConfig.from_env()
    command = {"event_id": f"erase:{vpa_id}:{uuid.uuid4().hex}", "type": "cmd.vpa.erase",
               "occurred_at": datetime.now(timezone.utc).isoformat(), "vpa_id": vpa_id,
               "actor": {"initials": "SYS", "role": "system"}, "schema_version": 1, "data": {"reason": reason}}

    def say_no(what: str, exc: BaseException) -> int:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        print(f"vpa erase: cannot reach {what} ({detail}); nothing was changed", file=sys.stderr)
        return 2

    async def main() -> int:
        try:
            store = await asyncio.wait_for(open_store(store_cfg.url, store_cfg.data_dir), 30)
        except Exception as exc:  # noqa: BLE001 - said in one line, nothing changed
            return say_no("the store (DATABASE_URL)", exc)
        try:
            producer = None
            if with_kafka:
                try:
                    producer = await asyncio.wait_for(_erase_producer(kafka), 30)
                except Exception as exc:  # noqa: BLE001 - said in one line, nothing changed
                    return say_no(f"Kafka at {kafka.bootstrap_servers}", exc)
            # The store first: once the command is out, the notifier may remove the same rows on
            # the services' tombstones, and the count printed here would depend on that race. A
            # version still in flight that lands in between is removed again by those tombstones.
            removed = await store.erase_vpa(vpa_id)
            if producer is None:
                print(f"vpa erase: {vpa_id}: {removed} tasks and their history removed from the store; "
                      "a vpa demo on this database forgets the VPA within 2 s (no Kafka: --without-kafka)")
                return 0
            try:
                await producer.send_and_wait(Topic.commands, vpa_id.encode(), json.dumps(command).encode())
            except Exception as exc:  # noqa: BLE001 - the store part is done; a second run finishes
                print(f"vpa erase: {vpa_id}: removed from the store, but the command to the services did not "
                      f"reach Kafka ({type(exc).__name__}); run the same command again to finish", file=sys.stderr)
                return 1
            finally:
                await producer.stop()
        finally:
            await store.close()
        print(f"vpa erase: {vpa_id}: {removed} tasks and their history removed from the store; "
              f"{command['event_id']} sent to every service (state and dashlet.tasks tombstones follow)")
        return 0

    return asyncio.run(main())


async def _erase_producer(kafka: Any) -> Any:  # a KafkaConfig
    """A started producer once the cluster answered and the contract topics are there."""
    from services.broker.client import Producer
    from services.broker.topic_setup import ensure_topics

    report = await ensure_topics(kafka)
    if report.errors:
        raise RuntimeError("; ".join(report.errors))
    producer = Producer(kafka)
    await producer.start()
    return producer
