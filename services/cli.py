"""The ``vpa`` command (DESIGN.md 4.7)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from services.common.config_loader import ConfigError
from services.common.logs import configure_logging
from services.common.settings import Settings
from services.common.timeutil import parse


def _cmd_replay(args: argparse.Namespace) -> int:
    from services.common.replay import final_tasks, replay, report

    until = parse(args.until) if args.until else None
    if until is not None and until.tzinfo is None:
        print("vpa replay: --until needs a UTC offset, e.g. 2026-12-01T00:00:00+01:00", file=sys.stderr)
        return 2
    runner = replay(args.files, Settings.from_env(), until=until)
    tasks = final_tasks(runner.drain_tasks())
    text = json.dumps(tasks, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    report(runner)
    return 0


def _cmd_schemas(args: argparse.Namespace) -> int:
    from schemas.export import DEFAULT_DIR, export

    for path in export(Path(args.out) if args.out else DEFAULT_DIR):
        print(path)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from services.common.service_config import RUN_CONFIG, check

    check(RUN_CONFIG[args.service])  # every setting the service reads, before it connects anywhere
    configure_logging(service=args.service)
    if args.service != "dashlet":
        from services.common import metrics

        metrics.initialise(args.service)
    from services.common.kafka_runner import run_service

    return run_service(args.service)


def _cmd_topics_create(args: argparse.Namespace) -> int:
    import asyncio

    from aiokafka.errors import KafkaError

    from services.common.kafka_config import KafkaConfig
    from services.common.topics import create_contract_topics

    cfg = KafkaConfig.from_env("topics")
    configure_logging(service="topics")
    try:
        report = asyncio.run(create_contract_topics(cfg))
    except KafkaError as exc:  # unreachable, or the credentials are refused
        print(f"vpa topics create: cannot set up topics on {cfg.bootstrap_servers} "
              f"({cfg.security_protocol.value}): {exc}", file=sys.stderr)
        return 1
    for line in report.lines:
        print(line)
    for warning in report.warnings:
        print(f"vpa topics create: warning: {warning}", file=sys.stderr)
    for error in report.errors:
        print(f"vpa topics create: {error}", file=sys.stderr)
    return 1 if report.errors else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from services.dashlet.demo import run_demo

    configure_logging(service="demo")

    return run_demo(host=args.host, port=args.port, data_dir=args.data_dir, database_url=args.database_url)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vpa", description="VPA Manager Dashlet pipeline")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("replay", help="run the embedded pipeline in stream time over JSONL files")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--until", help="advance the clock to this datetime (RFC 3339 with offset)")
    r.add_argument("--output", help="write the tasks here instead of stdout")
    r.set_defaults(func=_cmd_replay)

    s = sub.add_parser("schemas", help="contract tools")
    s_sub = s.add_subparsers(dest="schemas_command", required=True)
    e = s_sub.add_parser("export", help="write one JSON Schema file per type into schemas/json/")
    e.add_argument("--out", help="directory (default: schemas/json in the source tree)")
    e.set_defaults(func=_cmd_schemas)

    run = sub.add_parser("run", help="run one service against Kafka (production)")
    run.add_argument("service", choices=["detector", "reminders", "journey", "notifier", "dashlet"])
    run.set_defaults(func=_cmd_run)

    t = sub.add_parser("topics", help="contract topics on a cluster")
    t_sub = t.add_subparsers(dest="topics_command", required=True)
    tc = t_sub.add_parser("create", help="create the contract topics (partitions, replication, configs) and check "
                                         "existing ones; settings from the environment like `vpa run`")
    tc.set_defaults(func=_cmd_topics_create)

    d = sub.add_parser("demo", help="embedded pipeline + embedded PostgreSQL + dashlet on 127.0.0.1:8080")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8080)
    d.add_argument("--data-dir", default="var/demo", help="embedded PostgreSQL data folder")
    d.add_argument("--database-url", default=None, help="use this PostgreSQL instead of the embedded one")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:  # a wrong setting: say which and how it should look, no traceback
        for problem in exc.problems:
            print(f"vpa {args.command}: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
