"""Every write to the credit ledger.

Each service is one database transaction that first locks the customer's `CreditAccount`
row, so that changes of one customer's credits run one at a time: two deductions at once
never overdraw and never lose an update. Under the lock it writes the customer's due
expirations, re-checks its rule, and appends to the ledger. Time is read only through
`django.utils.timezone.now()`.

On PostgreSQL an adjustment is one call of the `credits_post_adjustment` function
(migration 0005), so the lock is held only while the database works; elsewhere (SQLite,
`make demo`) `_post_portable` takes the same steps in Python. docs/ledger.md, "Writes".
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from functools import partial
from itertools import groupby
from queue import Empty, SimpleQueue

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.urls import get_script_prefix, set_script_prefix
from django.utils import timezone

from customers.models import Company, User, customer_kind
from notifications import services as notifications
from spacecredits.db import server_bound_cursor

from .exceptions import IdempotencyConflict, InsufficientCredits
from .models import (
    CREDIT_KINDS,
    DEBIT_KINDS,
    CreditAccount,
    CreditLot,
    CreditLotUsage,
    CreditTransaction,
    TransactionKind,
)

MAX_AMOUNT = Decimal("1000000")
MAX_MEMO_LENGTH = 500
MAX_IDEMPOTENCY_KEY_LENGTH = 100
CENT = Decimal("0.01")

Customer = User | Company


# --- Validation -------------------------------------------------------------------------


def clean_amount(amount) -> Decimal:
    """An amount is a finite number > 0 and <= 1,000,000 with at most 2 decimal places."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int, float, str)):
        raise ValidationError({"amount": "Enter the amount as a number."}, code="invalid")
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValidationError({"amount": "Enter the amount as a number."}, code="invalid")
    if not value.is_finite():
        raise ValidationError({"amount": "Enter a finite amount."}, code="invalid")
    if value <= 0:
        raise ValidationError({"amount": "Enter an amount greater than 0."}, code="min_value")
    if value > MAX_AMOUNT:
        raise ValidationError(
            {"amount": "Enter an amount of at most 1,000,000 credits."}, code="max_value"
        )
    if value != value.quantize(CENT):
        raise ValidationError(
            {"amount": "Use at most 2 decimal places."}, code="max_decimal_places"
        )
    return value.quantize(CENT)


def clean_expires_on(expires_on, *, today: dt.date | None = None) -> dt.date | None:
    """An expiration is a date or None (never); given `today` (in the space's time zone),
    also today or later."""
    if expires_on is None:
        return None
    if isinstance(expires_on, dt.datetime) or not isinstance(expires_on, dt.date):
        raise ValidationError({"expires_on": "Enter the expiration as a date."}, code="invalid")
    if today is not None and expires_on < today:
        raise ValidationError(
            {"expires_on": "The expiration date cannot be in the past."}, code="past_date"
        )
    return expires_on


def clean_memo(memo) -> str:
    if memo is None:
        return ""
    if not isinstance(memo, str):
        raise ValidationError({"memo": "Enter the memo as text."}, code="invalid")
    memo = memo.strip()
    if len(memo) > MAX_MEMO_LENGTH:
        raise ValidationError(
            {"memo": f"Keep the memo to {MAX_MEMO_LENGTH} characters or fewer."},
            code="max_length",
        )
    if "\x00" in memo:
        raise ValidationError({"memo": "The memo contains an invalid character."}, code="invalid")
    return memo


def clean_idempotency_key(key) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValidationError(
            {"idempotency_key": "The request key must be 1 to 100 characters of text."},
            code="invalid",
        )
    return key


def _clean_customer(customer) -> Customer:
    if not isinstance(customer, (User, Company)) or customer.pk is None:
        raise ValidationError("The customer must be a saved user or company.", code="invalid")
    return customer


def _clean_actor(actor) -> User | None:
    if actor is not None and (not isinstance(actor, User) or actor.pk is None):
        raise ValidationError("The actor must be a saved user.", code="invalid")
    return actor


# --- Accounts and locking ---------------------------------------------------------------


def owner_filter(customer: Customer) -> dict:
    """The lookup that finds a customer's account: {"user": u} or {"company": c}."""
    return {customer_kind(customer): customer}


def _lock_account(customer: Customer) -> CreditAccount:
    """Lock (creating if need be) the customer's account row until the transaction ends."""
    lookup = owner_filter(customer)
    locked = CreditAccount.objects.select_for_update()
    try:
        return locked.get(**lookup)
    except CreditAccount.DoesNotExist:
        # Two first adjustments at once: one insert wins, the other does nothing and
        # then waits on the winner's lock.
        # By id: an instance built with the customer would be cached as the customer's
        # `credit_account`, a stale copy with balance 0.
        owner_ids = {f"{field}_id": owner.pk for field, owner in lookup.items()}
        CreditAccount.objects.bulk_create(
            [CreditAccount(**owner_ids, created_at=timezone.now())], ignore_conflicts=True
        )
        return locked.get(**lookup)


def _expiry_moment(expires_on: dt.date) -> dt.datetime:
    """Credits are usable through the end of their expiration day in the space's zone."""
    next_day = dt.datetime.combine(expires_on + dt.timedelta(days=1), dt.time.min)
    return timezone.make_aware(next_day, timezone.get_default_timezone())


def _append(account: CreditAccount, *, kind, amount: Decimal, created_at, **fields):
    """Append one ledger row, moving the account's balance and sequence along."""
    account.balance += amount
    account.last_seq += 1
    account.last_transaction_at = max(created_at, account.last_transaction_at or created_at)
    return CreditTransaction.objects.create(
        account=account,
        seq=account.last_seq,
        kind=kind,
        amount=amount,
        balance_after=account.balance,
        created_at=created_at,
        **fields,
    )


def _save_account(account: CreditAccount) -> None:
    account.save(update_fields=["balance", "last_seq", "last_transaction_at"])


# One statement, for any number of locked accounts: per account and expiration date, an
# `expiration` transaction (seq and balance_after continuing the account's chain, dated
# at the end of that day in the space's zone), a usage for each due lot, the lots emptied
# and the accounts moved on. It reads only the open-lot index, so when nothing is due it
# costs what the old SELECT did.
EXPIRE_DUE_LOTS_SQL = """
WITH due AS (
    SELECT id, account_id, expires_on, remaining FROM credits_creditlot
    WHERE account_id = ANY(%(accounts)s::bigint[]) AND remaining > 0 AND expires_on < %(today)s
),
per_day AS (
    SELECT d.account_id, d.expires_on, SUM(d.remaining) AS total, COUNT(*) AS lots,
           a.last_seq + ROW_NUMBER() OVER days AS seq, a.last_transaction_at,
           a.balance - SUM(SUM(d.remaining)) OVER days AS balance_after
    FROM due d JOIN credits_creditaccount a
        ON a.id = d.account_id AND a.id = ANY(%(accounts)s::bigint[])
    GROUP BY d.account_id, d.expires_on, a.last_seq, a.balance, a.last_transaction_at
    WINDOW days AS (PARTITION BY d.account_id ORDER BY d.expires_on ROWS UNBOUNDED PRECEDING)
),
written AS (
    INSERT INTO credits_credittransaction
        (account_id, seq, kind, amount, balance_after, memo, created_at)
    SELECT account_id, seq, %(kind)s, -total, balance_after,
           'Credits that expired on ' || to_char(expires_on, 'FMDD Mon YYYY'),
           GREATEST((expires_on + 1)::timestamp AT TIME ZONE %(zone)s, last_transaction_at)
    FROM per_day
    RETURNING id, account_id, seq, amount, balance_after, created_at
),
used AS (
    INSERT INTO credits_creditlotusage (transaction_id, lot_id, amount)
    SELECT w.id, d.id, d.remaining
    FROM written w
    JOIN per_day p ON p.account_id = w.account_id AND p.seq = w.seq
    JOIN due d ON d.account_id = p.account_id AND d.expires_on = p.expires_on
),
emptied AS (
    UPDATE credits_creditlot SET remaining = 0 WHERE id = ANY(ARRAY(SELECT id FROM due))
)
UPDATE credits_creditaccount a
SET balance = a.balance - t.total, last_seq = a.last_seq + t.days,
    last_transaction_at = w.last_at
FROM (SELECT account_id, SUM(total) AS total, COUNT(*) AS days, SUM(lots) AS lots
      FROM per_day GROUP BY account_id) t,
     (SELECT w.account_id, MAX(w.created_at) AS last_at, array_agg(w.id ORDER BY w.seq) AS ids,
             array_agg(w.amount ORDER BY w.seq) AS amounts,
             array_agg(w.balance_after ORDER BY w.seq) AS balances,
             array_agg(p.expires_on ORDER BY w.seq) AS days
      FROM written w JOIN per_day p ON p.account_id = w.account_id AND p.seq = w.seq
      GROUP BY w.account_id) w
WHERE a.id = t.account_id AND w.account_id = t.account_id AND a.id = ANY(%(accounts)s::bigint[])
RETURNING a.id, a.balance, a.last_seq, a.last_transaction_at, t.lots,
          w.ids, w.amounts, w.balances, w.days
"""


def _expire_due_lots(accounts: dict[int, CreditAccount], now: dt.datetime) -> int:
    """Expire the due lots of accounts the caller has locked ({id: account}), in one
    statement, and tell their customers. Moves each account's balance and last_seq on in
    memory too. Returns the number of lots expired.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            EXPIRE_DUE_LOTS_SQL,
            {
                "accounts": list(accounts),
                "today": timezone.localdate(now),
                "kind": TransactionKind.EXPIRATION.value,
                "zone": str(timezone.get_default_timezone()),
            },
        )
        rows = cursor.fetchall()
    expirations = []
    for account_id, balance, last_seq, last_at, _lots, *written in rows:
        account = accounts[account_id]
        account.balance, account.last_seq, account.last_transaction_at = balance, last_seq, last_at
        expirations += [
            notifications.Expiration(account, *expired) for expired in zip(*written, strict=True)
        ]
    notifications.notify_expirations(expirations)
    return sum(row[4] for row in rows)


def _begin(customer: Customer, idempotency_key, **content):
    """The start of every adjustment, inside its transaction: lock the account, read the
    clock, and find an earlier transaction recorded under the same key.

    Returns (account, now, earlier). The clock is read only once the lock is held, and
    never before the account's newest transaction (clocks of several hosts may differ a
    little), so an account's created_at rises with its seq: date filters rely on it.
    """
    account = _lock_account(customer)
    now = timezone.now()
    if account.last_transaction_at and now < account.last_transaction_at:
        now = account.last_transaction_at
    return account, now, _replay(account, idempotency_key, **content)


def _replay(account, idempotency_key, **content) -> CreditTransaction | None:
    """The transaction already recorded under this key, if its content matches."""
    if idempotency_key is None:
        return None
    earlier = CreditTransaction.objects.filter(
        account=account, idempotency_key=idempotency_key
    ).first()
    return None if earlier is None else _replayed(earlier, idempotency_key, content)


def _replayed(earlier: CreditTransaction, idempotency_key: str, content: dict):
    """`earlier`, recorded under the key, if its content is `content`; else a conflict."""
    recorded = {name: getattr(earlier, name) for name in content}
    if recorded != content:
        raise IdempotencyConflict(idempotency_key)
    return earlier


# --- Services ---------------------------------------------------------------------------


def add_credits(
    customer: Customer,
    amount,
    *,
    expires_on: dt.date | None = None,
    memo: str = "",
    actor: User | None = None,
    idempotency_key: str | None = None,
) -> CreditTransaction:
    """Add `amount` credits to the customer's balance as a new lot.

    `expires_on=None` means the credits never expire. Raises ValidationError for bad
    input and IdempotencyConflict when the key was used for different content; the same
    key with the same content returns the first transaction and records nothing.
    """
    return grant_credits(
        customer,
        amount,
        kind=TransactionKind.ADMIN_ALLOCATION,
        expires_on=expires_on,
        memo=memo,
        actor=actor,
        idempotency_key=idempotency_key,
    )


def deduct_credits(
    customer: Customer,
    amount,
    *,
    memo: str = "",
    actor: User | None = None,
    idempotency_key: str | None = None,
) -> CreditTransaction:
    """Take `amount` credits from the customer, earliest-expiring lots first.

    Lots that never expire come last; among lots with the same expiration, the oldest
    first. Raises InsufficientCredits (with `.available`) when the balance is smaller,
    ValidationError for bad input; in either case nothing is written.
    """
    return charge_credits(
        customer,
        amount,
        kind=TransactionKind.ADMIN_CHARGE,
        memo=memo,
        actor=actor,
        idempotency_key=idempotency_key,
    )


def adjust_balance(
    customer: Customer,
    *,
    kind: str,
    amount,
    expires_on: dt.date | None = None,
    memo: str = "",
    actor: User | None = None,
    idempotency_key: str | None = None,
) -> CreditTransaction:
    """An admin's adjustment: `kind` "add" (add_credits) or "deduct" (deduct_credits)."""
    if kind == "add":
        return add_credits(
            customer,
            amount,
            expires_on=expires_on,
            memo=memo,
            actor=actor,
            idempotency_key=idempotency_key,
        )
    if kind == "deduct":
        if expires_on is not None:
            raise ValidationError({"expires_on": "An expiration applies only to additions."})
        return deduct_credits(
            customer, amount, memo=memo, actor=actor, idempotency_key=idempotency_key
        )
    raise ValidationError({"kind": "Choose Add or Deduct."}, code="invalid")


def grant_credits(
    customer: Customer,
    amount,
    *,
    kind: str,
    expires_on: dt.date | None = None,
    memo: str = "",
    actor: User | None = None,
    idempotency_key: str | None = None,
) -> CreditTransaction:
    """add_credits for any crediting kind (plans, packages and refunds call this)."""
    if kind not in CREDIT_KINDS:
        raise ValidationError(f"{kind!r} is not a kind of transaction that adds credits.")
    customer = _clean_customer(customer)
    amount = clean_amount(amount)
    expires_on = clean_expires_on(expires_on)
    memo = clean_memo(memo)
    actor = _clean_actor(actor)
    idempotency_key = clean_idempotency_key(idempotency_key)

    return _post(
        customer,
        kind=kind,
        amount=amount,
        expires_on=expires_on,
        memo=memo,
        actor=actor,
        idempotency_key=idempotency_key,
    )


def charge_credits(
    customer: Customer,
    amount,
    *,
    kind: str,
    memo: str = "",
    actor: User | None = None,
    idempotency_key: str | None = None,
) -> CreditTransaction:
    """deduct_credits for any debiting kind (bookings call this)."""
    if kind not in DEBIT_KINDS or kind == TransactionKind.EXPIRATION:
        raise ValidationError(f"{kind!r} is not a kind of transaction that spends credits.")
    customer = _clean_customer(customer)
    amount = clean_amount(amount)
    memo = clean_memo(memo)
    actor = _clean_actor(actor)
    idempotency_key = clean_idempotency_key(idempotency_key)

    return _post(
        customer,
        kind=kind,
        amount=-amount,
        expires_on=None,
        memo=memo,
        actor=actor,
        idempotency_key=idempotency_key,
    )


def _post(customer: Customer, *, kind, amount: Decimal, **fields) -> CreditTransaction:
    """Record a validated adjustment of `amount` (signed: > 0 adds a lot, < 0 takes from
    the lots) with its notifications. `fields`: expires_on, memo, actor, idempotency_key."""
    if connection.vendor == "postgresql":
        return _post_on_postgresql(customer, kind=kind, amount=amount, **fields)
    return _post_portable(customer, kind=kind, amount=amount, **fields)


# The whole adjustment in one round trip: migration 0005 defines the function and what
# it answers. Outside a transaction the call is a transaction of its own, so the account
# lock is held only while PostgreSQL works.
POST_ADJUSTMENT_SQL = """
SELECT status, account_pk, transaction_id, seq, balance, created_at, emails
FROM credits_post_adjustment(
    %(user)s, %(company)s, %(kind)s, %(amount)s, %(expires_on)s, %(memo)s, %(actor_id)s,
    %(key)s, %(now)s, %(zone)s, %(notice_kind)s, %(recipients)s, %(subjects)s, %(bodies)s,
    %(link)s)
"""


def _post_on_postgresql(
    customer: Customer, *, kind, amount, expires_on, memo, actor, idempotency_key
) -> CreditTransaction:
    content = {
        "kind": kind,
        "amount": amount,
        "expires_on": expires_on,
        "memo": memo,
        "actor_id": actor.pk if actor else None,
    }
    notices = notifications.adjustment_notices(customer, amount, expires_on, memo)
    params = {
        **content,
        "kind": str(kind),
        "user": customer.pk if isinstance(customer, User) else None,
        "company": customer.pk if isinstance(customer, Company) else None,
        "key": idempotency_key,
        # The clock is read before the call: the function moves it on to the account's
        # newest transaction if need be, and judges the expiration date by it.
        "now": timezone.now(),
        "zone": str(timezone.get_default_timezone()),
        "notice_kind": str(notices.kind),
        "recipients": notices.recipient_ids,
        "subjects": notices.subjects,
        "bodies": notices.bodies,
        "link": notices.link,
    }

    def call():
        with server_bound_cursor() as cursor:  # prepared once per connection
            cursor.execute(POST_ADJUSTMENT_SQL, params)
            return cursor.fetchone()

    if connection.get_autocommit():
        # The usual case, one round trip. When expirations are due the function changes
        # nothing, and the adjustment is made again below, in one transaction with them.
        answer = call()
        if answer[0] != "due":
            return _posted(answer, content, actor=actor, idempotency_key=idempotency_key)
    with transaction.atomic():
        answer = call()
        if answer[0] == "due":
            account = _lock_account(customer)  # held already: this fetches its row
            _expire_due_lots({account.pk: account}, answer[5])
            params["now"] = answer[5]
            answer = call()
        return _posted(answer, content, actor=actor, idempotency_key=idempotency_key)


def _posted(answer, content: dict, *, actor, idempotency_key) -> CreditTransaction:
    """The CreditTransaction the database function recorded (`content` is what was asked
    for), or its refusal raised."""
    status, account_id, transaction_id, seq, balance, created_at, emails = answer
    if status == "replay":
        earlier = CreditTransaction.objects.get(pk=transaction_id)
        return _replayed(earlier, idempotency_key, content)
    if status == "past_date":
        today = timezone.localdate(created_at, timezone.get_default_timezone())
        clean_expires_on(content["expires_on"], today=today)
    elif status == "insufficient":
        raise InsufficientCredits(available=balance, requested=-content["amount"])
    elif status == "ok":
        notifications.queue_emails_after_commit(emails)
        recorded = CreditTransaction(
            pk=transaction_id,
            account_id=account_id,
            seq=seq,
            balance_after=balance,
            created_at=created_at,
            kind=content["kind"],
            amount=content["amount"],
            expires_on=content["expires_on"],
            memo=content["memo"],
            actor=actor,
            idempotency_key=idempotency_key,
        )
        recorded._state.adding, recorded._state.db = False, connection.alias
        return recorded
    raise RuntimeError(f"credits_post_adjustment answered {status!r}.")


def _post_portable(
    customer: Customer, *, kind, amount, expires_on, memo, actor, idempotency_key
) -> CreditTransaction:
    """_post step by step in Python, for databases other than PostgreSQL (SQLite)."""
    with transaction.atomic():
        account, now, earlier = _begin(
            customer,
            idempotency_key,
            kind=kind,
            amount=amount,
            expires_on=expires_on,
            memo=memo,
            actor_id=actor.pk if actor else None,
        )
        if earlier is not None:
            return earlier
        # "Not in the past" is checked here, under the lock and after the replay: waiting
        # for the lock may cross midnight, and a form resubmitted tomorrow is a replay.
        clean_expires_on(expires_on, today=timezone.localdate(now))
        _write_due_expirations_portable(account, now)
        if -amount > account.balance:
            # Raising rolls back the expirations written above too: nothing changes.
            raise InsufficientCredits(available=account.balance, requested=-amount)
        posted = _append(
            account,
            kind=kind,
            amount=amount,
            created_at=now,
            expires_on=expires_on,
            memo=memo,
            actor=actor,
            idempotency_key=idempotency_key,
        )
        if amount > 0:
            CreditLot.objects.create(
                account=account,
                allocation=posted,
                amount=amount,
                remaining=amount,
                expires_on=expires_on,
                created_at=now,
            )
        else:
            _take_from_lots_portable(account, posted, -amount)
        _save_account(account)
        notifications.notify_adjustment(customer, posted)
        return posted


# --- Without PostgreSQL (SQLite: the demo, tests without a server): the same rules, row by row.


def _write_due_expirations_portable(account: CreditAccount, now: dt.datetime) -> int:
    """Write off what remains of the locked account's lots whose time is up, row by row
    (_expire_due_lots does it in one statement on PostgreSQL).

    One `expiration` transaction per expiration date, dated at the moment of expiry, so
    the account's history stays in time order. Returns the number of lots expired.
    """
    today = timezone.localdate(now)
    due = list(
        CreditLot.objects.filter(account=account, remaining__gt=0, expires_on__lt=today).order_by(
            "expires_on", "created_at", "id"
        )
    )
    if not due:
        return 0
    usages = []
    for expires_on, lots in groupby(due, key=lambda lot: lot.expires_on):
        lots = list(lots)
        moment = _expiry_moment(expires_on)
        expired = _append(
            account,
            kind=TransactionKind.EXPIRATION,
            amount=-sum(lot.remaining for lot in lots),
            # Never before the newest transaction (see _begin).
            created_at=max(moment, account.last_transaction_at or moment),
            memo=f"Credits that expired on {expires_on.day} {expires_on:%b %Y}",
        )
        notifications.notify_expiration(account, expired, expires_on)
        for lot in lots:
            usages.append(CreditLotUsage(transaction=expired, lot=lot, amount=lot.remaining))
            lot.remaining = Decimal("0")
    CreditLotUsage.objects.bulk_create(usages)
    CreditLot.objects.bulk_update(due, ["remaining"])
    return len(due)


def _take_from_lots_portable(account, charged: CreditTransaction, amount: Decimal):
    """_take_from_lots row by row, for databases other than PostgreSQL (SQLite)."""
    open_lots = CreditLot.objects.filter(account=account, remaining__gt=0).order_by(
        F("expires_on").asc(nulls_last=True), "created_at", "id"
    )
    needed = amount
    touched, usages = [], []
    for lot in open_lots.iterator(chunk_size=50):
        take = min(lot.remaining, needed)
        lot.remaining -= take
        needed -= take
        touched.append(lot)
        usages.append(CreditLotUsage(transaction=charged, lot=lot, amount=take))
        if needed == 0:
            break
    if needed:  # The balance said there was enough: the ledger disagrees with its lots.
        raise RuntimeError(f"Account {account.pk}: lots hold {needed} less than its balance.")
    CreditLot.objects.bulk_update(touched, ["remaining"])
    CreditLotUsage.objects.bulk_create(usages)


# Accounts the sweep expires per database transaction.
SWEEP_BATCH = 1000


def expire_due_credits() -> int:
    """Write an `expiration` for every lot whose time is up. Returns the lots expired.

    Customers are handled in batches of SWEEP_BATCH, each one short transaction that
    locks those customers' account rows (in id order) and then writes their expirations
    in one statement: per customer exactly what an adjustment would write under the same
    lock. The sweep never holds many locks for long and runs safely beside adjustments.

    On PostgreSQL, outside a transaction, settings.CREDITS_SWEEP_CONNECTIONS batches run at
    once, each on its own connection: the batches lock disjoint sets of accounts, so they
    never wait for each other, and one statement of PostgreSQL uses one CPU.
    """
    now = timezone.now()
    today = timezone.localdate(now)
    account_ids = sorted(
        CreditLot.objects.filter(remaining__gt=0, expires_on__lt=today)
        .values_list("account_id", flat=True)
        .distinct()
        .order_by()
    )
    batches = [
        account_ids[start : start + SWEEP_BATCH]
        for start in range(0, len(account_ids), SWEEP_BATCH)
    ]
    parallel = min(settings.CREDITS_SWEEP_CONNECTIONS, len(batches))
    # Inside the caller's transaction the batches must see what it wrote: one by one on it.
    if parallel < 2 or connection.vendor != "postgresql" or not connection.get_autocommit():
        return sum(_expire_batch(batch, now) for batch in batches)
    waiting = SimpleQueue()
    for batch in batches:
        waiting.put(batch)
    work = partial(_expire_batches_on_own_connection, waiting, now, get_script_prefix())
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="expiry-sweep") as pool:
        return sum(done.result() for done in [pool.submit(work) for _ in range(parallel)])


def _expire_batches_on_own_connection(
    waiting: SimpleQueue, now: dt.datetime, script_prefix: str
) -> int:
    """Take batches until none is left, on this thread's own connection."""
    set_script_prefix(script_prefix)  # thread-local: the notices' links use it
    expired = 0
    try:
        while True:
            try:
                batch = waiting.get_nowait()
            except Empty:
                return expired
            expired += _expire_batch(batch, now)
    finally:
        connection.close()


def _expire_batch(account_ids: list[int], now: dt.datetime) -> int:
    """Expire the due lots of these accounts in one transaction; returns the lots expired."""
    with transaction.atomic():
        locked = (
            CreditAccount.objects.select_for_update(of=("self",))
            .select_related("user", "company")
            .filter(pk__in=account_ids)
            .order_by("pk")
        )
        if connection.vendor == "postgresql":
            # What the statement and the notices use (a user's other fields cost time).
            locked = locked.only(
                "balance", "last_seq", "last_transaction_at", "user__is_active", "company__name"
            )
            return _expire_due_lots({account.pk: account for account in locked}, now)
        expired = 0
        for account in locked:
            count = _write_due_expirations_portable(account, now)
            if count:
                _save_account(account)
            expired += count
        return expired
