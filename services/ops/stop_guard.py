"""A stop that cannot finish ends the process anyway.

A last flush waits for the broker, which may be away (services sent SIGTERM after the broker had
gone once never exited). Nothing depends on that last flush: what a worker had not written comes
again to the next owner of the partition. So once a stop has begun, the process gets ``grace``
seconds, then exits with status 3."""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

log = logging.getLogger("vpa.stop")
EXIT_STOP_HUNG = 3


def exit_if_stop_hangs(app: Any, grace: float) -> threading.Thread:
    def watch() -> None:
        while not app.should_stop:
            time.sleep(0.5)
        time.sleep(grace)  # a stop that finishes ends the process before this wakes
        log.error("stopping did not finish within %.1f s (is the broker away?); exiting anyway: records "
                  "not written are taken again by the next owner", grace)
        logging.shutdown()
        os._exit(EXIT_STOP_HUNG)

    thread = threading.Thread(target=watch, name="vpa-stop-guard", daemon=True)
    thread.start()
    return thread
