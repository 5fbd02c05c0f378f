"""An embedded PostgreSQL for runs without DATABASE_URL (DESIGN.md 3 "Store"), via ``pgserver``.

The server listens on a unix socket in the data folder and outlives this process
(``cleanup_mode=None``): a later ``start`` on the same folder reuses it, ``stop`` ends it. As root,
pgserver runs postgres as the system user ``pgserver``, so pg_ctl has to run as that user too.
"""
from __future__ import annotations

import atexit
import logging
import os
import subprocess
import warnings
from pathlib import Path
from typing import Union

log = logging.getLogger("vpa.embedded_pg")


def _resolve(data_dir: Union[str, Path]) -> Path:
    return Path(data_dir).expanduser().resolve()


def start(data_dir: Union[str, Path]) -> str:
    """Start (or reuse) the server in ``data_dir``; returns its connection URL. Blocks."""
    with warnings.catch_warnings():
        # pgserver keeps its inter-process lock under a runtime dir; the /tmp fallback is fine.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver

    path = _resolve(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)  # pgserver creates only the last level
    return pgserver.get_server(path, cleanup_mode=None).get_uri()


def stop(data_dir: Union[str, Path]) -> None:
    """Stop the server in ``data_dir`` cleanly (a no-op when none runs there). Blocks."""
    import psutil
    from pgserver._commands import pg_ctl
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import PostmasterInfo

    path = _resolve(data_dir)
    # pgserver caches one handle per folder; drop it, or a later start() here would return it
    # although its server is gone.
    handle = PostgresServer._instances.pop(path, None)
    if handle is not None:
        atexit.unregister(handle._cleanup)
        handle.global_process_id_list.get_and_remove(os.getpid())
    info = PostmasterInfo.read_from_pgdata(path) if path.is_dir() else None
    if info is None or not info.is_running():
        return
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"], pgdata=path, user=user, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        log.warning("pg_ctl stop failed (%s); terminating pid %s", err, info.pid)
        info.process.terminate()
        try:
            info.process.wait(10)
        except psutil.TimeoutExpired:
            info.process.kill()
