"""The contract's topics (DESIGN 4.1): every name in one place.

``Topic`` is a ``StrEnum``: a member is its name wherever a string is expected (clients, headers,
JSON, dict keys), so code names ``Topic.roster`` and never spells ``"at.roster"`` again.
"""
from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    events = "vpa.events"  # the platform's facts about VPAs, keyed by vpa_id
    roster = "at.roster"  # the AT roster (members, roles, deputies, absences), keyed by initials
    commands = "vpa.commands"  # the AT's and the services' commands, keyed by vpa_id
    tasks = "dashlet.tasks"  # the latest version of every task, keyed by task_id (compacted)
    dlq = "vpa.dlq"  # what could not be used, with the reason and where it came from


CONTRACT_TOPICS: tuple[Topic, ...] = (Topic.events, Topic.roster, Topic.commands, Topic.tasks, Topic.dlq)
CO_PARTITIONED: tuple[Topic, ...] = (Topic.events, Topic.commands)  # partition p of each belongs together
