"""``vpa simulate``: a believable company as a deterministic stream of contract envelopes.

``simulate(SimConfig(...))`` yields the envelopes (dicts) of a company of N VPAs over D days in time
order, interleaved with hostile lines (bytes) when ``bad_ratio`` is set; ``to_line`` turns either
into one JSONL line. Same config, same bytes: every choice comes from one seeded ``random.Random``.
"""
from services.simulator.config import SimConfig
from services.simulator.generate import simulate
from services.simulator.lines import record_of, to_line

__all__ = ["SimConfig", "simulate", "to_line", "record_of"]
