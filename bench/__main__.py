"""`python -m bench`: create the bench database, load fixtures, run every benchmark, print
the table and write docs/benchmarks.md and docs/benchmarks.svg."""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "spacecredits_bench")
PGBENCH_DATABASE = BENCH_DATABASE + "_pgbench"


def _database_url(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path="/" + name))


def _recreate(server_url: str, *names: str) -> None:
    with psycopg.connect(_database_url(server_url, "postgres"), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')


def _drop(server_url: str, *names: str) -> None:
    with psycopg.connect(_database_url(server_url, "postgres"), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main() -> None:
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        sys.exit("make bench needs DATABASE_URL pointing at PostgreSQL.")
    started = time.monotonic()
    _recreate(server_url, BENCH_DATABASE, PGBENCH_DATABASE)
    bench_url = _database_url(server_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = bench_url
    os.environ.pop("CELERY_BROKER_URL", None)  # tasks run in-process: no broker is timed
    # As in production: DEBUG off (no query log) and a throwaway key.
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    os.environ["DJANGO_SETTINGS_MODULE"] = "spacecredits.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from credits import selectors, services
    from customers.models import User
    from notifications import services as notifications

    from . import config, fixtures, pages, reads, report, sweep, writes

    # Notifications are written in the ledger's transactions, as always; handing their
    # emails to Celery after commit is left out: in production a worker sends them, and
    # with no broker here the eager task would send each email inside the client.
    notifications._queue_emails = lambda notification_ids: None

    try:
        log(f"Database {BENCH_DATABASE}: migrating")
        call_command("migrate", verbosity=0)
        results = report.Results(machine=report.machine(connection))

        log("Fixtures: spread and hot customers")
        now = timezone.now()
        in_a_year = timezone.localdate() + dt.timedelta(days=365)
        spread_ids = fixtures.load_customers_with_lots(
            "spread",
            config.SPREAD_CUSTOMERS,
            lots=config.LOTS_PER_CUSTOMER,
            amount=1000,
            expires_on=[in_a_year + dt.timedelta(days=d) for d in range(10)],
            created_at=now,
        )
        hot_ids = fixtures.load_customers_with_lots(
            "hot",
            1,
            lots=config.LOTS_PER_CUSTOMER,
            amount=100_000,
            expires_on=[in_a_year + dt.timedelta(days=d) for d in range(10)],
            created_at=now,
        )

        script = writes.ledger_sql_script(
            os.path.join(tempfile.gettempdir(), f"{BENCH_DATABASE}_adjustment.sql"),
            config.DEDUCT_SHARE,
        )
        for name, user_ids, scale, rows in (
            ("spread", spread_ids, 10, results.spread),
            ("hot", hot_ids, 1, results.hot),
        ):
            log(f"Writes, {name}: pgbench at scale {scale}")
            writes.pgbench_init(server_url, PGBENCH_DATABASE, scale)
            first, last = user_ids[0], user_ids[-1]
            assert last - first + 1 == len(user_ids), "pgbench picks customers from a range"
            accounts = fixtures.account_ids(user_ids)
            assert accounts[-1] - accounts[0] + 1 == len(accounts), "opened in user id order"
            for clients in config.CLIENTS:
                # At the target's client count the ledger and TPC-B take turns, several
                # times: the machine's speed drifts, and each keeps its median run.
                rounds = config.TARGET_ROUNDS if clients == config.TARGET_CLIENTS else 1
                turns = [
                    (
                        writes.run_ledger(user_ids, clients, config.SECONDS),
                        writes.pgbench_run(server_url, PGBENCH_DATABASE, clients, config.SECONDS),
                    )
                    for _ in range(rounds)
                ]
                ledger = writes.median([ledger for ledger, _ in turns], key="per_second")
                baseline = writes.median([baseline for _, baseline in turns], key="tps")
                if rounds > 1:
                    results.rounds[name] = [(ledger.per_second, tpcb.tps) for ledger, tpcb in turns]
                sql = writes.pgbench_script_run(
                    server_url,
                    BENCH_DATABASE,
                    script,
                    clients,
                    config.SECONDS,
                    first=accounts[0],
                    last=accounts[-1],
                    user_offset=first - accounts[0],
                )
                rows.append((ledger, baseline, sql))
                log(
                    f"  {clients:>2} clients: {ledger.per_second:7.0f} adj/s, ledger SQL by "
                    f"pgbench {sql.tps:7.0f} tps, TPC-B {baseline.tps:7.0f} tps, "
                    f"errors {len(ledger.errors)}"
                )
        os.remove(script)
        _drop(server_url, PGBENCH_DATABASE)

        log("Fixtures: a customer with 1,000,000 transactions and one with 10")
        big_id = fixtures.load_long_history(
            "history",
            lots=config.BIG_HISTORY_LOTS,
            transactions=config.BIG_HISTORY_TRANSACTIONS,
        )
        small = User.objects.create_user("small-history@bench.example", first_name="Small")
        expires = timezone.localdate() + dt.timedelta(days=30)
        for n in range(config.SMALL_HISTORY):
            if n % 2 == 0:
                services.add_credits(small, 20, expires_on=expires + dt.timedelta(days=n))
            else:
                services.deduct_credits(small, 7)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        log("Checking every ledger invariant")
        fixtures.assert_invariants("after loading the fixtures and the write benchmarks")
        results.invariants_checked = True

        log("Reads")
        big = User.objects.get(pk=big_id)
        results.reads, results.plans = reads.run(big, small)
        for read in results.reads:
            log(f"  {read.label}: {read.big_ms:.2f} ms vs {read.small_ms:.2f} ms")

        log("Pages")
        admin = fixtures.staff_user()
        client = Client()
        client.force_login(admin)
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        deep_before = big.credit_account.last_seq - config.DEEP_PAGES * selectors.PAGE_SIZE
        ids = {"user_id": big_id, "small_user_id": small.pk, "deep_before": deep_before}
        results.pages = pages.run(bench_url, cookie, ids)
        for page in results.pages:
            log(f"  {page.label}: {page.per_second:.0f} req/s")

        # Each round expires a fresh set of due lots; the sweep keeps its median round.
        for round_number in range(1, config.SWEEP_ROUNDS + 1):
            log(f"Sweep, round {round_number}: fixtures")
            yesterday = timezone.localdate() - dt.timedelta(days=1)
            fixtures.load_customers_with_lots(
                f"sweep{round_number}-",
                config.SWEEP_CUSTOMERS,
                lots=config.SWEEP_LOTS_PER_CUSTOMER,
                amount=10,
                expires_on=[yesterday - dt.timedelta(days=d) for d in range(2)],
                created_at=now - dt.timedelta(days=60),
            )
            swept = sweep.run()
            results.sweep_rounds.append(swept)
            log(f"  {swept.lots} lots: {swept.sweep_s:.2f} s vs {swept.update_s:.2f} s")
        results.sweep = writes.median(results.sweep_rounds, key="ratio")
        fixtures.assert_invariants("after the sweep")

        results.minutes = (time.monotonic() - started) / 60
        table = report.write(results, ROOT / "docs")
        print()
        print(table)
    finally:
        from django.db import connections

        connections.close_all()
        if not os.environ.get("BENCH_KEEP"):
            _drop(server_url, BENCH_DATABASE, PGBENCH_DATABASE)


if __name__ == "__main__":
    main()
