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
from django.db import connection, models, transaction
from django.db.models import Subquery, Sum
from django.urls import get_script_prefix, set_script_prefix
from django.utils import timezone

from customers.models import Company, User
from notifications import delivery
from notifications import services as notifications
from notifications.models import NotificationKind
from spacecredits.db import server_bound_cursor
from spacecredits.formats import format_credits
from spacecredits.validators import validate_plain_text

from . import ledger_sql, notices
from .exceptions import CreditLimitExceeded, IdempotencyConflict, InsufficientCredits
from .models import (
    CREDIT_KINDS,
    DEBIT_KINDS,
    REFUNDABLE_KINDS,
    REVERSIBLE_KINDS,
    BatchStatus,
    CreditAccount,
    CreditBatch,
    CreditHold,
    CreditHoldLot,
    CreditLot,
    CreditTransaction,
    HoldStatus,
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
EXPIRE_DUE_HOLDS_SQL = ledger_sql.read("expire_due_holds.sql")


def _expire_account(account_id: int, now: dt.datetime) -> int:
    """Lock one account and expire what is due of it at `now` (the caller's transaction)."""
    account = CreditAccount.objects.select_for_update().get(pk=account_id)
    return _expire_due_lots({account.pk: account}, now)


def _expire_due_lots(accounts: dict[int, CreditAccount], now: dt.datetime) -> int:
    """Expire the due holds and then the due lots of accounts the caller has locked
    ({id: account}), one statement each, and tell their customers of both. A hold's
    end gives its shares back to their lots first, so a share whose lot's date passed
    while held expires with it. Moves each account's balance and last_seq on in memory
    too. Returns the number of lots expired.
    """
    with connection.cursor() as cursor:
        cursor.execute(EXPIRE_DUE_HOLDS_SQL, {"accounts": list(accounts), "now": now})
        ended_holds = [hold_id for (hold_id,) in cursor.fetchall()]
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
    notices.notify_hold_expiries(accounts, ended_holds)
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
    on_behalf_of: User | None = None,
    idempotency_key: str | None = None,
) -> CreditTransaction:
    """deduct_credits for any debiting kind (bookings call this).

    `on_behalf_of` (a member of the company `customer`) charges the company for that
    member: their charges in a calendar month (the space's zone), net of refunds, never
    exceed their `CompanyMembership.monthly_credit_limit` (CreditLimitExceeded, with
    `.remaining`). Raises InsufficientCredits beyond what is available.
    """
    if kind not in DEBIT_KINDS or kind == TransactionKind.EXPIRATION:
        raise ValidationError(f"{kind!r} is not a kind of transaction that spends credits.")
    customer = _clean_customer(customer)
    amount = clean_amount(amount)
    memo = clean_memo(memo)
    actor = _clean_actor(actor)
    idempotency_key = clean_idempotency_key(idempotency_key)
    if on_behalf_of is not None:
        if not isinstance(customer, Company):
            raise ValidationError(
                {"on_behalf_of": "Only a company is charged on behalf of a member."}
            )
        if not isinstance(on_behalf_of, User) or on_behalf_of.pk is None:
            raise ValidationError({"on_behalf_of": "Choose a saved member."}, code="invalid")

    return _post(
        customer,
        kind=kind,
        amount=-amount,
        expires_on=None,
        memo=memo,
        actor=actor,
        idempotency_key=idempotency_key,
        on_behalf_of=on_behalf_of,
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
    p_reference_prefix => %(reference_prefix)s, p_addresses => %(addresses)s::varchar[],
    p_on_behalf_of => %(on_behalf_of_id)s, p_batch_id => %(batch_id)s)
"""  # noqa: S608 (the only value put in is the digest of our own file)


def _post(
    customer: Customer,
    *,
    kind,
    amount: Decimal,
    expires_on,
    memo,
    actor,
    idempotency_key,
    on_behalf_of: User | None = None,
    batch_id: int | None = None,
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
        "on_behalf_of_id": on_behalf_of.pk if on_behalf_of else None,
        "batch_id": batch_id,
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
            _expire_account(answer[1], answer[5])
            params["now"] = answer[5]
            answer = call()
        return _posted(answer, account, content, actor=actor, idempotency_key=idempotency_key)


def _as_stored(row: models.Model) -> models.Model:
    """A model instance built from what a ledger function answered, as if read back: the
    row is in the database, so saving it would update (never insert) it."""
    row._state.adding, row._state.db = False, connection.alias
    return row


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
    elif status == "limit":
        raise CreditLimitExceeded(remaining=balance, requested=-content["amount"])
    elif status == "not_member":
        raise _field_error(
            "on_behalf_of", "This person is not a member of the company.", "not_member"
        )
    elif status == "ok":
        notifications.deliver_after_commit(emails)
        account.balance, account.last_seq, account.last_transaction_at = balance, seq, created_at
        recorded = _as_stored(
            CreditTransaction(
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
                on_behalf_of_id=content["on_behalf_of_id"],
                batch_id=content["batch_id"],
            )
        )
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
        set(
            CreditLot.objects.filter(remaining__gt=0, expires_on__lt=today)
            .values_list("account_id", flat=True)
            .distinct()
            .order_by()
        )
        | set(
            CreditAccount.objects.filter(next_hold_expires_at__lte=now).values_list("pk", flat=True)
        )
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
            "balance",
            "last_seq",
            "last_transaction_at",
            "user__is_active",
            "company__name",
            "company__email",
        )
        return _expire_due_lots({account.pk: account for account in locked}, now)


# --- The ledger's other verbs (credits/sql/verbs.sql; docs/ledger.md, "The other verbs") --


def _call(sql: str, params: dict, settle):
    """Run one of the verbs' functions, as an adjustment runs its function: one round
    trip outside a transaction; when it answers 'due', in one transaction with the due
    expirations of the account it names, called again at the same moment. `settle(answer)`
    turns the answer into the result or raises, inside that transaction, so a refusal
    keeps none of the expirations either."""

    def call():
        with server_bound_cursor() as cursor:  # prepared once per connection
            cursor.execute(sql, params)
            names = [column.name for column in cursor.description]
            return dict(zip(names, cursor.fetchone(), strict=True))

    if connection.get_autocommit():
        answer = call()
        if answer["status"] != "due":
            return settle(answer)
    with transaction.atomic():
        answer = call()
        # A transfer may find both of its accounts due, one after the other.
        for _ in range(2):
            if answer["status"] != "due":
                break
            _expire_account(answer["account_pk"], answer["created_at"])
            params["now"] = answer["created_at"]
            answer = call()
        return settle(answer)


def _verb_sql(function: str, parameters: list[str], columns: list[str], file: str = "verbs.sql"):
    """The statement that calls `function` with named parameters (named like its own
    without the p_), carrying the file's digest (see POST_ADJUSTMENT_SQL)."""
    named = ", ".join(f"p_{name} => %({name})s" for name in parameters)
    return (
        f"/* credits/sql/{file} {ledger_sql.version(file)} */\n"
        f"SELECT {', '.join(columns)} FROM {function}({named})"
    )


NOTICE_PARAMETERS = ["notification_kind", "recipients", "subjects", "bodies", "link"]


def _notice_params(told: notices.AdjustmentNotices) -> dict:
    return {
        "notification_kind": str(told.kind),
        "recipients": told.recipient_ids,
        "subjects": told.subjects,
        "bodies": told.bodies,
        "link": told.link,
    }


def _clock() -> dict:
    return {"now": timezone.now(), "zone": str(timezone.get_default_timezone())}


def _grace_days() -> int:
    return int(getattr(settings, "CREDITS_REFUND_GRACE_DAYS", 7))


def _field_error(field: str, message: str, code: str) -> ValidationError:
    """A refusal about one field, with its code (a dict's own code is dropped)."""
    return ValidationError({field: ValidationError(message, code=code)})


def _clean_row(row, what: str) -> CreditTransaction:
    if not isinstance(row, CreditTransaction) or row.pk is None:
        raise ValidationError(f"Choose a recorded transaction to {what}.", code="invalid")
    return row


def _recorded(transaction_id: int, after_commit_emails) -> CreditTransaction:
    notifications.deliver_after_commit(after_commit_emails or [])
    return CreditTransaction.objects.select_related("account").get(pk=transaction_id)


def _replay_of(transaction_id: int, idempotency_key: str, content: dict) -> CreditTransaction:
    return _replayed(CreditTransaction.objects.get(pk=transaction_id), idempotency_key, content)


def _after_freeing(answer: dict) -> None:
    """A hold's end gave a share back to a lot whose date has passed: it expires now."""
    if answer.get("freed_past"):
        with transaction.atomic():
            _expire_account(answer["account_pk"], answer["created_at"])


# What credits_reverse and credits_refund answer: the row they posted, and its amount.
POSTED_ANSWER = [
    "status",
    "account_pk",
    "transaction_id",
    "seq",
    "balance",
    "created_at",
    "signed_amount",
    "emails",
]

REVERSE_SQL = _verb_sql(
    "credits_reverse",
    [
        "transaction_id",
        "expected",
        "memo",
        "actor_id",
        "key",
        "now",
        "zone",
        "grace_days",
        *NOTICE_PARAMETERS,
        "reference_prefix",
    ],
    POSTED_ANSWER,
)


def reversal_amount(row: CreditTransaction) -> Decimal | None:
    """What reversing `row` would record now (signed), or None when it cannot be reversed:
    what remains of an addition's lot, taken back; a deduction's amount, given back."""
    if row.kind not in REVERSIBLE_KINDS or hasattr(row, "reversed_by"):
        return None
    if row.amount > 0:
        remaining = row.lots.values_list("remaining", flat=True).first() or Decimal("0")
        return -remaining if remaining > 0 else None
    return -row.amount


def reverse_transaction(
    transaction: CreditTransaction,
    *,
    memo: str = "",
    actor: User | None = None,
    idempotency_key: str | None = None,
) -> CreditTransaction:
    """Undo an admin's addition or deduction (a mistake) with a `reversal` row.

    Reversing an addition takes back what remains of its lot (all of it when unused;
    credits that holds earmark are not taken). Reversing a deduction gives back exactly
    what it took to the lots it took it from, each keeping its date; a share whose lot
    has expired meanwhile comes back as a new lot that expires CREDITS_REFUND_GRACE_DAYS
    days after today. A row is reversed at most once; a reversal is not reversed. Raises
    ValidationError (nothing written) when the row cannot be reversed.
    """
    row = _clean_row(transaction, "reverse")
    memo = clean_memo(memo)
    actor = _clean_actor(actor)
    idempotency_key = clean_idempotency_key(idempotency_key)
    customer = (
        CreditAccount.objects.select_related("user", "company").get(pk=row.account_id).customer
    )
    content = {
        "kind": TransactionKind.REVERSAL,
        "reverses_id": row.pk,
        "memo": memo,
        "actor_id": actor.pk if actor else None,
    }

    messages = {
        "is_reversal": ("A reversal cannot be reversed.", "reversal_reversed"),
        "not_reversible": (
            "Only an admin's addition or deduction can be reversed.",
            "not_reversible",
        ),
        "reversed": ("This transaction was reversed already.", "reversed_already"),
        "nothing_left": (
            "Nothing is left of this addition to take back: its credits were used,"
            " held or expired.",
            "nothing_left",
        ),
    }

    def settle(answer):
        status = answer["status"]
        if status == "ok":
            return _recorded(answer["transaction_id"], answer["emails"])
        if status == "replay":
            return _replay_of(answer["transaction_id"], idempotency_key, content)
        if status == "changed":
            return answer
        if status in messages:
            message, code = messages[status]
            raise ValidationError(message, code=code)
        raise RuntimeError(f"credits_reverse answered {status!r}.")

    expected = reversal_amount(row) or Decimal("0")
    for _ in range(3):
        told = notices.verb_notices(
            customer,
            NotificationKind.CREDITS_ADDED if expected > 0 else NotificationKind.CREDITS_DEDUCTED,
            lambda recipient, amount=expected: notices.reversal_words(
                customer, recipient, amount, row, memo
            ),
        )
        result = _call(
            REVERSE_SQL,
            {
                "transaction_id": row.pk,
                "expected": expected,
                "memo": memo,
                "actor_id": actor.pk if actor else None,
                "key": idempotency_key,
                **_clock(),
                "grace_days": _grace_days(),
                **_notice_params(told),
                "reference_prefix": notices.TRANSACTION_REFERENCE_PREFIX,
            },
            settle,
        )
        if isinstance(result, CreditTransaction):
            return result
        expected = result["signed_amount"]  # changed meanwhile: tell the new amount
    raise RuntimeError("The reversal's amount kept changing.")


REFUND_SQL = _verb_sql(
    "credits_refund",
    [
        "charge_id",
        "amount",
        "expected",
        "memo",
        "actor_id",
        "key",
        "now",
        "zone",
        "grace_days",
        *NOTICE_PARAMETERS,
        "reference_prefix",
    ],
    POSTED_ANSWER,
)


def refundable_amount(charge: CreditTransaction) -> Decimal:
    """What is left to refund of a booking (0 for anything else)."""
    if charge.kind not in REFUNDABLE_KINDS:
        return Decimal("0.00")
    refunded = sum((r.amount for r in charge.refunds.all()), Decimal("0"))
    return (-charge.amount - refunded).quantize(CENT)


def refund_charge(
    charge: CreditTransaction,
    amount=None,
    *,
    memo: str = "",
    actor: User | None = None,
    idempotency_key: str | None = None,
) -> CreditTransaction:
    """Refund a booking, wholly (`amount=None`: what is not refunded yet) or in part.

    The credits go back to the lots the charge took them from, latest-expiring first; a
    share whose lot has expired meanwhile comes back as a new lot that expires
    CREDITS_REFUND_GRACE_DAYS days after today (the space's zone). The refunds of one
    charge never add up to more than it: ValidationError (nothing written) beyond that.
    """
    charge = _clean_row(charge, "refund")
    if charge.kind not in REFUNDABLE_KINDS:
        raise ValidationError("Only a booking can be refunded.", code="not_refundable")
    amount = None if amount is None else clean_amount(amount)
    memo = clean_memo(memo)
    actor = _clean_actor(actor)
    idempotency_key = clean_idempotency_key(idempotency_key)
    customer = (
        CreditAccount.objects.select_related("user", "company").get(pk=charge.account_id).customer
    )
    expected = amount if amount is not None else refundable_amount(charge)
    content = {
        "kind": TransactionKind.REFUND,
        "refunded_charge_id": charge.pk,
        "memo": memo,
        "actor_id": actor.pk if actor else None,
    }
    if amount is not None:
        content["amount"] = amount

    def settle(answer):
        status = answer["status"]
        if status == "ok":
            return _recorded(answer["transaction_id"], answer["emails"])
        if status == "replay":
            return _replay_of(answer["transaction_id"], idempotency_key, content)
        if status == "changed":
            return answer
        if status == "above":
            left = answer["signed_amount"]
            if left == 0:
                raise ValidationError("This booking was refunded in full already.", code="refunded")
            raise _field_error(
                "amount",
                f"Only {format_credits(left)} of this booking can still be refunded.",
                "above_charge",
            )
        raise RuntimeError(f"credits_refund answered {status!r}.")

    for _ in range(3):
        told = notices.verb_notices(
            customer,
            NotificationKind.CREDITS_ADDED,
            lambda recipient, credits=expected: notices.refund_words(
                customer, recipient, credits, memo
            ),
        )
        result = _call(
            REFUND_SQL,
            {
                "charge_id": charge.pk,
                "amount": amount,
                "expected": expected,
                "memo": memo,
                "actor_id": actor.pk if actor else None,
                "key": idempotency_key,
                **_clock(),
                "grace_days": _grace_days(),
                **_notice_params(told),
                "reference_prefix": notices.TRANSACTION_REFERENCE_PREFIX,
            },
            settle,
        )
        if isinstance(result, CreditTransaction):
            return result
        expected = result["signed_amount"]
    raise RuntimeError("The refund's amount kept changing.")


def clean_expires_at(expires_at) -> dt.datetime:
    if not isinstance(expires_at, dt.datetime) or timezone.is_naive(expires_at):
        raise ValidationError(
            {"expires_at": "Enter when the hold ends as a moment with its time zone."},
            code="invalid",
        )
    return expires_at


HOLD_SQL = _verb_sql(
    "credits_hold",
    [
        "account_id",
        "amount",
        "expires_at",
        "memo",
        "actor_id",
        "key",
        "now",
        "zone",
        *NOTICE_PARAMETERS,
        "reference_prefix",
    ],
    ["status", "account_pk", "hold_id", "available", "created_at", "emails"],
)


def hold_credits(
    customer: Customer,
    amount,
    *,
    expires_at: dt.datetime,
    memo: str = "",
    actor: User | None = None,
    idempotency_key: str | None = None,
) -> CreditHold:
    """Earmark `amount` credits for a future booking until `expires_at`.

    The credits are taken from the lots earliest-expiring first and stay in the balance
    (and its breakdown), but not in what is available; they do not expire while held.
    Raises InsufficientCredits (`.available`) beyond what is available, ValidationError
    when `expires_at` is not in the future; nothing is written then.
    """
    customer = _clean_customer(customer)
    amount = clean_amount(amount)
    expires_at = clean_expires_at(expires_at)
    memo = clean_memo(memo)
    actor = _clean_actor(actor)
    idempotency_key = clean_idempotency_key(idempotency_key)
    told = notices.verb_notices(
        customer,
        NotificationKind.CREDITS_HELD,
        lambda recipient: notices.hold_words(customer, recipient, amount, expires_at, memo),
    )

    def settle(answer):
        status = answer["status"]
        if status == "ok":
            notifications.deliver_after_commit(answer["emails"] or [])
            # The hold as written (as _posted builds an adjustment's row): no read back.
            hold = _as_stored(
                CreditHold(
                    pk=answer["hold_id"],
                    account=customer.credit_account,
                    amount=amount,
                    expires_at=expires_at,
                    memo=memo,
                    actor=actor,
                    created_at=answer["created_at"],
                    idempotency_key=idempotency_key,
                )
            )
            return hold
        if status == "replay":
            notifications.deliver_after_commit(answer["emails"] or [])
            hold = CreditHold.objects.get(pk=answer["hold_id"])
            content = {
                "amount": amount,
                "expires_at": expires_at,
                "memo": memo,
                "actor_id": actor.pk if actor else None,
            }
            if {name: getattr(hold, name) for name in content} != content:
                raise IdempotencyConflict(idempotency_key)
            return hold
        if status == "past":
            raise _field_error("expires_at", "A hold must end in the future.", "past_date")
        if status == "insufficient":
            raise InsufficientCredits(available=answer["available"], requested=amount)
        raise RuntimeError(f"credits_hold answered {status!r}.")

    return _call(
        HOLD_SQL,
        {
            "account_id": customer.credit_account.pk,
            "amount": amount,
            "expires_at": expires_at,
            "memo": memo,
            "actor_id": actor.pk if actor else None,
            "key": idempotency_key,
            **_clock(),
            **_notice_params(told),
            "reference_prefix": notices.HOLD_REFERENCE_PREFIX,
        },
        settle,
    )


def _clean_hold(hold) -> CreditHold:
    if not isinstance(hold, CreditHold) or hold.pk is None:
        raise ValidationError("Choose a recorded hold.", code="invalid")
    return hold


def _hold_not_held(hold: CreditHold, status: str, verb: str) -> ValidationError:
    words = {
        HoldStatus.CAPTURED: "was captured already",
        HoldStatus.RELEASED: "was released",
        HoldStatus.EXPIRED: f"expired at {notices.format_moment(hold.expires_at)}",
    }
    return ValidationError(
        f"This hold cannot be {verb}: it {words.get(status, status)}.", code=f"hold_{status}"
    )


def _customer_of_hold(hold: CreditHold) -> tuple[Customer, Decimal]:
    """The hold's customer, and how much of it is in lots whose last day has passed (what
    of that its end frees expires then; its notice says so), in one query; in none for a
    hold made today whose customer is known (hold_credits' hold): a lot past its day is
    never held, so none of a hold's lots can have passed its day before tomorrow."""
    today = timezone.localdate(timezone.now())
    if timezone.localdate(hold.created_at) == today and CreditHold.account.is_cached(hold):
        account = hold.account
        owner = CreditAccount.user if account.user_id else CreditAccount.company
        if owner.is_cached(account):
            return account.customer, Decimal(0)
    held_past = (
        CreditHoldLot.objects.filter(hold_id=hold.pk, lot__expires_on__lt=today)
        .values("hold_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    account = (
        CreditAccount.objects.select_related("user", "company")
        .annotate(held_past=Subquery(held_past))
        .get(pk=hold.account_id)
    )
    return account.customer, account.held_past or Decimal(0)


CAPTURE_SQL = _verb_sql(
    "credits_capture",
    [
        "hold_id",
        "amount",
        "memo",
        "actor_id",
        "key",
        "now",
        "zone",
        *NOTICE_PARAMETERS,
        "reference_prefix",
    ],
    [
        "status",
        "account_pk",
        "transaction_id",
        "seq",
        "balance",
        "created_at",
        "hold_status",
        "freed_past",
        "emails",
    ],
)


def capture_hold(
    hold: CreditHold,
    amount=None,
    *,
    memo: str = "",
    actor: User | None = None,
    idempotency_key: str | None = None,
) -> CreditTransaction:
    """Charge a hold's credits as a `booking`: all of it (`amount=None`) or at most its
    amount, the rest freed. Raises ValidationError (nothing written) above the hold's
    amount, or when the hold is no longer held (captured, released, or expired)."""
    hold = _clean_hold(hold)
    amount = None if amount is None else clean_amount(amount)
    memo = clean_memo(memo)
    actor = _clean_actor(actor)
    idempotency_key = clean_idempotency_key(idempotency_key)
    if amount is not None and amount > hold.amount:
        raise _field_error(
            "amount", f"Capture at most the {format_credits(hold.amount)} held.", "above_hold"
        )
    charged = hold.amount if amount is None else amount
    customer, held_past = _customer_of_hold(hold)
    # The booking takes the earliest-expiring held credits first: those whose day has
    # passed go first, and what is freed of them expires now.
    told = notices.verb_notices(
        customer,
        NotificationKind.CREDITS_DEDUCTED,
        lambda recipient: notices.capture_words(
            customer, recipient, hold, charged, max(held_past - charged, Decimal(0)), memo
        ),
    )

    def settle(answer):
        status = answer["status"]
        if status == "ok":
            _after_freeing(answer)
            notifications.deliver_after_commit(answer["emails"] or [])
            hold.status, hold.captured = answer["hold_status"], charged
            hold.closed_at = answer["created_at"]
            # The booking as written (as _posted builds an adjustment's row): no read back.
            booking = _as_stored(
                CreditTransaction(
                    pk=answer["transaction_id"],
                    account_id=answer["account_pk"],
                    seq=answer["seq"],
                    kind=TransactionKind.BOOKING,
                    amount=-charged,
                    balance_after=answer["balance"],
                    memo=memo,
                    actor=actor,
                    created_at=answer["created_at"],
                    idempotency_key=idempotency_key,
                    hold_id=hold.pk,
                )
            )
            return booking
        if status == "replay":
            content = {
                "kind": TransactionKind.BOOKING,
                "hold_id": hold.pk,
                "amount": -charged,
                "memo": memo,
                "actor_id": actor.pk if actor else None,
            }
            return _replay_of(answer["transaction_id"], idempotency_key, content)
        if status == "not_held":
            raise _hold_not_held(hold, answer["hold_status"], "captured")
        if status == "above":
            raise _field_error(
                "amount", f"Capture at most the {format_credits(hold.amount)} held.", "above_hold"
            )
        raise RuntimeError(f"credits_capture answered {status!r}.")

    return _call(
        CAPTURE_SQL,
        {
            "hold_id": hold.pk,
            "amount": amount,
            "memo": memo,
            "actor_id": actor.pk if actor else None,
            "key": idempotency_key,
            **_clock(),
            **_notice_params(told),
            "reference_prefix": notices.TRANSACTION_REFERENCE_PREFIX,
        },
        settle,
    )


RELEASE_SQL = _verb_sql(
    "credits_release",
    ["hold_id", "now", "zone", *NOTICE_PARAMETERS, "reference_prefix"],
    ["status", "account_pk", "hold_status", "created_at", "freed_past", "emails"],
)


def release_hold(hold: CreditHold, *, actor: User | None = None) -> CreditHold:
    """Free a hold's credits (they are available again; a share whose lot's date passed
    while held expires now). Releasing a hold that was released or expired already
    changes nothing and returns it; a captured hold raises ValidationError."""
    hold = _clean_hold(hold)
    _clean_actor(actor)
    customer, held_past = _customer_of_hold(hold)
    told = notices.verb_notices(
        customer,
        NotificationKind.CREDITS_HELD,
        lambda recipient: notices.release_words(customer, recipient, hold, held_past),
    )

    def settle(answer):
        status = answer["status"]
        if status == "ok":
            notifications.deliver_after_commit(answer["emails"] or [])
            _after_freeing(answer)
        elif status == "not_held" and answer["hold_status"] == HoldStatus.CAPTURED:
            raise _hold_not_held(hold, answer["hold_status"], "released")
        elif status != "not_held":
            raise RuntimeError(f"credits_release answered {status!r}.")
        hold.refresh_from_db()
        return hold

    return _call(
        RELEASE_SQL,
        {
            "hold_id": hold.pk,
            **_clock(),
            **_notice_params(told),
            "reference_prefix": notices.RELEASE_REFERENCE_PREFIX,
        },
        settle,
    )


TRANSFER_SQL = _verb_sql(
    "credits_transfer",
    [
        "source_id",
        "target_id",
        "amount",
        "memo",
        "actor_id",
        "key",
        "now",
        "zone",
        "notification_kinds",
        "out_recipients",
        "out_subjects",
        "out_bodies",
        "out_link",
        "in_recipients",
        "in_subjects",
        "in_bodies",
        "in_link",
        "reference_prefix",
    ],
    ["status", "account_pk", "out_id", "in_id", "balance", "created_at", "emails"],
)


def transfer_credits(
    source: Customer,
    target: Customer,
    amount,
    *,
    memo: str = "",
    actor: User | None = None,
    idempotency_key: str | None = None,
) -> tuple[CreditTransaction, CreditTransaction]:
    """Move `amount` credits from one customer to another (a member and a company, either
    way): a `transfer_out` row and a `transfer_in` row in one database transaction. The
    credits keep their expiration dates (earliest-expiring taken first). The two accounts
    are locked in id order, so transfers at once in both directions never deadlock.
    Raises InsufficientCredits (`.available`) beyond what the source has available.
    """
    source = _clean_customer(source)
    target = _clean_customer(target)
    if source == target:
        raise ValidationError("Choose two different customers to transfer between.")
    amount = clean_amount(amount)
    memo = clean_memo(memo)
    actor = _clean_actor(actor)
    idempotency_key = clean_idempotency_key(idempotency_key)
    out_notices = notices.verb_notices(
        source,
        NotificationKind.CREDITS_DEDUCTED,
        lambda r: notices.transfer_words(source, r, amount, target, out=True, memo=memo),
    )
    in_notices = notices.verb_notices(
        target,
        NotificationKind.CREDITS_ADDED,
        lambda r: notices.transfer_words(target, r, amount, source, out=False, memo=memo),
    )

    def settle(answer):
        status = answer["status"]
        if status in ("ok", "replay"):
            notifications.deliver_after_commit(answer["emails"] or [])
            out_row = CreditTransaction.objects.get(pk=answer["out_id"])
            in_row = CreditTransaction.objects.get(pk=answer["in_id"])
            if status == "replay":
                content = {
                    "kind": TransactionKind.TRANSFER_OUT,
                    "amount": -amount,
                    "memo": memo,
                    "actor_id": actor.pk if actor else None,
                }
                if {
                    name: getattr(out_row, name) for name in content
                } != content or in_row.account_id != target.credit_account.pk:
                    raise IdempotencyConflict(idempotency_key)
            return out_row, in_row
        if status == "insufficient":
            raise InsufficientCredits(available=answer["balance"], requested=amount)
        raise RuntimeError(f"credits_transfer answered {status!r}.")

    return _call(
        TRANSFER_SQL,
        {
            "source_id": source.credit_account.pk,
            "target_id": target.credit_account.pk,
            "amount": amount,
            "memo": memo,
            "actor_id": actor.pk if actor else None,
            "key": idempotency_key,
            **_clock(),
            "notification_kinds": [str(out_notices.kind), str(in_notices.kind)],
            "out_recipients": out_notices.recipient_ids,
            "out_subjects": out_notices.subjects,
            "out_bodies": out_notices.bodies,
            "out_link": out_notices.link,
            "in_recipients": in_notices.recipient_ids,
            "in_subjects": in_notices.subjects,
            "in_bodies": in_notices.bodies,
            "in_link": in_notices.link,
            "reference_prefix": notices.TRANSACTION_REFERENCE_PREFIX,
        },
        settle,
    )


# --- Grant to many ------------------------------------------------------------------------


def grant_to_many(
    customers,
    amount,
    *,
    expires_on: dt.date | None = None,
    memo: str = "",
    actor: User | None = None,
    idempotency_key: str,
) -> CreditBatch:
    """One addition (same amount, expiration and memo) to many customers, as a batch.

    The batch is recorded at once with its key and who ran it, due to run: it is its own
    outbox row (the "credit_batch" delivery, CREDIT_BATCH below), which the relay hands
    to a worker after the commit (or, without a broker, this process runs after it). The
    request does not call the broker. The run adds the credits, each addition an
    adjustment keyed by the batch: running it again, or twice, adds nothing twice. The
    same key with the same content returns the batch; with other content it raises
    IdempotencyConflict.
    """
    accounts = []
    for customer in customers:
        account_id = _clean_customer(customer).credit_account.pk
        if account_id not in accounts:
            accounts.append(account_id)
    if not accounts:
        raise ValidationError("Choose at least one customer.", code="empty")
    amount = clean_amount(amount)
    today = timezone.localdate(timezone.now())
    expires_on = clean_expires_on(expires_on, today=today)
    memo = clean_memo(memo)
    actor = _clean_actor(actor)
    key = clean_idempotency_key(idempotency_key)
    if key is None:
        raise ValidationError({"idempotency_key": "A batch needs its key."}, code="required")
    content = {
        "amount": amount,
        "expires_on": expires_on,
        "memo": memo,
        "actor_id": actor.pk if actor else None,
        "account_ids": accounts,
    }
    now = timezone.now()
    with transaction.atomic():
        batch, created = CreditBatch.objects.get_or_create(
            idempotency_key=key, defaults={**content, "created_at": now, "next_run_at": now}
        )
        if not created:
            if {name: getattr(batch, name) for name in content} != content:
                raise IdempotencyConflict(key)
            return batch
        delivery.relay_after_commit()  # with a broker, the relay's next poll takes it
    return batch


def run_credit_batch(batch_id: int) -> CreditBatch:
    """Add a batch's credits to each of its accounts not yet given them (the batch's
    delivery; a second run adds nothing twice). A grant refused (ValidationError) stops
    the batch as failed, with the reason; any other error leaves it to run again."""
    batch = CreditBatch.objects.select_related("actor").get(pk=batch_id)
    if batch.status == BatchStatus.DONE:
        return batch
    CreditBatch.objects.filter(pk=batch.pk, status=BatchStatus.PENDING).update(
        status=BatchStatus.RUNNING
    )
    accounts = CreditAccount.objects.select_related("user", "company").filter(
        pk__in=batch.account_ids
    )
    try:
        for account in accounts.order_by("pk"):
            _post(
                account.customer,
                kind=TransactionKind.ADMIN_ALLOCATION,
                amount=batch.amount,
                expires_on=batch.expires_on,
                memo=batch.memo,
                actor=batch.actor,
                idempotency_key=batch.idempotency_key_of_grants,
                batch_id=batch.pk,
            )
    except ValidationError as error:
        CreditBatch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.FAILED, error=" ".join(error.messages), finished_at=timezone.now()
        )
    else:
        CreditBatch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.DONE, finished_at=timezone.now()
        )
    batch.refresh_from_db()
    return batch


def run_failed_batches_again(batch_ids) -> int:
    """Staff's "run again" for batches whose run's last attempt failed: due now, with
    fresh attempts (the run adds only what is missing). Returns how many."""
    return delivery.retry_failed(CREDIT_BATCH.name, batch_ids)


def _run_delivered_batch(batch: CreditBatch, session) -> None:
    run_credit_batch(batch.pk)


# The advisory locks' first key: runs of grants to many (notifications' emails use 0x5C0E).
BATCH_RUN_LOCK_SPACE = 0x5C0B

# A grant to many runs as a delivery: claimed, leased, retried with backoff and handed out
# again after a crash by the mechanism that sends the emails. Its grants commit one by one
# (in_transaction=False), so the batch's page shows its progress and no account stays
# locked until the whole batch is done.
CREDIT_BATCH = delivery.register(
    delivery.Channel(
        name="credit_batch",
        model=CreditBatch,
        load=lambda pks: CreditBatch.objects.filter(pk__in=pks),
        send=_run_delivered_batch,
        lock_space=BATCH_RUN_LOCK_SPACE,
        status="run_status",
        attempts="run_attempts",
        error="run_error",
        sent_at="ran_at",
        next_attempt_at="next_run_at",
        in_transaction=False,
    )
)
