"""The table `make bench` prints, docs/benchmarks.md and the chart docs/benchmarks.svg."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from . import config
from .reads import indexes_used


@dataclass
class Results:
    machine: str
    spread: list = field(default_factory=list)  # (WriteResult, PgbenchResult) per clients
    hot: list = field(default_factory=list)
    # At TARGET_CLIENTS: {"spread" | "hot": [(adjustments/s, TPC-B tps) per turn]}
    rounds: dict = field(default_factory=dict)
    # At TARGET_CLIENTS: {"spread" | "hot": (alone, relayed, full, paced) WriteResults}
    outbox: dict = field(default_factory=dict)
    hold_cost: object = None  # bench.verbs.HoldCost
    reads: list = field(default_factory=list)
    plans: list = field(default_factory=list)
    pages: list = field(default_factory=list)
    sweep: object = None  # the median of sweep_rounds
    sweep_rounds: list = field(default_factory=list)
    invariants_checked: bool = False
    minutes: float = 0.0


def machine(connection) -> str:
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    try:
        pages = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        memory = f"{pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        memory = "unknown RAM"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
        settings = []
        for name in ("shared_buffers", "synchronous_commit", "fsync", "max_connections"):
            cursor.execute(f"SHOW {name}")
            settings.append(f"{name}={cursor.fetchone()[0]}")
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {version} ({', '.join(settings)}); "
        f"{wrk[0].split(' [')[0] if wrk and wrk[0] else 'wrk'}. "
        "The machine is shared: other processes used the CPUs during the run."
    )


def _at(rows, clients):
    return next((row for row in rows if row[0].clients == clients), rows[-1] if rows else None)


def _target_page(results: Results):
    for page in results.pages[1:]:
        if page.label.lower().startswith("profile"):
            return page
    return results.pages[1] if len(results.pages) > 1 else None


def targets(results: Results) -> list[tuple[str, str, str, float, str, bool]]:
    """(figure, ours, baseline, ratio, target, met) for the table of targets."""
    rows = []
    n = config.TARGET_CLIENTS
    for name, measured, scale in (
        ("spread customers", results.spread, 10),
        ("one hot customer", results.hot, 1),
    ):
        ledger, baseline, _sql = _at(measured, n)
        ratio = ledger.per_second / baseline.tps
        clean = not ledger.errors
        rows.append(
            (
                f"adjustments/s ÷ pgbench TPC-B tps (scale {scale}), {ledger.clients} clients, "
                f"{name}",
                f"{ledger.per_second:,.0f} adj/s"
                + ("" if clean else f" ({len(ledger.errors)} errors)"),
                f"{baseline.tps:,.0f} tps",
                ratio,
                "≥ 0.5" + (", no errors or deadlocks" if scale == 1 else ""),
                ratio >= 0.5 and clean,
            )
        )
    for name, measured in (("spread", results.spread), ("hot", results.hot)):
        if name not in results.outbox:
            continue
        _alone, relayed, _full, paced = results.outbox[name]
        baseline = _at(measured, n)[1]
        ratio = relayed.per_second / baseline.tps
        rows.append(
            (
                f"adjustments/s ÷ TPC-B tps, {n} clients, {name}: broker configured and the "
                "relay publishing, the worker not on these CPUs",
                f"{relayed.per_second:,.0f} adj/s",
                f"{baseline.tps:,.0f} tps",
                ratio,
                "≥ 0.5",
                ratio >= 0.5 and not relayed.errors,
            )
        )
        for label, run in (("all it can", _at(measured, n)[0]), ("half that rate", paced)):
            latency = run.delivery
            rows.append(
                (
                    f"email p95, commit to sent, {n} clients, {name}, at {label} "
                    f"({run.per_second:,.0f} adj/s), worker on the same CPUs",
                    f"{latency.p95_ms:,.0f} ms",
                    "1,000 ms",
                    latency.p95_ms / 1000,
                    "< 1 s",
                    latency.p95_ms < 1000 and not latency.missing,
                )
            )
    if results.hold_cost:
        cost = results.hold_cost
        rows.append(
            (
                f"a hold then its capture ÷ one adjustment (deduct_credits), median of "
                f"{cost.pairs} each, one client",
                f"{cost.hold_capture_ms:.2f} ms",
                f"{cost.adjustment_ms:.2f} ms",
                cost.ratio,
                "≤ 2",
                cost.ratio <= 2,
            )
        )
    summary, deep = results.reads
    rows.append(
        (
            "read at 1,000,000 transactions ÷ read at 10 (balance + breakdown + newest page)",
            f"{summary.big_ms:.2f} ms",
            f"{summary.small_ms:.2f} ms",
            summary.ratio,
            "≤ 1.2",
            summary.ratio <= 1.2,
        )
    )
    rows.append(
        (
            f"deep page ({config.DEEP_PAGES:,} pages deep) ÷ a page of the short history",
            f"{deep.big_ms:.2f} ms",
            f"{deep.small_ms:.2f} ms",
            deep.ratio,
            "≤ 1.5",
            deep.ratio <= 1.5,
        )
    )
    page = _target_page(results)
    trivial = results.pages[0]
    if page:
        ratio = page.per_second / trivial.per_second
        rows.append(
            (
                f"{page.label} req/s ÷ trivial view req/s",
                f"{page.per_second:,.0f} req/s",
                f"{trivial.per_second:,.0f} req/s",
                ratio,
                "≥ 0.5",
                ratio >= 0.5,
            )
        )
    sweep = results.sweep
    rows.append(
        (
            f"expiry sweep ({sweep.lots:,} lots, {sweep.customers:,} customers) ÷ plain SQL UPDATE",
            f"{sweep.sweep_s:.2f} s",
            f"{sweep.update_s:.2f} s",
            sweep.ratio,
            "≤ 3",
            sweep.ratio <= 3,
        )
    )
    return rows


def _md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def target_table(results: Results) -> str:
    return _md_table(
        ["figure", "ours", "baseline", "ratio", "target", "met"],
        [
            (f, o, b, f"{r:.2f}", t, "yes" if m else "**no**")
            for f, o, b, r, t, m in targets(results)
        ],
    )


def _sweep_rows(rounds: list) -> str:
    return "\n".join(
        f"| {number} | {swept.sweep_s:.2f} s | {swept.update_s:.2f} s | {swept.ratio:.2f} |"
        for number, swept in enumerate(rounds, 1)
    )


def _rounds_text(rounds: dict) -> str:
    if not rounds:
        return "one turn each"
    return "; ".join(
        f"{name}: "
        + ", ".join(f"{adjustments:,.0f} adj/s vs {tps:,.0f} tps" for adjustments, tps in turns)
        for name, turns in rounds.items()
    )


def _ms(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _delivery(latency) -> str:
    if latency is None:
        return "–"
    missing = f" ({latency.missing} not sent)" if latency.missing else ""
    return f"{latency.p50_ms:.0f} / {latency.p95_ms:.0f}{missing}"


def _write_rows(measured):
    return [
        (
            ledger.clients,
            f"{ledger.per_second:,.0f}",
            f"{ledger.percentile(50):.1f}",
            f"{ledger.percentile(95):.1f}",
            f"{ledger.percentile(99):.1f}",
            f"{ledger.declined}",
            f"{len(ledger.errors)}",
            f"{_ms(ledger.cpu_ms_per_op(ledger.client_cpu))} + "
            f"{_ms(ledger.cpu_ms_per_op(ledger.server_cpu))}",
            f"{sql.tps:,.0f}",
            f"{_ms(sql.cpu_ms_per_op(sql.client_cpu))} + {_ms(sql.cpu_ms_per_op(sql.server_cpu))}",
            f"{baseline.tps:,.0f}",
            f"{baseline.latency_ms:.1f}",
            f"{_ms(baseline.cpu_ms_per_op(baseline.client_cpu))} + "
            f"{_ms(baseline.cpu_ms_per_op(baseline.server_cpu))}",
            f"{ledger.per_second / baseline.tps:.2f}",
            f"{sql.tps / baseline.tps:.2f}",
            _delivery(ledger.delivery),
        )
        for ledger, baseline, sql in measured
    ]


def _outbox_rows(results: Results):
    rows = []
    for name, measured in (("spread", results.spread), ("hot", results.hot)):
        if name not in results.outbox:
            continue
        alone, relayed, full, paced = results.outbox[name]
        tps = _at(measured, config.TARGET_CLIENTS)[1].tps
        rows.append(
            (
                name,
                f"{alone.per_second:,.0f} adj/s",
                f"{relayed.per_second:,.0f} adj/s",
                f"{full.per_second:,.0f} adj/s",
                " / ".join(f"{run.per_second / tps:.2f}" for run in (alone, relayed, full)),
                f"{paced.per_second:,.0f}",
                _delivery(paced.delivery),
            )
        )
    return rows


def write(results: Results, docs: Path) -> str:
    docs.mkdir(exist_ok=True)
    (docs / "benchmarks.svg").write_text(chart(results))
    write_header = [
        "clients",
        "adj/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "declined",
        "errors",
        "CPU ms/adj (Python + server)",
        "ledger SQL by pgbench tps",
        "its CPU ms/tx (pgbench + server)",
        "TPC-B tps",
        "TPC-B avg ms",
        "TPC-B CPU ms/tx (pgbench + server)",
        "adj/s ÷ TPC-B",
        "ledger SQL ÷ TPC-B",
        "email p50 / p95 ms (commit to sent)",
    ]
    errors = [error for ledger, *_ in results.spread + results.hot for error in ledger.errors]
    plans = []
    for sql, plan in results.plans:
        used = ", ".join(indexes_used(plan)) or "no index"
        plans.append(f"- `{sql[:160]}{'…' if len(sql) > 160 else ''}`\n  uses: **{used}**")
    plan_text = "\n\n".join(f"```\n{sql}\n\n{plan}\n```" for sql, plan in results.plans)
    text = f"""# Benchmarks

Written by `make bench` (bench/), {results.minutes:.1f} minutes. Every figure is a ratio to a
baseline measured in the same run on the same machine; absolute numbers drift from run to
run and machine to machine, the ratios much less.

Machine: {results.machine}

## Targets

{target_table(results)}

Ledger invariants checked over the whole bench database after loading the fixtures and
the write benchmarks, and again after the sweep: {
        "all hold" if results.invariants_checked else "not checked"
    }.

## Ledger write throughput

Client processes (Python, Django, psycopg) call `add_credits` (30%, 10 credits expiring
in 30 days) and `deduct_credits` (70%, 1 to 8 credits) for {config.SECONDS:g} s per point.
Baseline: `pgbench`'s built-in TPC-B-like script (`-c N -j min(N, CPUs)`) for the same time
against the same server. At {config.TARGET_CLIENTS} clients the two took turns
{config.TARGET_ROUNDS} times and the tables show the median run of each (the turns:
{_rounds_text(results.rounds)}). In between, "ledger SQL by pgbench": what the two services
send PostgreSQL, one call of the `credits_post_adjustment` function each with its
notification (bench/ledger_adjustment.sql), run by pgbench's C client against the bench
database, to separate what the ledger costs PostgreSQL from what the Python client costs.
Emails go out as in production: a broker (Redis) configured, the relay
(`relay_deliveries`) and a Celery worker (2 processes, the database email sink) running on
the same machine; "email p50 / p95": from each adjustment's commit to its email sent.
"declined" counts `InsufficientCredits` (a correct refusal, not an error). CPU per
adjustment: client
processes' CPU time, and PostgreSQL backends' CPU time (read from the postmaster's
reaped-children counters, so other backends that exit meanwhile count too). Why the
ratios are what they are: [docs/performance.md](performance.md).

![adjustments/s and pgbench tps against clients](benchmarks.svg)

Spread: {config.SPREAD_CUSTOMERS:,} customers with {config.LOTS_PER_CUSTOMER} lots each;
pgbench at scale 10.

{_md_table(write_header, _write_rows(results.spread))}

One hot customer that every client adjusts; pgbench at scale 1 (one branch row).

{_md_table(write_header, _write_rows(results.hot))}

{"Errors: " + "; ".join(errors[:10]) if errors else "No errors and no deadlocks."}

## What the deliveries cost the adjustments

At {config.TARGET_CLIENTS} clients, the same writes with less of the delivery stack
running (the broker is configured throughout, and the request never calls it): nothing
handing out (the emails wait in the database), the relay publishing to Redis with no
worker (the tasks wait in Redis), and relay and worker (2 processes) sending on the same
CPUs as everything else. Then, with the whole stack, the writes at half the rate the
whole stack managed, a load the machine keeps up with, and the email latency there.

{
        _md_table(
            [
                "customers",
                "nothing handing out",
                "relay, no worker",
                "relay and worker",
                "÷ TPC-B (the three)",
                "at half the rate: adj/s",
                "email p50 / p95 ms",
            ],
            _outbox_rows(results),
        )
    }

## Read cost against history length

A customer with {config.BIG_HISTORY_TRANSACTIONS:,} transactions and
{config.BIG_HISTORY_LOTS:,} lots (all but 6 used up or expired) against one with
{config.SMALL_HISTORY}; medians of {config.READ_REPEATS} alternating calls.

{
        _md_table(
            ["read", "1,000,000 transactions", "10 transactions", "ratio", "queries"],
            [
                (r.label, f"{r.big_ms:.2f} ms", f"{r.small_ms:.2f} ms", f"{r.ratio:.2f}", r.queries)
                for r in results.reads
            ],
        )
    }

The queries, and the indexes their plans use (EXPLAIN ANALYZE on the big customer):

{chr(10).join(plans)}

<details><summary>Plans</summary>

{plan_text}

</details>

## Page throughput

gunicorn ({config.GUNICORN_WORKERS} sync workers, DEBUG off) serves the app; `wrk`
(`-t{config.WRK_THREADS} -c{config.WRK_CONNECTIONS}`, {config.PAGE_SECONDS:g} s per page,
logged in as staff) loads one page at a time. The customer shown is the one with
{config.BIG_HISTORY_TRANSACTIONS:,} transactions. Pages are listed in `bench/config.py`
(`PAGES`).

{
        _md_table(
            ["page", "path", "req/s", "p50 ms", "p99 ms", "bad responses", "÷ trivial"],
            [
                (
                    p.label,
                    f"`{p.path}`",
                    f"{p.per_second:,.0f}",
                    f"{p.p50_ms:.1f}",
                    f"{p.p99_ms:.1f}",
                    p.bad_responses,
                    f"{p.per_second / results.pages[0].per_second:.2f}",
                )
                for p in results.pages
            ],
        )
    }

## Expiry sweep

`expire_due_credits()` over {results.sweep.lots:,} due lots of {results.sweep.customers:,}
customers (two expiration dates each), against one `UPDATE credits_creditlot SET remaining = 0
WHERE remaining > 0 AND expires_on < today` over the same rows (rolled back, then vacuumed).
{len(results.sweep_rounds)} rounds, each over fresh due lots; the targets table shows the
median round. The sweep runs `CREDITS_SWEEP_CONNECTIONS` batches at once
({settings.CREDITS_SWEEP_CONNECTIONS} here).

| round | sweep | plain UPDATE | ratio |
|---|---|---|---|
{_sweep_rows(results.sweep_rounds)}
"""
    (docs / "benchmarks.md").write_text(text)
    return target_table(results)


def chart(results: Results) -> str:
    """A line chart (hand-written SVG): adjustments/s and pgbench tps against clients."""
    width, height, left, right, top, bottom = 720, 420, 70, 200, 40, 50
    spread, hot = results.spread, results.hot
    series = [
        ("ledger, spread", "#1f6feb", "", [(w.clients, w.per_second) for w, _, _ in spread]),
        ("its SQL by pgbench", "#1f6feb", "2 3", [(q.clients, q.tps) for _, _, q in spread]),
        ("TPC-B, scale 10", "#1f6feb", "8 4", [(b.clients, b.tps) for _, b, _ in spread]),
        ("ledger, hot customer", "#d9480f", "", [(w.clients, w.per_second) for w, _, _ in hot]),
        ("its SQL by pgbench", "#d9480f", "2 3", [(q.clients, q.tps) for _, _, q in hot]),
        ("TPC-B, scale 1", "#d9480f", "8 4", [(b.clients, b.tps) for _, b, _ in hot]),
    ]
    clients = sorted({c for *_, points in series for c, _ in points})
    top_value = max((v for *_, points in series for _, v in points), default=1)
    step = 10 ** math.floor(math.log10(top_value)) if top_value > 0 else 1
    y_max = math.ceil(top_value / step) * step
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(c):
        span = math.log2(clients[-1] / clients[0]) if len(clients) > 1 else 1
        return left + plot_w * (math.log2(c / clients[0]) / span if span else 0.5)

    def y(v):
        return top + plot_h * (1 - v / y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14" font-weight="bold">Adjustments/s and pgbench '
        "tps against clients</text>",
    ]
    for i in range(0, 6):
        value = y_max * i / 5
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{left - 8}" y="{y(value) + 4:.1f}" text-anchor="end">{value:,.0f}</text>'
        )
    for c in clients:
        parts.append(
            f'<text x="{x(c):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{c}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 10}" text-anchor="middle">'
        "clients (processes)</text>"
    )
    parts.append(
        f'<text transform="translate(16 {top + plot_h / 2}) rotate(-90)" '
        'text-anchor="middle">per second</text>'
    )
    for n, (label, color, dash, points) in enumerate(series):
        if not points:
            continue
        path = " ".join(f"{x(c):.1f},{y(v):.1f}" for c, v in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2" '
            f'stroke-dasharray="{dash}"/>'
        )
        for c, v in points:
            parts.append(f'<circle cx="{x(c):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"/>')
        ly = top + 10 + 22 * n
        lx = left + plot_w + 16
        parts.append(
            f'<line x1="{lx}" x2="{lx + 28}" y1="{ly}" y2="{ly}" stroke="{color}" '
            f'stroke-width="2" stroke-dasharray="{dash}"/>'
        )
        parts.append(f'<text x="{lx + 34}" y="{ly + 4}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
