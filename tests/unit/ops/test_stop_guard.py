"""A stop that cannot finish ends the process anyway (services.ops.stop_guard)."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_stop_that_hangs_ends_the_process_after_the_grace():
    code = textwrap.dedent("""
        import time
        from types import SimpleNamespace
        from services.ops.stop_guard import exit_if_stop_hangs
        app = SimpleNamespace(should_stop=False)
        exit_if_stop_hangs(app, grace=0.2)
        app.should_stop = True   # a stop begins and then hangs
        time.sleep(30)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert done.returncode == 3
    assert "exiting anyway" in done.stderr


def test_a_running_service_is_left_alone():
    from types import SimpleNamespace

    from services.ops.stop_guard import exit_if_stop_hangs

    thread = exit_if_stop_hangs(SimpleNamespace(should_stop=False), grace=0.0)
    thread.join(1.0)
    assert thread.is_alive() and thread.daemon
