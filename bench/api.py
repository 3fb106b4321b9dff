"""The public API through gunicorn, loaded by wrk with TARGET_CLIENTS connections
(bench/api.lua): GET a customer (balance, held, available and buckets) against the
smallest authenticated answer, GET /api/v1/ping (the key's lookup and rate limit only),
in the same run; and POST charges (each with its own Idempotency-Key) against pgbench's
TPC-B with as many clients, taking turns with it.

`make bench` runs it with the write benchmarks (the broker, relay and worker up, as in
production); `python -m bench.api` runs it alone on a database of its own, for a quick
look (`BENCH_SECONDS=2 BENCH_PAGE_SECONDS=2 BENCH_TARGET_ROUNDS=1 python -m bench.api`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from . import config, pages, writes

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).with_name("api.lua")
# The customers' balances outlast every charge of a run (1 credit each).
API_CUSTOMERS = 200


@dataclass
class WrkResult:
    label: str
    path: str
    per_second: float
    p50_ms: float
    p99_ms: float
    bad_responses: int


@dataclass
class ApiResult:
    ping: WrkResult  # the median of get_turns' pings
    customer: WrkResult  # and of their GET customers
    # At TARGET_CLIENTS, in turns: [(ping WrkResult, GET customer WrkResult)]
    get_turns: list = field(default_factory=list)
    # At TARGET_CLIENTS, in turns: [(charges WrkResult, TPC-B PgbenchResult)]
    turns: list = field(default_factory=list)

    @property
    def charges(self) -> WrkResult:
        return writes.median([charges for charges, _ in self.turns], key="per_second")

    @property
    def tpcb(self):
        return writes.median([tpcb for _, tpcb in self.turns], key="tps")


def wrk(base: str, key: str, mode: str, users: tuple[int, int], seconds: float) -> tuple:
    """(requests/s, p50 ms, p99 ms, failures) of `mode` (see bench/api.lua)."""
    run = f"bench{time.time_ns()}"
    out = subprocess.run(
        [
            "wrk",
            "--latency",
            f"-t{config.WRK_THREADS}",
            f"-c{config.TARGET_CLIENTS}",
            f"-d{max(1, round(seconds))}s",
            "-s",
            str(SCRIPT),
            "-H",
            f"Authorization: Bearer {key}",
            base,
            "--",
            mode,
            str(users[0]),
            str(users[1]),
            run,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50, p99 = (
        pages._ms(found.group(1))
        if (found := re.search(rf"^\s*{p}%\s+([\d.]+(?:us|ms|s|m))", out, re.M))
        else float("nan")
        for p in (50, 99)
    )
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return per_second, p50, p99, failures


def _measure(base, key, mode, label, path, users, seconds) -> WrkResult:
    wrk(base, key, mode, users, 1)  # warm every worker
    return WrkResult(label, path, *wrk(base, key, mode, users, seconds))


def _check(url: str, key: str) -> None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")


def run(server_url: str, pgbench_database: str, database_url: str, user_ids: list[int]):
    """The API's figures on the bench database `database_url`, whose users `user_ids`
    (consecutive ids) have credits; TPC-B on `pgbench_database` of `server_url`."""
    from django.db import connections

    from api.services import create_api_key

    users = (user_ids[0], user_ids[0] + min(len(user_ids), API_CUSTOMERS) - 1)
    key = create_api_key(name="Bench", scope="write").key
    # Statistics as autovacuum keeps them in production: the write benchmarks grew the lot
    # usages from none, and with the first statistics a charge's lots were read by a hash
    # join over every lot (9 ms a charge, against 0.06 ms after ANALYZE).
    with connections["default"].cursor() as cursor:
        cursor.execute("ANALYZE")
    connections.close_all()
    writes.pgbench_init(server_url, pgbench_database, 10)
    port = pages._free_port()
    env = {
        **os.environ,  # the same SECRET_KEY (the key's hash), and the broker if configured
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "600",
        # The limit guards against a runaway client; here the client is the benchmark.
        "API_RATE_LIMIT": "1000000",
        "API_RATE_BURST": "1000000",
        "PYTHONWARNINGS": "ignore",
    }
    server = subprocess.Popen(  # noqa: S603
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "spacecredits.wsgi",
            "--workers",
            str(config.GUNICORN_WORKERS),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                _check(f"{base}/api/v1/ping", key)
                break
            except OSError:
                time.sleep(0.2)
        _check(f"{base}/api/v1/customers/user_{users[0]}", key)
        seconds = config.PAGE_SECONDS
        # The two GETs take turns, several times: the machine's speed drifts (one run each
        # gave ratios from 0.48 to 0.61 in three runs of the same code), and each keeps its
        # median run, as the writes do.
        get_turns = [
            (
                _measure(base, key, "ping", "Trivial view", "/api/v1/ping", users, seconds),
                _measure(
                    base,
                    key,
                    "customer",
                    "GET customer (balance and buckets)",
                    "/api/v1/customers/{customer_id}",
                    users,
                    seconds,
                ),
            )
            for _ in range(config.TARGET_ROUNDS)
        ]
        result = ApiResult(
            ping=writes.median([ping for ping, _ in get_turns], key="per_second"),
            customer=writes.median([customer for _, customer in get_turns], key="per_second"),
            get_turns=get_turns,
        )
        wrk(base, key, "charge", users, 1)  # warm every worker
        for _ in range(config.TARGET_ROUNDS):
            charges = WrkResult(
                "POST charges",
                "/api/v1/customers/{customer_id}/charges",
                *wrk(base, key, "charge", users, config.SECONDS),
            )
            tpcb = writes.pgbench_run(
                server_url, pgbench_database, config.TARGET_CLIENTS, config.SECONDS
            )
            result.turns.append((charges, tpcb))
        return result
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def targets(result: ApiResult) -> list[tuple[str, str, str, float, str, bool]]:
    """(figure, ours, baseline, ratio, target, met), as bench/report.py's targets."""
    n = config.TARGET_CLIENTS
    customer, ping = result.customer, result.ping
    charges, tpcb = result.charges, result.tpcb
    get_ratio = customer.per_second / ping.per_second
    post_ratio = charges.per_second / tpcb.tps
    return [
        (
            f"API: GET customer req/s ÷ GET /api/v1/ping req/s, {n} connections",
            f"{customer.per_second:,.0f} req/s",
            f"{ping.per_second:,.0f} req/s",
            get_ratio,
            "≥ 0.5",
            get_ratio >= 0.5 and not customer.bad_responses,
        ),
        (
            f"API: POST charges/s ÷ pgbench TPC-B tps (scale 10), {n} clients",
            f"{charges.per_second:,.0f} charges/s",
            f"{tpcb.tps:,.0f} tps",
            post_ratio,
            "≥ 0.3",
            post_ratio >= 0.3 and not charges.bad_responses,
        ),
    ]


def _md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def target_table(result: ApiResult) -> str:
    return _md_table(
        ["figure", "ours", "baseline", "ratio", "target", "met"],
        [
            (f, o, b, f"{r:.2f}", t, "yes" if m else "**no**")
            for f, o, b, r, t, m in targets(result)
        ],
    )


def section(result: ApiResult) -> str:
    """The API's part of docs/benchmarks.md."""
    rows = [
        (
            r.label,
            f"`{r.path}`",
            f"{r.per_second:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            r.bad_responses,
        )
        for r in (result.ping, result.customer, result.charges)
    ]
    turns = "; ".join(
        f"{charges.per_second:,.0f} charges/s vs {tpcb.tps:,.0f} tps"
        for charges, tpcb in result.turns
    )
    get_turns = "; ".join(
        f"{customer.per_second:,.0f} vs {ping.per_second:,.0f} req/s"
        for ping, customer in result.get_turns
    )
    return f"""
## The API

gunicorn ({config.GUNICORN_WORKERS} sync workers, DEBUG off, the broker, relay and worker
up as for the writes) serves the API; `wrk` (`-t{config.WRK_THREADS}
-c{config.TARGET_CLIENTS}`, `bench/api.lua`) sends each request with a write key, for a
customer picked at random among {API_CUSTOMERS} (10 lots each). GET customer and ping take
{len(result.get_turns)} turns of {config.PAGE_SECONDS:g} s, each keeping its median
({get_turns}); POST charges (1 credit, an Idempotency-Key of its own each)
and pgbench's TPC-B (scale 10, {config.TARGET_CLIENTS} clients) take
{len(result.turns)} turns of {config.SECONDS:g} s, each keeping its median ({turns}).
`bench/api.py`.

{target_table(result)}

{_md_table(["request", "path", "req/s", "p50 ms", "p99 ms", "bad responses"], rows)}
"""


def write(result: ApiResult, docs: Path) -> str:
    """Add the API's section to docs/benchmarks.md (bench/report.py writes the rest)."""
    with (docs / "benchmarks.md").open("a") as text:
        text.write(section(result))
    return target_table(result)


def main() -> None:
    """The API's benchmark alone, on databases of its own, dropped at the end."""
    from . import __main__ as bench

    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        sys.exit("The benchmark needs DATABASE_URL pointing at PostgreSQL.")
    database, pgbench_database = (
        bench.BENCH_DATABASE + "_api",
        bench.BENCH_DATABASE + "_api_pgbench",
    )
    bench._recreate(server_url, database, pgbench_database)
    bench_url = bench._database_url(server_url, database)
    os.environ["DATABASE_URL"] = bench_url
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ["DJANGO_SETTINGS_MODULE"] = "spacecredits.settings"
    import tempfile

    import django

    django.setup()
    import datetime as dt

    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    from . import delivery, fixtures

    stack = None
    try:
        bench.log(f"Database {database}: migrating")
        call_command("migrate", verbosity=0)
        in_a_year = timezone.localdate() + dt.timedelta(days=365)
        user_ids = fixtures.load_customers_with_lots(
            "api",
            API_CUSTOMERS,
            lots=config.LOTS_PER_CUSTOMER,
            amount=1000,
            expires_on=[in_a_year + dt.timedelta(days=d) for d in range(10)],
            created_at=timezone.now(),
        )
        stack = delivery.Stack(bench_url, Path(tempfile.gettempdir()))
        stack.start_relay()
        stack.start_worker()
        bench._configure_broker(stack.url)
        bench.log("The API through gunicorn")
        result = run(server_url, pgbench_database, bench_url, user_ids)
        print()
        print(target_table(result))
        print()
        print(section(result))
    finally:
        if stack:
            stack.close()
        connections.close_all()
        bench._drop(server_url, database, pgbench_database)


if __name__ == "__main__":
    main()
