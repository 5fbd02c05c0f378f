"""The HandoverPolicy (services/core/handover.py) as reminders use it (DESIGN 2.2, 5.7 to 5.11)."""
from __future__ import annotations

from datetime import date

from hypothesis import given, settings as hsettings, strategies as st

from services.core.handover import HANDOVER, UNAVAILABLE, Assignment, assign, describe, with_flag
from services.core.ids import rendezvous_pick, rendezvous_score
from tests.unit.reminder_helpers import absence, absence_ended, apply, member, roster_of

DAY = date(2026, 11, 26)
KEY = "r-1"


def team(*extra):
    """AB (deputy CD), CD, EF, GH all AT; VM a VPA Manager."""
    return roster_of(member("AB", deputy="CD"), member("CD"), member("EF"), member("GH"),
                     member("VM", role="vpa_manager"), *extra)


def test_owner_present_keeps_the_reminder():
    assert assign("AB", KEY, team(), DAY) == Assignment("AB")


def test_deputy_available_takes_over():
    r = team(absence("a1", "AB", "2026-11-20", "2026-11-30"))
    assert assign("AB", KEY, r, DAY) == Assignment("CD", HANDOVER)


def test_deputy_of_any_role_but_must_be_present_and_active():
    r = roster_of(member("AB", deputy="VM"), member("VM", role="vpa_manager"), member("EF"),
                  absence("a1", "AB", "2026-11-26", "2026-11-26"))
    assert assign("AB", KEY, r, DAY) == Assignment("VM", HANDOVER)
    apply(r, member("VM", role="vpa_manager", active=False))
    assert assign("AB", KEY, r, DAY) == Assignment("EF", HANDOVER)


def test_deputy_absent_too_picks_by_rendezvous_among_present_at_members():
    r = team(absence("a1", "AB", "2026-11-20", "2026-11-30"), absence("a2", "CD", "2026-11-26", None, "sick"))
    got = assign("AB", KEY, r, DAY)
    # Candidates: role at, present, not the owner, so never AB, CD (absent) or VM (vpa_manager).
    expected = max(["EF", "GH"], key=lambda i: rendezvous_score(KEY, i))
    assert got == Assignment(expected, HANDOVER)
    assert rendezvous_pick(KEY, ["EF", "GH"]) == expected


def test_rendezvous_score_is_sha256_prefix_big_endian():
    import hashlib
    digest = hashlib.sha256(b"r-1\0EF").digest()
    assert rendezvous_score("r-1", "EF") == int.from_bytes(digest[:8], "big")


def test_nobody_available_stays_with_owner_flagged():
    r = roster_of(member("AB", deputy="CD"), member("CD"), member("VM", role="vpa_manager"),
                  absence("a1", "AB", "2026-11-26", "2026-11-27"), absence("a2", "CD", "2026-11-01", "2026-12-31"))
    assert assign("AB", KEY, r, DAY) == Assignment("AB", UNAVAILABLE)


def test_owner_back_early_with_absence_ended():
    r = team(absence("a1", "AB", "2026-11-20", "2026-12-10"))
    assert assign("AB", KEY, r, DAY).assignee == "CD"
    apply(r, absence_ended("a1", "AB"))
    assert assign("AB", KEY, r, DAY) == Assignment("AB")


def test_absence_registered_in_advance_has_no_effect_before_it_starts():
    r = team(absence("a1", "AB", "2026-12-01", "2026-12-05"))
    assert assign("AB", KEY, r, date(2026, 11, 30)) == Assignment("AB")
    assert assign("AB", KEY, r, date(2026, 12, 1)) == Assignment("CD", HANDOVER)
    assert assign("AB", KEY, r, date(2026, 12, 5)) == Assignment("CD", HANDOVER)
    assert assign("AB", KEY, r, date(2026, 12, 6)) == Assignment("AB")  # back the day after ends_on


def test_open_ended_sick_note_lasts_until_absence_ended():
    r = team(absence("s1", "AB", "2026-11-26", None, "sick"))
    assert assign("AB", KEY, r, date(2027, 6, 1)) == Assignment("CD", HANDOVER)
    apply(r, absence_ended("s1", "AB"))
    assert assign("AB", KEY, r, date(2027, 6, 1)) == Assignment("AB")


def test_absence_ended_for_unknown_absence_changes_nothing():
    r = team(absence("a1", "AB", "2026-11-20", "2026-11-30"), absence_ended("other", "AB"))
    assert assign("AB", KEY, r, DAY).assignee == "CD"


def test_inactive_member_counts_as_away():
    r = team(member("AB", deputy="CD", active=False))
    assert assign("AB", KEY, r, DAY) == Assignment("CD", HANDOVER)


def test_owner_not_in_roster_is_never_handed_over():
    assert assign("ZZ", KEY, team(), DAY) == Assignment("ZZ")
    # A member known only through an absence (no member_upserted) is not in the roster either.
    r = team(absence("z1", "ZZ", "2026-11-01", None))
    assert assign("ZZ", KEY, r, DAY) == Assignment("ZZ")


def test_with_flag_and_describe():
    assert with_flag(["x", HANDOVER], UNAVAILABLE) == ["x", UNAVAILABLE]
    assert with_flag([HANDOVER], None) == []
    assert describe(Assignment("CD", HANDOVER), "AB") == "Übergabe an CD: AB ist abwesend"
    assert describe(Assignment("AB"), "AB") == "Zurück bei AB"


# ---- property: even spread and minimal movement -------------------------------------------

FIVE = ["AA", "BB", "CC", "DD", "EE"]


def _away_owner_roster(members: list[str]) -> dict:
    # Owner OW is away and has no deputy: every reminder goes to rendezvous among ``members``.
    return roster_of(member("OW"), absence("ow", "OW", "2026-01-01", None), *(member(i) for i in members))


PREFIX = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-:", min_size=1, max_size=16)
# Hashing is deterministic: derandomize so CI sees the same key sets every run.
PROPERTY = hsettings(max_examples=25, deadline=None, derandomize=True)


def _spread(prefix: str, n: int) -> list[int]:
    r = _away_owner_roster(FIVE)
    counts = {i: 0 for i in FIVE}
    for k in range(n):
        a = assign("OW", f"{prefix}:{k}", r, DAY)
        assert a.flag == HANDOVER
        counts[a.assignee] += 1
    return [counts[i] for i in FIVE]


@PROPERTY
@given(prefix=PREFIX)
def test_1000_reminders_spread_within_10_percent_of_even_over_5_members(prefix):
    """1,000 reminders over 5 present members: 200 each on average.

    Per member, the count of any uniform assignment has a standard deviation of
    sqrt(1000 * 0.2 * 0.8) = 12.6, so a hard +-20 on *every* member is a 1.6 sigma bound that about
    4 in 10 key sets miss whatever the hash. What we pin instead: the mean deviation from the even
    share is within 10% of it, and the counts pass a chi-square test of evenness (p > 0.001)."""
    counts = _spread(prefix, 1000)
    assert sum(counts) == 1000
    assert sum(abs(c - 200) for c in counts) / 5 <= 20, counts
    assert sum((c - 200) ** 2 / 200 for c in counts) < 18.467, counts  # chi-square, 4 dof, p = 0.001


def test_these_1000_reminder_ids_each_land_within_10_percent_of_even():
    """The issue's literal bound on one fixed set of ids (``reminder:0`` .. ``reminder:999``),
    pinned so a change of the hash or of the candidate order shows up here."""
    counts = _spread("reminder", 1000)
    assert all(180 <= c <= 220 for c in counts), counts


@hsettings(max_examples=5, deadline=None, derandomize=True)
@given(prefix=PREFIX)
def test_10000_reminders_every_member_within_10_percent_of_even(prefix):
    """At 10,000 reminders +-10% per member is a 5 sigma bound: it holds for every member."""
    for c in _spread(prefix, 10_000):
        assert abs(c - 2000) <= 200


@PROPERTY
@given(prefix=PREFIX,
       leaver=st.sampled_from(FIVE), how=st.sampled_from(["absence", "inactive"]))
def test_one_member_leaving_moves_only_that_members_reminders(prefix, leaver, how):
    r = _away_owner_roster(FIVE)
    keys = [f"{prefix}:{n}" for n in range(1000)]
    before = {k: assign("OW", k, r, DAY).assignee for k in keys}
    if how == "absence":
        apply(r, absence("leave", leaver, "2026-11-26", None))
    else:
        apply(r, member(leaver, active=False))
    after = {k: assign("OW", k, r, DAY).assignee for k in keys}
    for k in keys:
        if before[k] == leaver:
            assert after[k] != leaver
        else:
            assert after[k] == before[k]
    # ... and coming back restores exactly the old assignment.
    if how == "absence":
        apply(r, absence_ended("leave", leaver))
    else:
        apply(r, member(leaver))
    assert {k: assign("OW", k, r, DAY).assignee for k in keys} == before


def test_kept_picks_equal_a_fresh_rendezvous_pick_as_the_team_changes():
    """The policy keeps each key's best two and scores only newcomers: whatever the order of
    arrivals and departures, its pick is the one rendezvous hashing makes over everyone."""
    import random

    from services.core import handover
    from services.core.ids import rendezvous_pick

    rng = random.Random(7)
    team = [f"{a}{b}" for a in "ABCDEFGH" for b in "KLMNOPQR"]
    keys = [f"case:absence:V-{n}:A-{n}" for n in range(40)]
    present = set(rng.sample(team, 20))
    for _ in range(400):
        for name in rng.sample(team, rng.randint(0, 4)):  # some leave, some arrive
            present ^= {name}
        if rng.random() < 0.05:
            present = set()  # the team day: nobody
        candidates = tuple(sorted(present))
        for key in rng.sample(keys, 10):
            owner = rng.choice(team + [None])
            want = rendezvous_pick(key, [c for c in candidates if c != owner])
            assert handover._pick(key, candidates, owner) == want
            assert handover.pick_among(key, candidates) == rendezvous_pick(key, list(candidates))
