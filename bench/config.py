"""What `make bench` measures, and for how long. Environment variables override the
durations (BENCH_SECONDS) so a quick run is `BENCH_SECONDS=3 make bench`."""

import os

# Seconds each write-throughput point runs (ledger and pgbench alike).
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
CLIENTS = [int(n) for n in os.environ.get("BENCH_CLIENTS", "1,2,4,8,16").split(",")]
# The client count the targets are read at, and how many times the ledger and TPC-B
# take turns there (each keeps its median run).
TARGET_CLIENTS = 8
TARGET_ROUNDS = int(os.environ.get("BENCH_TARGET_ROUNDS", "3"))

# Write throughput: customers with about 10 lots each; 70% of calls deduct.
SPREAD_CUSTOMERS = 1_000
LOTS_PER_CUSTOMER = 10
DEDUCT_SHARE = 0.7

# Read cost: one customer with this many transactions and lots, one with SMALL_HISTORY.
BIG_HISTORY_LOTS = 10_000
BIG_HISTORY_TRANSACTIONS = 1_000_000
SMALL_HISTORY = 10
DEEP_PAGES = 20_000  # how many pages deep the deep page is
READ_REPEATS = int(os.environ.get("BENCH_READ_REPEATS", "300"))

# Expiry sweep: due lots across customers.
SWEEP_CUSTOMERS = 10_000
SWEEP_LOTS_PER_CUSTOMER = 10
SWEEP_ROUNDS = int(os.environ.get("BENCH_SWEEP_ROUNDS", "3"))  # the median round counts

# Page throughput: gunicorn serves, wrk loads. Each page is (label, path); the path may
# use {user_id} (the customer with a 1,000,000-transaction history), {small_user_id} and
# {deep_before} (the cursor of the page DEEP_PAGES deep). The first page whose label
# starts with "Profile" is the one the target is read at (else the first page).
TRIVIAL_PAGE = ("Trivial view (/healthz)", "/healthz")
PAGES = [
    ("Profile page", "/customers/users/{user_id}/"),
    ("Transactions page", "/customers/users/{user_id}/transactions/"),
    (
        "Transactions page, 20,000 pages deep",
        "/customers/users/{user_id}/transactions/?before={deep_before}",
    ),
    ("Django admin: adjust credits page", "/admin/customers/user/{user_id}/adjust-credits/"),
    # The smallest logged-in, database-backed response the app has (session, user, one
    # count, a few bytes of HTML): what any such page costs before its own work.
    ("Notification bell (smallest logged-in part)", "/notifications/bell/"),
]
PAGE_SECONDS = float(os.environ.get("BENCH_PAGE_SECONDS", "8"))
GUNICORN_WORKERS = 4
WRK_THREADS = 2
WRK_CONNECTIONS = 8

# A hold then its capture against an adjustment: this many of each, taking turns.
HOLD_PAIRS = int(os.environ.get("BENCH_HOLD_PAIRS", "500"))
