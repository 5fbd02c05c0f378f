"""The ``vpa`` command (DESIGN.md 4.7)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from services.config.loader import ConfigError
from services.config.settings import Settings
from services.core.timeutil import parse
from services.ops.logs import configure_logging


def _cmd_replay(args: argparse.Namespace) -> int:
    from services.runners.embedded.replay import render_parts, report
    from services.app.entrypoints import replay

    until = parse(args.until) if args.until else None
    if until is not None and until.tzinfo is None:
        print("vpa replay: --until needs a UTC offset, e.g. 2026-12-01T00:00:00+01:00", file=sys.stderr)
        return 2
    runner = replay(args.files, Settings.from_env(), until=until)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for part in render_parts(runner.drain_latest()):  # one task at a time: never the whole text
            out.write(part)
    finally:
        if args.output:
            out.close()
    report(runner)
    return 0


SIMULATE_PROGRESS_FROM = 100_000  # VPA-days; smaller runs take a second or two


def _cmd_simulate(args: argparse.Namespace) -> int:
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from services.ops.progress import bar
    from services.simulator import SimConfig, simulate, to_line

    settings = Settings.from_env()
    try:
        start = date.fromisoformat(args.start) if args.start else datetime.now(ZoneInfo(settings.timezone)).date()
    except ValueError:
        print(f"vpa simulate: --start must be a date YYYY-MM-DD, not {args.start!r}", file=sys.stderr)
        return 2
    try:
        cfg = SimConfig(vpas=args.vpas, days=args.days, seed=args.seed, start=start, bad_ratio=args.bad_ratio,
                        timezone=settings.timezone)
    except ValueError as exc:
        print(f"vpa simulate: {exc}", file=sys.stderr)
        return 2
    progress = bar(cfg.days, "vpa simulate", "day", SIMULATE_PROGRESS_FROM // cfg.vpas + 1)
    items = simulate(cfg, on_day=lambda _n: progress.update(1))
    counted = _Counted(items)
    try:
        if args.kafka:
            import asyncio

            from services.config.kafka import KafkaConfig
            from services.simulator.kafka import TopicsUnfit, produce

            kafka = KafkaConfig.from_env("simulate")
            try:
                asyncio.run(produce(counted, kafka))
            except TopicsUnfit as exc:  # a message for the user, not a traceback
                print(f"vpa simulate: the topics at {kafka.bootstrap_servers} do not fit:\n{exc}", file=sys.stderr)
                return 1
            where = f"Kafka at {kafka.bootstrap_servers}"
        else:
            out = open(args.output, "wb") if args.output else sys.stdout.buffer
            try:
                for item in counted:
                    out.write(to_line(item) + b"\n")
                out.flush()
            except BrokenPipeError:  # `vpa simulate | head`: the reader has all it wants
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 1
            finally:
                if args.output:
                    out.close()
            where = args.output or "stdout"
    finally:
        progress.close()
    print(f"vpa simulate: {counted.lines} lines ({counted.hostile} hostile) to {where}: {cfg.vpas} VPAs, "
          f"{cfg.days} days from {cfg.start}, seed {cfg.seed}", file=sys.stderr)
    return 0


class _Counted:
    """Counts what passes through (the summary line)."""

    def __init__(self, items) -> None:  # noqa: ANN001
        self._items, self.lines, self.hostile = items, 0, 0

    def __iter__(self):  # noqa: ANN204
        for item in self._items:
            self.lines += 1
            self.hostile += isinstance(item, bytes)
            yield item


def _cmd_schemas(args: argparse.Namespace) -> int:
    from schemas.export import DEFAULT_DIR, export

    for path in export(Path(args.out) if args.out else DEFAULT_DIR):
        print(path)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from services.config.process import RUN_CONFIG, check

    check(RUN_CONFIG[args.service])  # every setting the service reads, before it connects anywhere
    configure_logging(service=args.service)
    if args.service != "dashlet":
        from services.ops import metrics

        metrics.initialise(args.service)
    from services.app.entrypoints import run_service

    return run_service(args.service)


def _cmd_whatif(args: argparse.Namespace) -> int:
    times = {}
    for name in ("since", "until"):
        value = getattr(args, name)
        t = parse(value if "T" in (value or "") else f"{value}T00:00:00+00:00") if value else None
        if t is not None and t.tzinfo is None:
            print(f"vpa whatif: --{'from' if name == 'since' else name} needs a UTC offset", file=sys.stderr)
            return 2
        times[name] = t
    from services.app.entrypoints import whatif

    if bool(args.files) == args.from_kafka:
        print("vpa whatif: give FILE... or --from-kafka (one of them)", file=sys.stderr)
        return 2
    if args.from_kafka:
        from services.config.kafka import KafkaConfig
        from services.config.process import check

        check((KafkaConfig,))
    return whatif(args.files, args.set, times["since"], times["until"], args.json, args.from_kafka, args.days,
                  args.html, args.progress)


def _cmd_verify(args: argparse.Namespace) -> int:
    from services.config.kafka import KafkaConfig
    from services.config.process import StoreConfig, check

    check((KafkaConfig, StoreConfig, Settings))  # every setting it reads, before it connects anywhere
    until = parse(args.until) if args.until else None
    if until is not None and until.tzinfo is None:
        print("vpa verify: --until needs a UTC offset, e.g. 2026-12-01T00:00:00+01:00", file=sys.stderr)
        return 2
    from services.app.entrypoints import verify

    try:
        return verify(args.replay, until, args.json, replay_versions=not args.ignore_versions)
    except (OSError, RuntimeError) as exc:  # broker or store unreachable: say so, no traceback
        print(f"vpa verify: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _cmd_topics_create(args: argparse.Namespace) -> int:
    import asyncio

    from services.broker.client import client_error
    from services.broker.topic_setup import setup_topics
    from services.config.kafka import KafkaConfig

    cfg = KafkaConfig.from_env("topics")
    configure_logging(service="topics")
    try:
        report = asyncio.run(setup_topics(cfg, apply=args.apply))
    except client_error() as exc:  # unreachable, or the credentials are refused
        print(f"vpa topics create: cannot set up topics on {cfg.bootstrap_servers} "
              f"({cfg.security_protocol.value}): {exc}", file=sys.stderr)
        return 1
    for line in report.lines:
        print(line)
    for change in report.applied:
        print(f"applied {change}")
    for warning in report.warnings:
        print(f"vpa topics create: warning: {warning}", file=sys.stderr)
    for error in report.errors:
        print(f"vpa topics create: {error}", file=sys.stderr)
    return 1 if report.errors else 0


def _cmd_erase(args: argparse.Namespace) -> int:
    from services.config.process import StoreConfig, check
    from services.config.kafka import KafkaConfig

    check((KafkaConfig, StoreConfig))
    configure_logging(service="erase")
    from services.app.entrypoints import erase_vpa

    return erase_vpa(args.vpa_id, args.reason, with_kafka=not args.without_kafka)


def _cmd_demo(args: argparse.Namespace) -> int:
    from services.app.demo import run_demo

    configure_logging(service="demo")
    return run_demo(host=args.host, port=args.port, data_dir=args.data_dir, database_url=args.database_url,
                    vpas=args.vpas, seed=args.seed, reset=args.reset, summary_seconds=args.summary_seconds)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vpa", description="VPA Manager Dashlet pipeline")
    sub = p.add_subparsers(dest="command", required=True)

    er = sub.add_parser("erase", help="erase a VPA's data: its tasks from the store, its state from every service")
    er.add_argument("vpa_id", metavar="VPA_ID")
    er.add_argument("--reason", default=None, help="why (kept in the command's note, not with the VPA)")
    er.add_argument("--without-kafka", action="store_true",
                    help="the store only, for a vpa demo on that database (it follows within 2 s); no Kafka")
    er.set_defaults(func=_cmd_erase)

    r = sub.add_parser("replay", help="run the embedded pipeline in stream time over JSONL files")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--until", help="advance the clock to this datetime (RFC 3339 with offset)")
    r.add_argument("--output", help="write the tasks here instead of stdout")
    r.set_defaults(func=_cmd_replay)

    w = sub.add_parser("whatif", help="replay the history with changed business-rule settings: how the work differs")
    w.add_argument("files", nargs="*", metavar="FILE")
    w.add_argument("--from-kafka", action="store_true",
                   help="read vpa.events, vpa.commands and at.roster as retained, without joining a consumer group")
    w.add_argument("--days", type=int, default=None, help="with --from-kafka: only the last DAYS days")
    w.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a business-rule setting to change, e.g. VPA_LONG_ABSENCE_DAYS=28 (repeatable)")
    w.add_argument("--from", dest="since", default=None, metavar="DATE",
                   help="count only tasks created from this date (YYYY-MM-DD or RFC 3339)")
    w.add_argument("--until", default=None, metavar="DATE", help="replay and count up to this date")
    w.add_argument("--json", action="store_true", help="the whole report as JSON")
    w.add_argument("--progress", action="store_true", help=argparse.SUPPRESS)  # "progress 0.42" lines (jobs)
    w.add_argument("--html", default=None, metavar="FILE",
                   help="also write the report as one self-contained page (charts as inline SVG)")
    w.set_defaults(func=_cmd_whatif)

    sim = sub.add_parser("simulate", help="a believable company as JSONL envelopes (stdout, a file or Kafka)")
    sim.add_argument("--vpas", type=int, default=300, help="VPAs at the start (default 300)")
    sim.add_argument("--days", type=int, default=30, help="days to simulate (default 30)")
    sim.add_argument("--seed", type=int, default=1, help="random seed: same arguments, same bytes (default 1)")
    sim.add_argument("--start", help="first day, YYYY-MM-DD (default: today)")
    sim.add_argument("--bad-ratio", type=float, default=0.0,
                     help="share of hostile (invalid) lines among all lines, for reliability tests (default 0)")
    target = sim.add_mutually_exclusive_group()
    target.add_argument("--output", help="write the lines to this file instead of stdout")
    target.add_argument("--kafka", action="store_true",
                        help="produce to the contract topics at KAFKA_BOOTSTRAP_SERVERS instead")
    sim.set_defaults(func=_cmd_simulate)

    s = sub.add_parser("schemas", help="contract tools")
    s_sub = s.add_subparsers(dest="schemas_command", required=True)
    e = s_sub.add_parser("export", help="write one JSON Schema file per type into schemas/json/")
    e.add_argument("--out", help="directory (default: schemas/json in the source tree)")
    e.set_defaults(func=_cmd_schemas)

    run = sub.add_parser("run", help="run one service against Kafka (production)")
    run.add_argument("service", choices=["detector", "reminders", "journey", "notifier", "dashlet"])
    run.set_defaults(func=_cmd_run)

    v = sub.add_parser("verify", help="compare the dashlet store with dashlet.tasks (and with vpa replay of FILEs)")
    v.add_argument("--replay", nargs="+", metavar="FILE", help="also compare with `vpa replay` of these input files")
    v.add_argument("--until", help="with --replay: advance replay's clock to this datetime (RFC 3339 with offset)")
    v.add_argument("--ignore-versions", action="store_true",
                   help="with --replay: compare only the fields the AT sees, not the version numbers")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=_cmd_verify)

    t = sub.add_parser("topics", help="every topic the project uses, on a cluster")
    t_sub = t.add_subparsers(dest="topics_command", required=True)
    tc = t_sub.add_parser("create", help="create the contract topics and each service's own (partitions, replication, "
                                         "min.insync.replicas, configs) and check existing ones; exits 1 on anything "
                                         "that risks data; settings from the environment like `vpa run`")
    tc.add_argument("--apply", action="store_true",
                    help="also change the configs of existing topics that differ, through the admin API")
    tc.set_defaults(func=_cmd_topics_create)

    d = sub.add_parser("demo", help="a simulated company on the embedded pipeline + PostgreSQL + dashlet (127.0.0.1:8080)")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8080)
    d.add_argument("--data-dir", default="var/demo", help="embedded PostgreSQL data folder")
    d.add_argument("--database-url", default=None, help="use this PostgreSQL instead of the embedded one")
    d.add_argument("--vpas", type=int, default=300, help="size of a new demo company (default 300)")
    d.add_argument("--seed", type=int, default=1, help="seed of a new demo company (default 1)")
    d.add_argument("--reset", action="store_true", help="forget the previous demo in this data folder; start afresh")
    d.add_argument("--summary-seconds", type=float, default=5.0,
                   help="print a one-line summary this often (0: never; default 5)")
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
