"""Ledger write throughput: client processes calling add_credits / deduct_credits, against
pgbench's built-in TPC-B-like script with the same number of clients on the same server."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import re
import resource
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from django.db import connections

from . import config


@dataclass
class WriteResult:
    clients: int
    seconds: float
    done: int = 0
    declined: int = 0  # InsufficientCredits: a correct answer, not an error
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    client_cpu: float = 0.0  # seconds of CPU the client processes used
    server_cpu: float | None = None  # seconds of CPU PostgreSQL's backends used
    delivery: object = None  # bench.delivery.Latency: commit to email sent

    def cpu_ms_per_op(self, cpu):
        return None if cpu is None or not self.done else cpu / self.done * 1000

    @property
    def per_second(self) -> float:
        return self.done / self.seconds

    def percentile(self, p: float) -> float:
        """Latency in milliseconds."""
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


def median(runs: list, *, key: str):
    """The run whose `key` is the median (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda run: getattr(run, key))
    return ordered[(len(ordered) - 1) // 2]


def _client(user_ids, seed, ready, start, seconds, queue, interval=None):
    """One client process: adjust random customers of `user_ids` for `seconds` from the
    moment the parent puts in `start` once every client is `ready`, at once one after the
    other, or one every `interval` seconds (an open loop at a set rate)."""
    from django.utils import timezone

    from credits.exceptions import InsufficientCredits
    from credits.services import add_credits, deduct_credits
    from customers.models import User

    rng = random.Random(seed)
    # With their accounts, as the views fetch a customer.
    customers = list(User.objects.filter(pk__in=user_ids).select_related("credit_account"))
    expires_on = timezone.localdate() + dt.timedelta(days=30)
    done = declined = 0
    errors, latencies = [], []
    ready.wait()  # every client has its customers and its connection
    ready.wait()  # and the parent has set the start
    start_at = start.value
    end_at = start_at + seconds
    time.sleep(max(0.0, start_at - time.time()))
    cpu_started = time.process_time()
    next_at = start_at + (rng.random() * interval if interval else 0)
    while time.time() < end_at:
        if interval:
            time.sleep(max(0.0, next_at - time.time()))
            next_at += interval
        customer = rng.choice(customers)
        started = time.perf_counter()
        try:
            if rng.random() < config.DEDUCT_SHARE:
                deduct_credits(customer, rng.randint(1, 8))
            else:
                add_credits(customer, 10, expires_on=expires_on)
        except InsufficientCredits:
            declined += 1
        except Exception as error:  # a deadlock or a broken invariant: reported, not hidden
            errors.append(f"{type(error).__name__}: {error}")
            continue
        else:
            done += 1
        latencies.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu_started
    connections.close_all()
    summary = errors[:5] + ([f"... {len(errors)} errors"] if errors else [])
    queue.put((done, declined, summary, latencies, cpu))


def run_ledger(
    user_ids: list[int], clients: int, seconds: float, *, rate: float | None = None
) -> WriteResult:
    """`clients` processes adjusting for `seconds`, as fast as they can, or together
    `rate` adjustments per second."""
    connections.close_all()  # children must not share the parent's connection
    interval = clients / rate if rate else None
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    # The clock starts once every client has loaded its customers: with a fixed start,
    # 16 processes loading at once on 2 CPUs missed most of a 6 s run (12 adj/s).
    ready, start = context.Barrier(clients + 1), context.Value("d", 0.0)
    processes = [
        context.Process(
            target=_client,
            args=(user_ids, seed, ready, start, seconds, queue, interval),
        )
        for seed in range(clients)
    ]
    for process in processes:
        process.start()
    result = WriteResult(clients=clients, seconds=seconds)
    ready.wait()
    start.value = start_at = time.time() + 0.05
    ready.wait()
    time.sleep(max(0.0, start_at - time.time()))
    server_cpu = server_cpu_seconds()
    for _ in processes:
        done, declined, errors, latencies, cpu = queue.get()
        result.done += done
        result.declined += declined
        result.errors += errors
        result.latencies += latencies
        result.client_cpu += cpu
    for process in processes:
        process.join()
    time.sleep(0.2)  # the backends exit when their clients close
    if server_cpu is not None:
        result.server_cpu = server_cpu_seconds() - server_cpu
    return result


def _postmaster_pid() -> int | None:
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            (directory,) = cursor.fetchone()
        return int(open(os.path.join(directory, "postmaster.pid")).readline())
    except Exception:  # not local, or not readable: the CPU split is left out
        return None
    finally:
        connections.close_all()


def server_cpu_seconds() -> float | None:
    """CPU used so far by PostgreSQL backends that have exited (the postmaster reaps them,
    so their time adds up in its children's counters). Includes other clients' backends
    that exit meanwhile; on a shared machine read it as an estimate."""
    global _POSTMASTER
    if _POSTMASTER is False:
        _POSTMASTER = _postmaster_pid()
    if _POSTMASTER is None:
        return None
    try:
        fields = open(f"/proc/{_POSTMASTER}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


_POSTMASTER: int | None | bool = False


@dataclass
class PgbenchResult:
    clients: int
    tps: float
    latency_ms: float
    failed: int
    transactions: int = 0
    client_cpu: float = 0.0
    server_cpu: float | None = None

    def cpu_ms_per_op(self, cpu):
        return None if cpu is None or not self.transactions else cpu / self.transactions * 1000


def _pg_args(database_url: str) -> tuple[list[str], dict]:
    url = urlparse(database_url)
    args = ["-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432)]
    if url.username:
        args += ["-U", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    return args, env


def pgbench_init(database_url: str, database: str, scale: int) -> None:
    args, env = _pg_args(database_url)
    subprocess.run(
        ["pgbench", *args, "-i", "-q", "-s", str(scale), database],
        env=env,
        check=True,
        capture_output=True,
    )


def pgbench_run(
    database_url: str, database: str, clients: int, seconds: float, extra: list[str] = ()
) -> PgbenchResult:
    args, env = _pg_args(database_url)
    server_cpu = server_cpu_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            "pgbench",
            *args,
            "-n",
            "-c",
            str(clients),
            "-j",
            str(min(clients, os.cpu_count())),
            "-T",
            str(max(1, round(seconds))),
            *extra,
            database,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", out)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(0.2)
    return PgbenchResult(
        clients,
        tps,
        latency,
        int(failed.group(1)) if failed else 0,
        transactions=int(
            re.search(r"number of transactions actually processed: (\d+)", out).group(1)
        ),
        client_cpu=after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime,
        server_cpu=None if server_cpu is None else server_cpu_seconds() - server_cpu,
    )


def ledger_sql_script(path: str, deduct_share: float) -> str:
    """What add_credits / deduct_credits send PostgreSQL, as a pgbench script.

    Run by pgbench's C client, it shows what the ledger costs PostgreSQL without Python
    and Django in between: the gap between this and the services is the client's.
    """
    from django.utils import timezone

    template = (Path(__file__).parent / "ledger_adjustment.sql").read_text()
    script = template.format(
        deduct_percent=round(deduct_share * 100), zone=timezone.get_default_timezone()
    )
    with open(path, "w") as script_file:
        script_file.write(script)
    return path


def pgbench_script_run(
    database_url: str, database: str, script: str, clients: int, seconds: float, **variables
) -> PgbenchResult:
    """pgbench running `script` (its SQL) instead of TPC-B."""
    defines = [arg for name, value in variables.items() for arg in ("-D", f"{name}={value}")]
    return pgbench_run(database_url, database, clients, seconds, extra=["-f", script, *defines])
