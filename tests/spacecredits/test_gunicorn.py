"""Slow clients cannot hold every web worker: gunicorn started as the Procfile starts it
still answers /healthz while more slow connections are open than it has workers.

A behaviour test, not a benchmark: the deadline is generous.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SLOW_CONNECTIONS = 6  # what the attack used, against 4 sync workers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _procfile_command(name: str) -> str:
    procfile = (ROOT / "Procfile").read_text()
    return re.search(rf"^{name}:\s*(.+)$", procfile, flags=re.M).group(1)


def _get_healthz(port: int, timeout: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


@pytest.fixture
def procfile_web(database_url, tmp_path):
    """The Procfile's `web` process on a free port, on the test database."""
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),  # gunicorn puts its control socket under ~/.gunicorn
        "BIND": f"127.0.0.1:{port}",
        "SECRET_KEY": "test-only-secret-key-for-the-gunicorn-test",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
    }
    server = subprocess.Popen(  # noqa: S602 - the Procfile line is a shell command
        _procfile_command("web"),
        shell=True,
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get_healthz(port, timeout=2).startswith(b"HTTP/1.1 200"):
                    break
            except OSError:
                pass
            assert server.poll() is None, f"gunicorn exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no 200 within 30 s:\n{log.read_text()}"
            time.sleep(0.2)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_healthz_answers_while_slow_clients_hold_connections(procfile_web):
    port = procfile_web
    slow = []
    try:
        for _ in range(SLOW_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            # Headers begun and never finished, as slowloris sends them.
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append(sock)
        time.sleep(1)  # let the server take them all up
        answer = _get_healthz(port, timeout=5)
        assert answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        for sock in slow:
            sock.close()
