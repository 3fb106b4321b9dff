"""Read cost against history length: the same reads for a customer with 1,000,000
transactions and for one with 10, timed alternately in the same run."""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass

from django.db import connection
from django.test.utils import CaptureQueriesContext

from credits import selectors

from . import config


def read_summary(customer):
    """What a profile page shows: balance, expiration breakdown, newest transactions."""
    selectors.get_balance(customer)
    selectors.get_expiration_breakdown(customer)
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

    with CaptureQueriesContext(connection) as summary_queries:
        page = read_summary(big_customer)
    assert len(page.rows) == selectors.PAGE_SIZE and page.rows[0].seq == big_last
    with CaptureQueriesContext(connection) as deep_queries:
        deep = read_page(big_customer, deep_before)
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
    plans = [
        (query["sql"], explain(query["sql"]))
        for query in [*summary_queries.captured_queries, *deep_queries.captured_queries]
    ]
    return results, plans


def explain(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def indexes_used(plan: str) -> list[str]:
    return sorted(set(re.findall(r"(?:Index|Index Only) Scan(?: Backward)? using (\w+)", plan)))
