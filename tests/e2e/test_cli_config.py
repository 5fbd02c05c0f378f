"""A wrong setting stops `vpa` at once with the variable, the expected form and exit code 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

VPA = str(Path(sys.executable).with_name("vpa"))


@pytest.mark.parametrize("command, env, line", [
    (["run", "detector"], {"VPA_PARTITIONS": "x"}, "vpa run: VPA_PARTITIONS: expected a positive integer, got 'x'"),
    (["run", "notifier"], {"VPA_NOTIFIER_BATCH": "lots"}, "vpa run: VPA_NOTIFIER_BATCH: expected a positive integer, got 'lots'"),
    (["run", "dashlet"], {"VPA_HTTP_PORT": "80a"}, "vpa run: VPA_HTTP_PORT: expected a TCP port 1-65535, got '80a'"),
    (["replay", os.devnull], {"VPA_TIMEZONE": "Berlin"}, "vpa replay: VPA_TIMEZONE: expected an IANA time zone name"),
])
def test_bad_setting_is_a_clear_message_not_a_traceback(command, env, line):
    # a broker that does not exist: the check must come before any connection attempt
    full_env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1", **env)
    done = subprocess.run([VPA, *command], env=full_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert line in done.stderr
    assert "Traceback" not in done.stderr
