"""Every write to the credit ledger.

Each service is one database transaction that first locks the customer's `CreditAccount`
row, so that changes of one customer's credits run one at a time: two deductions at once
never overdraw and never lose an update. Under the lock it writes the customer's due
expirations, re-checks its rule, and appends to the ledger. Time is read only through
`django.utils.timezone.now()`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from itertools import groupby

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from customers.models import Company, User
from notifications import services as notifications

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


def clean_expires_on(expires_on) -> dt.date | None:
    """An expiration is a date, today or later in the space's time zone, or None (never)."""
    if expires_on is None:
        return None
    if isinstance(expires_on, dt.datetime) or not isinstance(expires_on, dt.date):
        raise ValidationError({"expires_on": "Enter the expiration as a date."}, code="invalid")
    if expires_on < timezone.localdate(timezone.now()):
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
    return {"user": customer} if isinstance(customer, User) else {"company": customer}


def _lock_account(customer: Customer) -> CreditAccount:
    """Lock (creating if need be) the customer's account row until the transaction ends."""
    lookup = owner_filter(customer)
    locked = CreditAccount.objects.select_for_update()
    try:
        return locked.get(**lookup)
    except CreditAccount.DoesNotExist:
        # Two first adjustments at once: one insert wins, the other does nothing and
        # then waits on the winner's lock.
        CreditAccount.objects.bulk_create(
            [CreditAccount(**lookup, created_at=timezone.now())], ignore_conflicts=True
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
    account.save(update_fields=["balance", "last_seq"])


def _write_due_expirations(account: CreditAccount, now: dt.datetime) -> int:
    """Write off what remains of the locked account's lots whose time is up.

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
        expired = _append(
            account,
            kind=TransactionKind.EXPIRATION,
            amount=-sum(lot.remaining for lot in lots),
            created_at=_expiry_moment(expires_on),
            memo=f"Credits that expired on {expires_on.day} {expires_on:%b %Y}",
        )
        notifications.notify_expiration(account, expired)
        for lot in lots:
            usages.append(CreditLotUsage(transaction=expired, lot=lot, amount=lot.remaining))
            lot.remaining = Decimal("0")
    CreditLotUsage.objects.bulk_create(usages)
    CreditLot.objects.bulk_update(due, ["remaining"])
    return len(due)


def _replay(account, idempotency_key, **content) -> CreditTransaction | None:
    """The transaction already recorded under this key, if its content matches."""
    if idempotency_key is None:
        return None
    earlier = CreditTransaction.objects.filter(
        account=account, idempotency_key=idempotency_key
    ).first()
    if earlier is None:
        return None
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

    with transaction.atomic():
        account = _lock_account(customer)
        # Read the clock only once the lock is held, so an account's created_at rises with
        # its seq even when adjustments queue for the lock.
        now = timezone.now()
        earlier = _replay(
            account,
            idempotency_key,
            kind=kind,
            amount=amount,
            expires_on=expires_on,
            memo=memo,
            actor_id=actor.pk if actor else None,
        )
        if earlier is not None:
            return earlier
        _write_due_expirations(account, now)
        added = _append(
            account,
            kind=kind,
            amount=amount,
            created_at=now,
            expires_on=expires_on,
            memo=memo,
            actor=actor,
            idempotency_key=idempotency_key,
        )
        CreditLot.objects.create(
            account=account,
            allocation=added,
            amount=amount,
            remaining=amount,
            expires_on=expires_on,
            created_at=now,
        )
        _save_account(account)
        notifications.notify_adjustment(customer, added)
        return added


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

    with transaction.atomic():
        account = _lock_account(customer)
        # Read the clock only once the lock is held, so an account's created_at rises with
        # its seq even when adjustments queue for the lock.
        now = timezone.now()
        earlier = _replay(
            account,
            idempotency_key,
            kind=kind,
            amount=-amount,
            expires_on=None,
            memo=memo,
            actor_id=actor.pk if actor else None,
        )
        if earlier is not None:
            return earlier
        _write_due_expirations(account, now)
        if amount > account.balance:
            # Raising rolls back the expirations written above too: nothing changes.
            raise InsufficientCredits(available=account.balance, requested=amount)
        charged = _append(
            account,
            kind=kind,
            amount=-amount,
            created_at=now,
            memo=memo,
            actor=actor,
            idempotency_key=idempotency_key,
        )
        _take_from_lots(account, charged, amount)
        _save_account(account)
        notifications.notify_adjustment(customer, charged)
        return charged


def _take_from_lots(account: CreditAccount, charged: CreditTransaction, amount: Decimal):
    """Take `amount` from the account's open lots in deduction order, recording each take."""
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


def expire_due_credits() -> int:
    """Write an `expiration` for every lot whose time is up. Returns the lots expired.

    Each customer is handled in its own short transaction under its account lock, so the
    sweep never holds many locks at once and runs safely beside adjustments.
    """
    now = timezone.now()
    today = timezone.localdate(now)
    account_ids = sorted(
        set(
            CreditLot.objects.filter(remaining__gt=0, expires_on__lt=today).values_list(
                "account_id", flat=True
            )
        )
    )
    expired = 0
    for account_id in account_ids:
        with transaction.atomic():
            account = CreditAccount.objects.select_for_update().get(pk=account_id)
            count = _write_due_expirations(account, now)
            if count:
                _save_account(account)
            expired += count
    return expired
