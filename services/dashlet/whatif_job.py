""""Was wäre wenn" from the Team tab (issue 23, point 3): one what-if at a time per dashlet, as a
background process (``vpa whatif --json --progress``), so it never touches the live pipeline's
state or the store and never holds the API's event loop.

The history is the deployment's: the demo writes its simulated past and its command log to a file
(``history``); a Kafka deployment lets the job read the retained topics (``--from-kafka``).
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional

log = logging.getLogger("vpa.dashlet.whatif")
HistoryWriter = Callable[[str], Awaitable[list[str]]]  # folder -> JSONL files of the history
VPA = str(Path(sys.executable).with_name("vpa"))


class Busy(Exception):
    """A what-if is running already."""


class WhatIfJobs:
    def __init__(self, history: Optional[HistoryWriter] = None, env: Optional[dict[str, str]] = None) -> None:
        self._history, self._env = history, env
        self.state: dict[str, Any] = {"state": "idle"}
        self._task: Optional[asyncio.Task] = None
        self._proc: Any = None

    def status(self) -> dict[str, Any]:
        out = dict(self.state)
        if out.get("state") == "running":
            out["elapsed_s"] = round(time.monotonic() - out.pop("_t0"), 1)
        else:
            out.pop("_t0", None)
        return out

    def start(self, changes: dict[str, str], by: str) -> None:
        if self._task is not None and not self._task.done():
            raise Busy("Es läuft schon eine Berechnung; bitte warten, bis sie fertig ist")
        self.state = {"state": "running", "changes": changes, "by": by, "progress": 0.0,
                      "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "_t0": time.monotonic()}
        self._task = asyncio.ensure_future(self._run(changes))

    async def _run(self, changes: dict[str, str]) -> None:
        try:
            with tempfile.TemporaryDirectory(prefix="vpa-whatif-job-") as folder:
                if self._history is not None:
                    self.state["phase"] = "Verlauf wird gelesen"
                    source = await self._history(folder)
                else:
                    source = ["--from-kafka"]
                self.state["phase"] = "zweimal durchgerechnet"
                args = [VPA, "whatif", *source, "--json", "--progress"]
                for name, value in changes.items():
                    args += ["--set", f"{name}={value}"]
                proc = await asyncio.create_subprocess_exec(
                    *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                    env=self._env)  # None: the child inherits this process's environment
                self._proc = proc
                stdout_task = asyncio.ensure_future(proc.stdout.read())
                problems: list[str] = []
                while True:
                    line = await proc.stderr.readline()
                    if not line:
                        break
                    text = line.decode("utf-8", "replace").strip()
                    if text.startswith("progress "):
                        self.state["progress"] = float(text.split()[1])
                    elif text:
                        problems.append(text)
                out = await stdout_task
                rc = await proc.wait()
            if rc != 0:
                raise RuntimeError("; ".join(problems[-3:]) or f"vpa whatif endete mit {rc}")
            report = json.loads(out)
            self.state.update(state="done", progress=1.0, report=report,
                              finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        except asyncio.CancelledError:
            self.state.update(state="failed", error="abgebrochen")
            raise
        except Exception as exc:  # noqa: BLE001 - the job's failure is its answer, never the API's
            log.warning("what-if failed: %s", exc)
            self.state.update(state="failed", error=str(exc)[:500],
                              finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))

    async def close(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()  # a what-if never outlives its dashlet
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
