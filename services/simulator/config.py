"""What a simulation is asked for, and the rates it draws from (documented in the README)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class SimConfig:
    vpas: int = 300
    days: int = 30
    seed: int = 1
    start: date = date(2026, 1, 5)
    bad_ratio: float = 0.0  # share of hostile lines among all lines
    timezone: str = "Europe/Berlin"

    def __post_init__(self) -> None:
        if self.vpas < 1:
            raise ValueError("--vpas must be at least 1")
        if self.days < 1:
            raise ValueError("--days must be at least 1")
        if not 0.0 <= self.bad_ratio < 1.0:
            raise ValueError("--bad-ratio must be at least 0 and below 1")


# ---- upstream platform: chance per VPA and calendar day (unless noted) -------------------------
ACTIVITY_WEB = 0.03            # a sampled web session (the platform sends many more; rules need few)
ACTIVITY_MOBILE = 0.04         # a sampled mobile session, mobile-app users only
INACTIVITY = 0.012             # the platform flags the VPA inactive (an episode starts)
INACTIVITY_PART_TIME = 0.02
SCHEDULE_CHANGE = 0.006
SCHEDULE_CHANGE_NEW = 0.02     # N-VPAs (under 3 months) adjust their schedule more often
CLASS_CHANGE = 0.002           # a re-rating of a rated VPA
FIRST_RATING = 0.03            # an unrated VPA of at least 45 days gets its first class
ABSENCE = 0.02                 # an absence registered (vacation, sick, ...)
ABSENCE_OFTEN_AWAY = 0.06      # the 5% of VPAs who are often away
COMPLAINT = 0.002              # a customer complaint outside an inactivity episode
PROFILE_UPDATE = 0.0015
OFFBOARDING = 0.0007           # working days only (about a quarter of the VPAs a year)
HIRES_PER_WEEK_PER_VPA = 0.007  # new hires, registered every Tuesday (at least one a week)

# ---- share of VPAs with a trait at the start ----------------------------------------------------
PART_TIME = 0.20
MOBILE_APP = 0.35
OFTEN_AWAY = 0.05
FIRST_YEAR = 0.30              # tenure under a year, spread evenly (so every journey stage occurs)

# ---- the AT team (people) ------------------------------------------------------------------------
VPAS_PER_AT_MEMBER = 40
VPAS_PER_MANAGER = 150
REMINDERS_PER_OWNED_VPA = 0.04  # per working day and present AT member
REMINDERS_PER_MANAGER = 0.8     # per working day and present VPA Manager
CASE_LATE = 0.08               # cases resolved only 8 to 25 working days later (the backlog)
CASE_NEVER = 0.02              # cases nobody resolves
REMINDER_BACKLOG = 0.03        # reminders completed only 4 to 10 working days after they fell due
TEAM_DAY_PERIOD = 28           # every fourth Thursday the whole team is at its team day (offsite)
RESOLVE_WITH_FILE = 0.8        # cases resolved with "VPA-Akte gepflegt" ticked (DESIGN 5.13a); the rest later
