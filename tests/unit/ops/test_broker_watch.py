"""A broker lost is one warning, not a flood (issue 26; services.ops.broker_watch)."""
from __future__ import annotations

import logging

from services.ops.broker_watch import BrokerLossFolding


def _record(name: str, level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, (), None)


def test_a_lost_brokers_connection_errors_become_one_warning_and_one_when_it_is_back(caplog):
    folding = BrokerLossFolding("detector")
    first = _record("aiokafka.conn", logging.ERROR, "Unable connect to node with id 2: [Errno 111] Connect call failed")
    assert folding.filter(first) and first.levelno == logging.WARNING and "broker 2 unreachable" in first.getMessage()
    for _ in range(300):
        assert not folding.filter(_record("aiokafka.consumer.fetcher", logging.ERROR,
                                          "Failed fetch messages from 2: NodeNotReadyError: Attempt to send a request "
                                          "to node which is not ready (node id 2)."))
        assert not folding.filter(_record("aiokafka", logging.ERROR, "Unable connect to node with id 2: timeout"))
    address = _record("aiokafka", logging.ERROR, 'Unable connect to "127.0.0.1:19202": [Errno 111] Connect call failed')
    assert not folding.filter(address)  # the same outage: folded too
    assert folding.away == ["127.0.0.1:19202", "2"]
    with caplog.at_level(logging.WARNING, logger="vpa.brokers"):
        folding.back()
    assert folding.away == []
    [line] = [r.getMessage() for r in caplog.records if r.name == "vpa.brokers"]
    assert "every broker answers again" in line and "601 connection messages were folded" in line


def test_other_messages_and_our_own_pass_untouched():
    folding = BrokerLossFolding()
    assert folding.filter(_record("aiokafka.consumer", logging.INFO, "Unable connect to node with id 2"))
    error = _record("vpa.kafka", logging.ERROR, "Unable connect to node with id 2")
    assert folding.filter(error) and error.levelno == logging.ERROR
    unrelated = _record("aiokafka.consumer.group_coordinator", logging.ERROR, "Something else entirely")
    assert folding.filter(unrelated) and unrelated.levelno == logging.ERROR
