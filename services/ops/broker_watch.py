"""A broker lost is one warning, not a flood of errors (issue 26).

While a broker is away, aiokafka logs every failed connection attempt and every failed fetch, at
ERROR, several times a second per client: one 20-second outage of one of three brokers wrote
about 350 such lines per service. Kafka is built to survive that, so none of it is an error.

``BrokerLossFolding`` (a logging filter on the ``aiokafka`` loggers) folds those messages into one
WARNING line when a broker first becomes unreachable; the rest are counted.
``BrokerWatch`` asks the cluster for its brokers every few seconds and tries a TCP connection to
each broker it has ever seen: it keeps the gauges ``vpa_brokers_known`` and
``vpa_brokers_reachable`` and, when every broker answers again, writes the second WARNING line
with how long they were away and how many messages were folded.
"""
from __future__ import annotations

import logging
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Optional

log = logging.getLogger("vpa.brokers")

# What aiokafka says about a broker it cannot reach (or a request that failed because of it).
_NODE_PATTERNS = [
    re.compile(r"Unable connect to node with id (\d+)"),
    re.compile(r'Unable connect to "([^"]+)"'),  # a bootstrap address, before node ids are known
    re.compile(r"Failed fetch messages from (\d+)"),
    re.compile(r"Unable to request metadata from node with id (\d+)"),
    re.compile(r"[Nn]ode(?: with id)? (\d+).*(?:[Cc]onnection|[Nn]ot ready|[Tt]imed? ?out)"),
]
# Failures without a node id that a lost broker causes and that heal by themselves.
_CLUSTER_PATTERNS = [
    re.compile(r"Unable to update metadata"),
    re.compile(r"Got error produce response on topic-partition"),
    re.compile(r"NotLeaderForPartition|NotLeaderOrFollower|LeaderNotAvailable|KafkaConnectionError|NodeNotReady"),
    re.compile(r"Marking the coordinator dead|Coordinator dead|Group Coordinator Request failed"),
    re.compile(r"Heartbeat failed|Heartbeat session expired|OffsetCommit failed"),
    re.compile(r"RequestTimedOutError|NotEnoughReplicas|NotCoordinator"),
    re.compile(r"Connection at .* closed|connection.*(?:reset|refused)", re.I),
]


@dataclass
class _Away:
    since: float
    brokers: set[str]
    folded: int = 0


class BrokerLossFolding(logging.Filter):
    """Folds the clients' repeated connection messages into one WARNING while brokers are away."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service
        self._away: Optional[_Away] = None
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith("aiokafka"):
            return True
        message = record.getMessage()
        node = self._node_of(message)
        if node is None:
            return True
        with self._lock:
            if self._away is not None:
                self._away.folded += 1
                if node != "cluster":
                    self._away.brokers.add(node)
                return False
            self._away = _Away(time.monotonic(), {node} - {"cluster"})  # this one is shown; the rest counted
        what = "a broker" if node == "cluster" else (f"broker {node}" if node.isdigit() else f"broker at {node}")
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = (f"{self.service + ': ' if self.service else ''}{what} unreachable ({message[:200]}); the "
                      "clients' connection messages are folded into this line until every broker answers again")
        record.args = ()
        return True

    @staticmethod
    def _node_of(message: str) -> Optional[str]:
        for pattern in _NODE_PATTERNS:
            m = pattern.search(message)
            if m:
                return m.group(1)
        if any(p.search(message) for p in _CLUSTER_PATTERNS):
            return "cluster"
        return None

    def back(self) -> None:
        """Every broker answers again: the second line, with what was folded."""
        with self._lock:
            away, self._away = self._away, None
        if away is not None:
            names = ", ".join(sorted(away.brokers)) or "the lost broker"
            log.warning("%severy broker answers again after %.0f s (away: %s); %d connection messages were folded",
                        f"{self.service}: " if self.service else "", time.monotonic() - away.since, names,
                        away.folded)

    @property
    def away(self) -> list[str]:
        with self._lock:
            return sorted(self._away.brokers) if self._away else []


FOLDING = BrokerLossFolding()  # the process's; configure_logging puts it on the handler


def install(service: str) -> BrokerLossFolding:
    FOLDING.service = service
    return FOLDING


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class BrokerWatch:
    """Which of the brokers ever seen answer now (a TCP connection each), every ``interval`` seconds."""

    def __init__(self, folding: BrokerLossFolding = FOLDING) -> None:
        self.folding = folding
        self.known: dict[int, tuple[str, int]] = {}
        self.down: set[int] = set()

    def observe(self, brokers: list[dict]) -> tuple[int, int]:
        """``brokers`` from the cluster's metadata (node_id, host, port); returns (known, reachable)."""
        for b in brokers:
            self.known[int(b["node_id"])] = (b["host"], int(b["port"]))
        up = 0
        for node, (host, port) in sorted(self.known.items()):
            if reachable(host, port):
                up += 1
                self.down.discard(node)
            else:
                self.down.add(node)
        if brokers and not self.down:
            self.folding.back()
        return len(self.known), up
