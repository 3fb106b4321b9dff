"""Read cost against history length: the same reads for a customer with 1,000,000
transactions and for one with 10, timed alternately in the same run."""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass

from django.db import connection

from credits import selectors

from . import config


def read_summary(customer):
    """What a profile page shows: balance and its breakdown, newest transactions."""
    selectors.get_balances(customer)
    return selectors.get_transaction_page(selectors.get_transactions(customer))


def read_page(customer, before: int):
    return selectors.get_transaction_page(selectors.get_transactions(customer), before=before)


@dataclass
class ReadResult:
    label: str
    big_ms: float
    small_ms: float
    queries: int

    @property
    def ratio(self) -> float:
        return self.big_ms / self.small_ms


def _median_ms(samples):
    return statistics.median(samples) * 1000


def time_alternately(big, small, repeats: int) -> tuple[float, float]:
    """Median time of big() and small(), called in turns so drift hits both alike."""
    for _ in range(20):  # warm caches and connections
        big()
        small()
    big_times, small_times = [], []
    for _ in range(repeats):
        for call, samples in ((big, big_times), (small, small_times)):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
    return _median_ms(big_times), _median_ms(small_times)


def run(big_customer, small_customer) -> tuple[list[ReadResult], list[tuple[str, str]]]:
    big_last = big_customer.credit_account.last_seq
    small_last = small_customer.credit_account.last_seq
    deep_before = big_last - config.DEEP_PAGES * selectors.PAGE_SIZE
    small_before = small_last // 2 + 1  # a page of older rows of the short history

    page, summary_queries = _with_queries(lambda: read_summary(big_customer))
    assert len(page.rows) == selectors.PAGE_SIZE and page.rows[0].seq == big_last
    deep, deep_queries = _with_queries(lambda: read_page(big_customer, deep_before))
    assert deep.rows[0].seq == deep_before - 1

    results = []
    big_ms, small_ms = time_alternately(
        lambda: read_summary(big_customer),
        lambda: read_summary(small_customer),
        config.READ_REPEATS,
    )
    results.append(
        ReadResult("balance + breakdown + newest page", big_ms, small_ms, len(summary_queries))
    )
    big_ms, small_ms = time_alternately(
        lambda: read_page(big_customer, deep_before),
        lambda: read_page(small_customer, small_before),
        config.READ_REPEATS,
    )
    results.append(
        ReadResult(
            f"page {config.DEEP_PAGES:,} pages deep (before=seq {deep_before:,})",
            big_ms,
            small_ms,
            len(deep_queries),
        )
    )
    plans = [(sql, explain(sql, params)) for sql, params in [*summary_queries, *deep_queries]]
    return results, plans


def _with_queries(read):
    """read()'s answer and the (sql, params) it ran: as given to the cursor, so that a
    statement the server binds (the balance query) can be explained with its values."""
    queries = []

    def record(execute, sql, params, many, context):
        queries.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        answer = read()
    return answer, queries


def explain(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def indexes_used(plan: str) -> list[str]:
    return sorted(set(re.findall(r"(?:Index|Index Only) Scan(?: Backward)? using (\w+)", plan)))
