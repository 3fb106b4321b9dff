"""Property-based tests generated from /api/v1/openapi.json (Schemathesis), against a
real gunicorn on the test database: no 5xx, and every status, content type, header and
body as the schema says. A run of about a minute."""

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.utils import timezone

from api import services as api_services
from credits import services
from tests.factories import CompanyFactory, MembershipFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def api_server(database_url, tmp_path):
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SECRET_KEY": "test-only-secret-key-for-the-schemathesis-test",
        "API_KEY_SECRET": "test-only-api-key-secret",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "API_RATE_LIMIT": "100000",
    }
    server = subprocess.Popen(
        # No request-line or header limits: the URLs and headers Schemathesis makes up are
        # for the app to answer (gunicorn's own 414 and 400 are HTML; in production the
        # proxy in front has its limits).
        [
            BIN / "gunicorn",
            "spacecredits.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "--limit-request-line",
            "0",
            "--limit-request-field_size",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, f"gunicorn exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no 200 within 30 s:\n{log.read_text()}"
            time.sleep(0.2)
        yield base, env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        print(log.read_text()[-5000:])


def test_every_response_matches_the_schema_and_none_is_a_5xx(api_server, settings, tmp_path):
    base, env = api_server
    settings.API_KEY_SECRET = env["API_KEY_SECRET"]  # the key is hashed as the server hashes
    key = api_services.create_api_key(name="Schemathesis", scope="write").key
    # Small ids of every kind, for the made-up paths to find: members of companies (for
    # transfers and charges on behalf), holds, bookings to refund, additions to reverse.
    for n in range(3):
        membership = MembershipFactory(company=CompanyFactory(), user=UserFactory())
        services.add_credits(membership.user, 50 + n)
        services.add_credits(membership.company, 20)
        services.hold_credits(membership.user, 5, expires_at=timezone.now() + dt.timedelta(hours=1))
        services.charge_credits(membership.company, 2, kind="booking")
    run = subprocess.run(
        [
            BIN / "schemathesis",
            "run",
            f"{base}/api/v1/openapi.json",
            "--checks",
            CHECKS,
            "--header",
            f"Authorization: Bearer {key}",
            "--max-examples",
            "40",
            "--max-time",
            "60",
            # One worker: Hypothesis parses lambdas' source with ast, which Python 3.11
            # does not do safely on two threads at once ("AST constructor recursion").
            "--workers",
            "1",
            "--seed",
            "1",
            "--no-color",
        ],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    (tmp_path / "schemathesis.txt").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
