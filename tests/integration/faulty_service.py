"""The detector with a bug for one VPA: its rules raise on absences and timers of ``V-BOOM``.

Run as ``python -m tests.integration.faulty_service`` in place of ``vpa run detector``: the real
driver, the real broker, only the rules are wrapped."""
from __future__ import annotations

import sys

from services.detector.service import Detector

BOOM = "V-BOOM"


class FaultyDetector(Detector):
    def handle(self, state, env, ctx):  # noqa: ANN001
        if env.vpa_id == BOOM and env.type == "vpa.absence_registered":
            raise RuntimeError("kaputt")
        return super().handle(state, env, ctx)

    def on_timer(self, state, timer, ctx):  # noqa: ANN001
        if any(t.get("vpa_id") == BOOM for t in state.get("tasks", {}).values()):
            raise RuntimeError("timer kaputt")
        return super().on_timer(state, timer, ctx)


if __name__ == "__main__":
    from services.app.entrypoints import run_service

    sys.exit(run_service("detector", FaultyDetector()))
