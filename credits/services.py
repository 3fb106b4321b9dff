"""Every write to the credit ledger.

Each service is one database transaction that first locks the customer's `CreditAccount`
row, so that changes of one customer's credits run one at a time: two deductions at once
never overdraw and never lose an update. Under the lock it writes the customer's due
expirations, re-checks its rule, and appends to the ledger. Time is read only through
`django.utils.timezone.now()`.

The rules live once, in the ledger's SQL (credits/sql/): an adjustment is one call of the
`credits_post_adjustment` function (post_adjustment.sql), so the lock is held only while
the database works, and due lots are expired by one statement (expire_due_lots.sql).
Python validates the input, builds what the database needs, runs the SQL, and turns its
answers into objects and exceptions. docs/ledger.md, "Writes".
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from functools import partial
from queue import Empty, SimpleQueue

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import get_script_prefix, set_script_prefix
from django.utils import timezone

from customers.models import Company, User
from notifications import services as notifications
from spacecredits.db import server_bound_cursor
from spacecredits.validators import validate_plain_text

from . import ledger_sql, notices
from .exceptions import IdempotencyConflict, InsufficientCredits
from .models import (
    CREDIT_KINDS,
    DEBIT_KINDS,
    CreditAccount,
    CreditLot,
    CreditTransaction,
    TransactionKind,
)

MAX_AMOUNT = Decimal("1000000")
MAX_MEMO_LENGTH = 500
MAX_IDEMPOTENCY_KEY_LENGTH = 100
CENT = Decimal("0.01")
ASCII_DIGITS_ONLY = "Enter the amount with the digits 0 to 9 only."

Customer = User | Company


# --- Validation -------------------------------------------------------------------------


def clean_amount(amount) -> Decimal:
    """An amount is a finite number > 0 and <= 1,000,000 with at most 2 decimal places,
    written (as text) in ASCII: Decimal() also reads "١٠" as 10 and "５" as 5."""
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int, float, str)):
        raise ValidationError({"amount": "Enter the amount as a number."}, code="invalid")
    if isinstance(amount, str) and not amount.isascii():
        raise ValidationError({"amount": ASCII_DIGITS_ONLY}, code="ascii_digits")
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
    try:
        validate_plain_text(memo)  # lines and tabs, but no bidi or other invisible controls
    except ValidationError as error:
        raise ValidationError({"memo": error})
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


# --- Expiry of due lots ----------------------------------------------------------------

EXPIRE_DUE_LOTS_SQL = ledger_sql.read("expire_due_lots.sql")


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
            notices.Expiration(account, *expired) for expired in zip(*written, strict=True)
        ]
    notices.notify_expirations(expirations)
    return sum(row[4] for row in rows)


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


# The whole adjustment in one round trip (post_adjustment.sql says what it answers).
# Outside a transaction the call is a transaction of its own, so the account lock is held
# only while PostgreSQL works. The comment names the file's version: a connection that
# prepared the statement for another version of the function prepares it anew.
POST_ADJUSTMENT_SQL = f"""
/* credits/sql/post_adjustment.sql {ledger_sql.version("post_adjustment.sql")} */
SELECT status, account_pk, transaction_id, seq, balance, created_at, emails
FROM credits_post_adjustment(
    p_account_id => %(account)s, p_kind => %(kind)s, p_amount => %(amount)s,
    p_expires_on => %(expires_on)s, p_memo => %(memo)s, p_actor_id => %(actor_id)s,
    p_key => %(key)s, p_now => %(now)s, p_zone => %(zone)s,
    p_notification_kind => %(notice_kind)s, p_recipients => %(recipients)s,
    p_subjects => %(subjects)s, p_bodies => %(bodies)s, p_link => %(link)s,
    p_reference_prefix => %(reference_prefix)s, p_addresses => %(addresses)s::varchar[])
"""  # noqa: S608 (the only value put in is the digest of our own file)


def _post(
    customer: Customer, *, kind, amount: Decimal, expires_on, memo, actor, idempotency_key
) -> CreditTransaction:
    """Record a validated adjustment of `amount` (signed: > 0 adds a lot, < 0 takes from
    the lots) with its notifications."""
    account = customer.credit_account  # every customer has one (open_accounts.sql)
    content = {
        "kind": kind,
        "amount": amount,
        "expires_on": expires_on,
        "memo": memo,
        "actor_id": actor.pk if actor else None,
    }
    told = notices.adjustment_notices(customer, amount, expires_on, memo)
    params = {
        **content,
        "kind": str(kind),
        "account": account.pk,
        "key": idempotency_key,
        # The clock (docs/ledger.md, "Clock"): read here, before the call; the function
        # moves it on to the account's newest transaction if need be, and judges the
        # expiration date by it.
        "now": timezone.now(),
        "zone": str(timezone.get_default_timezone()),
        "notice_kind": str(told.kind),
        "recipients": told.recipient_ids,
        "subjects": told.subjects,
        "bodies": told.bodies,
        "link": told.link,
        "reference_prefix": notices.TRANSACTION_REFERENCE_PREFIX,
        "addresses": told.addresses,
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
            return _posted(answer, account, content, actor=actor, idempotency_key=idempotency_key)
    with transaction.atomic():
        answer = call()
        if answer[0] == "due":
            account = CreditAccount.objects.select_for_update().get(pk=answer[1])
            _expire_due_lots({account.pk: account}, answer[5])
            params["now"] = answer[5]
            answer = call()
        return _posted(answer, account, content, actor=actor, idempotency_key=idempotency_key)


def _posted(answer, account, content: dict, *, actor, idempotency_key) -> CreditTransaction:
    """The CreditTransaction the database function recorded (`content` is what was asked
    for), or its refusal raised. The caller's `account` instance moves on with it."""
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
        notifications.deliver_after_commit(emails)
        account.balance, account.last_seq, account.last_transaction_at = balance, seq, created_at
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


# Accounts the sweep expires per database transaction.
SWEEP_BATCH = 1000


def expire_due_credits() -> int:
    """Write an `expiration` for every lot whose time is up. Returns the lots expired.

    Customers are handled in batches of SWEEP_BATCH, each one short transaction that
    locks those customers' account rows (in id order) and then writes their expirations
    in one statement: per customer exactly what an adjustment would write under the same
    lock. The sweep never holds many locks for long and runs safely beside adjustments.

    Outside a transaction, settings.CREDITS_SWEEP_CONNECTIONS batches run at once, each on
    its own connection: the batches lock disjoint sets of accounts, so they never wait for
    each other, and one statement of PostgreSQL uses one CPU.
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
    if parallel < 2 or not connection.get_autocommit():
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
        # What the statement and the notices use (a user's other fields cost time).
        locked = locked.only(
            "balance", "last_seq", "last_transaction_at", "user__is_active", "company__name"
        )
        return _expire_due_lots({account.pk: account for account in locked}, now)
