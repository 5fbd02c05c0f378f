"""The partition worker's merge policy (``services.runners.kafka.merge.decide``) at its boundaries:
a snapshot and a number for now, no worker, no broker, no clock (issue 21, point 2)."""
from __future__ import annotations

from services.runners.kafka.merge import Action, Candidate, Decision, Empty, Upstream, View, decide

T0 = 1000.0  # monotonic seconds


def head(t: int, received: float = T0, kind: str = "input", source: str = "events") -> Candidate:
    """A record at stream time ``t`` (the first part of its order key)."""
    return Candidate((t, 1, 0, t), kind, source, received)


def empty(topic: str = "vpa.commands", fetched_to: int = 5, since: float = 0.0, caught_up: bool = True,
          end: tuple[int, float] | None = (5, T0)) -> Empty:
    return Empty(topic, 0, fetched_to, since, caught_up, end)


def view(*candidates: Candidate, empties: tuple[Empty, ...] = (), upstreams: tuple[Upstream, ...] = (),
         idle: float = 0.5, upstream_wait: float = 5.0, waiting_since: float | None = None) -> View:
    return View(tuple(candidates), empties, upstreams, waiting_since, idle, upstream_wait)


def test_nothing_buffered_is_idle():
    assert decide(view(), T0).action is Action.idle


def test_the_smallest_head_goes_first_whatever_the_input():
    d = decide(view(head(30, source="events"), head(10, kind="roster", source="roster"), idle=0), T0)
    assert d.action is Action.step and d.take is not None and d.take.source == "roster"


def test_an_end_offset_asked_before_the_record_arrived_proves_nothing_and_is_asked_again():
    stale = decide(view(head(10, received=T0), empties=(empty(end=(5, T0 - 0.001)),), idle=0), T0)
    assert stale.action is Action.wait and stale.ask == (("vpa.commands", 0),) and stale.until is None
    never = decide(view(head(10), empties=(empty(end=None),), idle=0), T0)
    assert never.ask == (("vpa.commands", 0),)
    fresh = decide(view(head(10, received=T0), empties=(empty(end=(5, T0)),), idle=0), T0)  # asked at arrival
    assert fresh.action is Action.step and fresh.ask == ()


def test_an_empty_input_whose_end_is_beyond_what_was_read_has_records_on_their_way():
    d = decide(view(head(10), empties=(empty(fetched_to=5, end=(6, T0)),), idle=0), T0 + 10)
    assert d.action is Action.wait and d.until is None and d.ask == ()


def test_an_empty_input_not_read_up_to_the_clients_end_waits():
    d = decide(view(head(10), empties=(empty(caught_up=False),), idle=0), T0 + 10)
    assert (d.action, d.until) == (Action.wait, None)


def test_a_record_waits_the_idle_time_from_its_arrival_not_from_when_the_input_emptied():
    v = view(head(10, received=T0), empties=(empty(since=T0 - 60),), idle=0.5)
    assert decide(v, T0) == Decision(Action.wait, until=T0 + 0.5)
    assert decide(v, T0 + 0.4999).action is Action.wait
    assert decide(v, T0 + 0.5).action is Action.step


def test_an_input_that_emptied_after_the_record_arrived_waits_from_when_it_emptied():
    v = view(head(10, received=T0), empties=(empty(since=T0 + 1),), idle=0.5)
    assert decide(v, T0 + 1.25) == Decision(Action.wait, until=T0 + 1.5)
    assert decide(v, T0 + 1.5).action is Action.step


def test_the_earliest_moment_any_empty_input_is_quiet_enough_is_when_to_look_again():
    v = view(head(10), empties=(empty(since=T0 + 2), empty("at.roster", since=T0 + 1)), idle=0.5)
    assert decide(v, T0 + 1).until == T0 + 1.5


def test_a_followed_services_next_command_is_its_progress():
    d = decide(view(head(10), upstreams=(Upstream("detector", (20, 9, 0, 0), None),), idle=0), T0)
    assert d.action is Action.step and d.marks == (("detector", (20, 9, 0, 0)),)


def test_a_progress_mark_at_or_past_the_key_lets_the_record_go():
    at = decide(view(head(10), upstreams=(Upstream("detector", None, (10, 1, 0, 10)),), idle=0), T0)
    assert at.action is Action.step and at.marks == () and at.timed_out == ()


def test_a_follower_waits_for_its_upstream_up_to_the_upstream_wait_then_goes_on_without_it():
    behind = (Upstream("detector", None, (9, 1, 0, 0)),)
    first = decide(view(head(10), upstreams=behind, idle=0, upstream_wait=5.0), T0)
    assert first == Decision(Action.wait, until=T0 + 5.0, upstream_waiting_since=T0)
    later = decide(view(head(10), upstreams=behind, idle=0, upstream_wait=5.0, waiting_since=T0), T0 + 4.999)
    assert later.action is Action.wait and later.upstream_waiting_since == T0
    gone = decide(view(head(10), upstreams=behind, idle=0, upstream_wait=5.0, waiting_since=T0), T0 + 5.0)
    assert gone.action is Action.step and gone.timed_out == ("detector",)
    assert gone.marks == (("detector", (10, 1, 0, 10)),) and gone.upstream_waiting_since is None


def test_the_broker_is_asked_before_any_idle_time_or_upstream_wait_is_counted():
    v = view(head(10), empties=(empty(end=None),), upstreams=(Upstream("detector", None, None),))
    d = decide(v, T0)
    assert d.ask and d.until is None and d.upstream_waiting_since is None and d.marks == ()
