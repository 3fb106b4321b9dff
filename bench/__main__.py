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


def _configure_broker(url: str) -> None:
    """Point this process's Celery at `url` ("": none, tasks in-process)."""
    from django.conf import settings

    from spacecredits.celery import app

    os.environ["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL = url
    app.conf.broker_url = url or None
    app.conf.task_always_eager = not url
    app._pool = None
    app.amqp._producer_pool = None


def outbox_runs(stack, user_ids, rows, log):
    """At TARGET_CLIENTS, what the deliveries cost the adjustments: the ledger with the
    broker configured but nothing handing out (emails pile up in the database), with the
    relay publishing to Redis but no worker (tasks pile up there), and (from `rows`) with
    the worker sending on the same CPUs; then the latency from commit to email at half the
    rate all three manage together, a load the machine keeps up with."""
    from notifications.models import Notification

    from . import config, delivery, writes

    n = config.TARGET_CLIENTS
    full = next(ledger for ledger, *_ in rows if ledger.clients == n)
    stack.stop_worker()
    stack.stop_relay()
    alone = writes.run_ledger(user_ids, n, config.SECONDS)
    stack.start_relay()
    relayed = writes.run_ledger(user_ids, n, config.SECONDS)
    stack.start_worker()
    delivery.drain(stack.url)
    last_pk = Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    paced = writes.run_ledger(user_ids, n, config.SECONDS, rate=full.per_second / 2)
    paced.delivery = delivery.latency(last_pk)
    log(
        f"  {n} clients: {alone.per_second:.0f} adj/s with nothing handing out, "
        f"{relayed.per_second:.0f} with the relay, {full.per_second:.0f} with relay and worker; "
        f"at {paced.per_second:.0f} adj/s email p50 {paced.delivery.p50_ms:.0f} ms, "
        f"p95 {paced.delivery.p95_ms:.0f} ms"
    )
    return alone, relayed, full, paced


def main() -> None:
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        sys.exit("make bench needs DATABASE_URL pointing at PostgreSQL.")
    started = time.monotonic()
    _recreate(server_url, BENCH_DATABASE, PGBENCH_DATABASE)
    bench_url = _database_url(server_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = bench_url
    os.environ.pop("CELERY_BROKER_URL", None)  # until the write benchmarks: bench/delivery.py
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
    from notifications.models import Notification

    from . import api, config, delivery, fixtures, pages, reads, report, sweep, verbs, writes

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
        # The writes run as in production: a broker configured (no call to it in the
        # request), the relay and a worker sending every email.
        stack = delivery.Stack(bench_url, Path(tempfile.gettempdir()))
        stack.start_relay()
        stack.start_worker()
        _configure_broker(stack.url)
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
                turns = []
                for _ in range(rounds):
                    last_pk = Notification.objects.order_by("-pk").values_list("pk", flat=True)
                    last_pk = last_pk.first() or 0
                    ledger = writes.run_ledger(user_ids, clients, config.SECONDS)
                    ledger.delivery = delivery.latency(last_pk)
                    turns.append(
                        (
                            ledger,
                            writes.pgbench_run(
                                server_url, PGBENCH_DATABASE, clients, config.SECONDS
                            ),
                        )
                    )
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
                d = ledger.delivery
                log(
                    f"  {clients:>2} clients: delivery commit to email sent p50 {d.p50_ms:.0f} ms,"
                    f" p95 {d.p95_ms:.0f} ms ({d.emails} emails, {d.missing} not sent in 60 s)"
                )
            results.outbox[name] = outbox_runs(stack, user_ids, rows, log)
        log("The API through gunicorn: GET customer vs ping, POST charges vs TPC-B")
        api_result = api.run(server_url, PGBENCH_DATABASE, bench_url, spread_ids)
        for line in api.target_table(api_result).splitlines()[2:]:
            log("  " + line)
        os.remove(script)
        _drop(server_url, PGBENCH_DATABASE)
        log("A hold then its capture against an adjustment (one client)")
        results.hold_cost = verbs.run(spread_ids)
        log(
            f"  adjustment {results.hold_cost.adjustment_ms:.2f} ms, hold + capture "
            f"{results.hold_cost.hold_capture_ms:.2f} ms"
        )
        # The relay and worker stop; the broker stays configured (and away): the sweep
        # and the pages below make no call to it, and their emails stay pending.
        stack.close()

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
        # As a release does (README): hashed, compressed static files, which pages name.
        call_command("collectstatic", interactive=False, verbosity=0)
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
        table += "\n" + api.write(api_result, ROOT / "docs")
        print()
        print(table)
    finally:
        from django.db import connections

        connections.close_all()
        if not os.environ.get("BENCH_KEEP"):
            _drop(server_url, BENCH_DATABASE, PGBENCH_DATABASE)


if __name__ == "__main__":
    main()
