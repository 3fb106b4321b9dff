"""What members are told about their credits: the words of each notice, who is told, and
the reminders of credits that expire soon. The notices are written through
`notifications` (its one writer, `notifications_write`), in the same transaction as the
ledger change they report: by the adjustment function itself, or by `write` below.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from django.db import transaction
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from customers.models import CompanyMembership, User, url_kind
from notifications import selectors as notification_selectors
from notifications import services as notifications
from notifications.models import NotificationKind
from spacecredits.formats import credits_number, format_credits, format_date

from .models import CreditAccount, CreditHold, CreditLot

REMINDER_DAYS = 7


# --- Words ------------------------------------------------------------------------------


def _verb(amount: Decimal, singular: str, plural: str) -> str:
    return singular if abs(amount) == 1 else plural


def _balance_name(customer, recipient: User | None) -> str:
    """'your balance' for a personal balance, "Acme Ltd's balance" for a company's."""
    return "your balance" if customer == recipient else f"{customer.name}'s balance"


def adjustment_words(
    customer, recipient, amount: Decimal, expires_on: dt.date | None, memo: str
) -> tuple[str, str]:
    """Subject and body about an adjustment of `amount` (signed), for `recipient`."""
    where = _balance_name(customer, recipient)
    credits = format_credits(amount)
    if amount > 0:
        subject = f"{credits} added to {where}"
        body = f"{credits} {_verb(amount, 'was', 'were')} added to {where}."
        if expires_on is None:
            body += f" {_verb(amount, 'It never expires', 'They never expire')}."
        else:
            body += f" {_verb(amount, 'It expires', 'They expire')} on {format_date(expires_on)}."
    else:
        subject = f"{credits} deducted from {where}"
        body = f"{credits} {_verb(amount, 'was', 'were')} deducted from {where}."
    if memo:
        body += f" Memo: {memo}"
    return subject[:1].upper() + subject[1:], body


def lots_words(parts: list[tuple[Decimal, dt.date | None]], preposition: str = "from") -> str:
    """Which credits a row used or gave back: '5 from credits expiring 4 Dec 2026, 1 from
    credits that never expire' (or 'to', for what a reversal or refund gave back)."""
    said = []
    for amount, expires_on in parts:
        which = (
            f"credits expiring {format_date(expires_on)}"
            if expires_on
            else "credits that never expire"
        )
        said.append(f"{credits_number(amount)} {preposition} {which}")
    return ", ".join(said)


def expiration_words(
    customer, recipient: User, amount: Decimal, balance_after: Decimal, expired_on: dt.date
) -> tuple[str, str]:
    """Subject and body about credits whose last day was `expired_on`."""
    where = _balance_name(customer, recipient)
    credits = format_credits(amount)
    subject = f"{credits} expired"
    body = (
        f"{credits} in {where} expired at the end of {format_date(expired_on)}."
        f" {'Your' if where == 'your balance' else 'The'} balance is now"
        f" {format_credits(balance_after)}."
    )
    return subject, body


def reminder_words(customer, lot: CreditLot, recipient: User) -> tuple[str, str]:
    amount = format_credits(lot.remaining)
    verb = _verb(lot.remaining, "expires", "expire")
    when = format_date(lot.expires_on)
    where = _balance_name(customer, recipient)
    return f"{amount} {verb} on {when}", f"{amount} in {where} {verb} on {when}."


# --- Who is told, and where they read more ----------------------------------------------


def recipients_of(customer) -> list[User]:
    """Who is told about a customer's credits: the user, or the company's managers."""
    if isinstance(customer, User):
        return [customer] if customer.is_active else []
    return list(
        User.objects.filter(
            is_active=True,
            memberships__company=customer,
            memberships__role=CompanyMembership.Role.MANAGER,
        ).order_by("pk")
    )


def who_is_told(customer) -> tuple[list[User | None], str]:
    """Who is told about a change to the customer's credits, and the address of an email
    alone: the recipients (recipients_of) and "", or, for a company with no active manager
    to tell, [None] and its billing email (nothing at all when it has none)."""
    recipients = recipients_of(customer)
    if recipients or isinstance(customer, User) or not customer.email:
        return recipients, ""
    return [None], customer.email


def nobody_told(customer) -> str:
    """Why nobody is told of a change to this customer's credits, or "" when someone is:
    the Adjust balance dialog warns with it."""
    if who_is_told(customer)[0]:
        return ""
    if isinstance(customer, User):
        if customer.is_anonymised:
            return f"Nobody will be notified: {customer.display_name} was anonymised."
        return (
            f"Nobody will be notified: {customer.display_name}'s account is inactive"
            " (they cannot log in)."
        )
    return (
        f"Nobody will be notified: {customer.name} has no active manager and no billing"
        " email (the company's email address, which is told when no manager is)."
    )


def transactions_link(customer) -> str:
    """The path where a member reads this customer's transactions (member side)."""
    before, after = _transactions_link_around_id(url_kind(customer), get_script_prefix())
    return f"{before}{customer.pk}{after}"


_ID_PLACEHOLDER = 918273645546372819


@lru_cache(maxsize=16)
def _transactions_link_around_id(kind: str, script_prefix: str) -> tuple[str, str]:
    """The member transactions path, reversed once per kind and split around the id:
    adjustments and the expiry sweep build it for every notification, and reverse()
    cost a quarter of an adjustment's Python time."""
    before, after = reverse("member:transactions", args=[kind, _ID_PLACEHOLDER]).split(
        str(_ID_PLACEHOLDER)
    )
    return before, after


# What a notice of a ledger row is about: the prefix and the row's id (the adjustment
# function joins them in SQL).
TRANSACTION_REFERENCE_PREFIX = "transaction:"


def transaction_reference(transaction_id) -> str:
    return f"{TRANSACTION_REFERENCE_PREFIX}{transaction_id}"


def reminder_reference(lot_id) -> str:
    return f"expiring-lot:{lot_id}"


# --- Notices of adjustments (written by the adjustment function) ------------------------


@dataclass(frozen=True)
class AdjustmentNotices:
    """The notices an adjustment will write, ready before it is recorded: the ledger's
    database function passes them to notifications_write with the ledger row."""

    kind: str
    recipient_ids: list[int | None]  # None: an email alone, to the address beside it
    subjects: list[str]
    bodies: list[str]
    link: str
    addresses: list[str | None]


def adjustment_notices(
    customer, amount: Decimal, expires_on: dt.date | None, memo: str
) -> AdjustmentNotices:
    """What the customer's recipients are told about an adjustment of `amount` (signed),
    less the transaction and the balance, which the database fills in."""
    told_now, address = who_is_told(customer)
    words = [adjustment_words(customer, r, amount, expires_on, memo) for r in told_now]
    return AdjustmentNotices(
        kind=NotificationKind.CREDITS_ADDED if amount > 0 else NotificationKind.CREDITS_DEDUCTED,
        recipient_ids=[r.pk if r else None for r in told_now],
        subjects=[subject for subject, _ in words],
        bodies=[body for _, body in words],
        link=transactions_link(customer),
        addresses=[None if r else address for r in told_now],
    )


# --- Notices of the other verbs (written by their database functions) ------------------


def format_moment(moment: dt.datetime) -> str:
    """'5 Jun 2026, 14:00' in the space's zone, as a hold's end is written."""
    local = timezone.localtime(moment, timezone.get_default_timezone())
    return f"{format_date(local)}, {local:%H:%M}"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _with_memo(body: str, memo: str) -> str:
    return f"{body} Memo: {memo}" if memo else body


def reversal_words(customer, recipient, amount: Decimal, reversed_row, memo: str):
    """A reversal of `amount` (signed) that undoes `reversed_row`."""
    where = _balance_name(customer, recipient)
    credits = format_credits(amount)
    when = format_date(timezone.localdate(reversed_row.created_at))
    if amount < 0:
        subject = f"{credits} taken back from {where}"
        body = (
            f"{credits} {_verb(amount, 'was', 'were')} taken back from {where}:"
            f" the addition of {when} was reversed."
        )
    else:
        subject = f"{credits} returned to {where}"
        body = (
            f"{credits} {_verb(amount, 'was', 'were')} returned to {where}:"
            f" the deduction of {when} was reversed."
        )
    return _capitalised(subject), _with_memo(body, memo)


def refund_words(customer, recipient, amount: Decimal, memo: str):
    where = _balance_name(customer, recipient)
    credits = format_credits(amount)
    subject = f"{credits} refunded to {where}"
    body = f"{credits} {_verb(amount, 'was', 'were')} refunded to {where}."
    return _capitalised(subject), _with_memo(body, memo)


def hold_words(customer, recipient, amount: Decimal, expires_at: dt.datetime, memo: str):
    where = _balance_name(customer, recipient)
    credits = format_credits(amount)
    subject = f"{credits} held in {where}"
    body = (
        f"{credits} in {where} {_verb(amount, 'is', 'are')} held until {format_moment(expires_at)}."
    )
    return _capitalised(subject), _with_memo(body, memo)


def _held_for(hold) -> str:
    """'the hold of 7 credits for Desk 3' (its memo says what it was for)."""
    held = f"the hold of {format_credits(hold.amount)}"
    return f"{held} for {hold.memo}" if hold.memo else held


def _freed_words(freed: Decimal, expired: Decimal, *, said: str = "", where: str = "") -> str:
    """What became of `freed` credits a hold gave back, `expired` of them in credits whose
    last day had passed (they expire now, told by their own notice): 'they are available
    again in your balance', 'the other 3 credits held are available again'. `said` names
    them (else 'it'/'they'); `where`, when given, is where they are available."""
    in_where = f" in {where}" if where else ""
    gone = f"expired, as {_verb(expired, 'its', 'their')} last day had passed"
    available = freed - expired
    they = said or _verb(freed, "it", "they")
    if not expired:
        return f"{they} {_verb(freed, 'is', 'are')} available again{in_where}"
    if not available:
        return f"{they} {gone}"
    split = (
        f"{credits_number(available)} {_verb(available, 'is', 'are')} available"
        f" again{in_where}, {credits_number(expired)} {gone}"
    )
    return f"{said}: {split}" if said else split


def capture_words(customer, recipient, hold, charged: Decimal, expired: Decimal, memo: str):
    """A capture of `charged` credits of `hold` (a booking): what they were used for, and
    what became of the rest held (`expired` of it in credits whose last day had passed)."""
    where = _balance_name(customer, recipient)
    credits = format_credits(charged)
    subject = f"{credits} used from {where}"
    body = (
        f"{credits} held in {where} {_verb(charged, 'was', 'were')} used for"
        f" {hold.memo or 'a booking'}"
    )
    freed = hold.amount - charged
    if freed:
        said = f"the other {format_credits(freed)} held"
        body += f"; {_freed_words(freed, expired, said=said)}."
    else:
        body += "."
    return _capitalised(subject), _with_memo(body, memo if memo != hold.memo else "")


def release_words(customer, recipient, hold, expired: Decimal):
    """A hold released before it was used (`expired` of it in credits whose last day had
    passed)."""
    where = _balance_name(customer, recipient)
    subject = f"{format_credits(hold.amount)} released in {where}"
    body = (
        f"{_capitalised(_held_for(hold))} was released:"
        f" {_freed_words(hold.amount, expired, where=where)}."
    )
    return _capitalised(subject), body


def hold_expiry_words(customer, recipient, hold, expired: Decimal):
    """A hold whose time was up before it was captured."""
    where = _balance_name(customer, recipient)
    subject = f"{format_credits(hold.amount)} no longer held in {where}"
    body = (
        f"{_capitalised(_held_for(hold))} ended at {format_moment(hold.expires_at)} unused:"
        f" {_freed_words(hold.amount, expired, where=where)}."
    )
    return _capitalised(subject), body


def transfer_words(customer, recipient, amount: Decimal, other, *, out: bool, memo: str):
    """A transfer of `amount` between `customer` and `other`, from `customer` if `out`."""
    where = _balance_name(customer, recipient)
    credits = format_credits(amount)
    if out:
        subject = f"{credits} transferred to {other.display_name}"
        body = (
            f"{credits} {_verb(amount, 'was', 'were')} transferred from {where}"
            f" to {other.display_name}."
        )
    else:
        subject = f"{credits} transferred from {other.display_name}"
        body = (
            f"{credits} {_verb(amount, 'was', 'were')} transferred to {where}"
            f" from {other.display_name}."
        )
    return _capitalised(subject), _with_memo(body, memo)


def verb_notices(customer, kind: str, words) -> AdjustmentNotices:
    """The notices of one ledger change for those told of it (who_is_told, a company's
    billing email included): `words(recipient)` gives each one's subject and body
    (`recipient` None for the billing email); the database fills in the row and the
    balance, and the billing email's address (credits_notify in verbs.sql)."""
    told_now, address = who_is_told(customer)
    said = [words(recipient) for recipient in told_now]
    return AdjustmentNotices(
        kind=kind,
        recipient_ids=[r.pk if r else None for r in told_now],
        subjects=[subject for subject, _ in said],
        bodies=[body for _, body in said],
        link=transactions_link(customer),
        addresses=[None if r else address for r in told_now],
    )


# What a notice of a hold is about: the hold and its end are two things to tell.
HOLD_REFERENCE_PREFIX = "hold:"
RELEASE_REFERENCE_PREFIX = "hold-released:"


# --- Notices of expirations (the expiry sweep, and an adjustment that found some due) ---


@dataclass(frozen=True)
class Expiration:
    """An `expiration` transaction just written: the fields its notices use."""

    account: CreditAccount
    transaction_id: int
    amount: Decimal
    balance_after: Decimal
    expired_on: dt.date  # the credits' last day


def notify_expirations(expirations: list[Expiration]) -> None:
    """Tell the recipients of each expiration, in a fixed number of queries however many
    customers there are (the sweep writes tens of thousands at once)."""
    if not expirations:
        return
    customers = {e.account.pk: e.account.customer for e in expirations}
    recipients = _told_of_many(customers)
    links = {pk: transactions_link(customer) for pk, customer in customers.items()}
    rows = notifications.Rows()
    for expiration in expirations:
        customer, link = customers[expiration.account.pk], links[expiration.account.pk]
        for recipient in recipients[expiration.account.pk]:
            subject, body = expiration_words(
                customer,
                recipient,
                expiration.amount,
                expiration.balance_after,
                expiration.expired_on,
            )
            rows.add(
                recipient=recipient.pk if recipient else None,
                address="" if recipient else customer.email,
                subject=subject,
                body=body,
                link=link,
                balance_after=expiration.balance_after,
                reference=transaction_reference(expiration.transaction_id),
            )
    notifications.write(NotificationKind.CREDITS_EXPIRED, rows)


def _told_of_many(customers: dict) -> dict[int, list[User | None]]:
    """who_is_told's recipients of many customers ({key: customer}) in one query: the
    user, or the company's active managers, or None for its billing email (the address is
    the company's `email`) when it has none and an address."""
    company_ids = [c.pk for c in customers.values() if not isinstance(c, User)]
    managers: dict[int, list[User]] = {pk: [] for pk in company_ids}
    memberships = CompanyMembership.objects.filter(
        company_id__in=company_ids, role=CompanyMembership.Role.MANAGER, user__is_active=True
    ).select_related("user")
    for membership in memberships.order_by("user_id"):
        managers[membership.company_id].append(membership.user)
    return {
        key: ([customer] if customer.is_active else [])
        if isinstance(customer, User)
        else (managers[customer.pk] or ([None] if customer.email else []))
        for key, customer in customers.items()
    }


# --- Notices of holds that ended unused (the sweep, and any change of the account) ------


def notify_hold_expiries(accounts: dict[int, CreditAccount], hold_ids: list[int]) -> None:
    """Tell the recipients of each hold whose time was up, once per hold (the reference of
    a hold's end, as for a release), in a fixed number of queries. `accounts` are the
    locked accounts of the holds ({id: account}, their balance as it now stands); a
    share of a hold in a lot whose last day had passed has expired with it."""
    if not hold_ids:
        return
    today = timezone.localdate(timezone.now())
    holds = list(
        CreditHold.objects.filter(pk__in=hold_ids)
        .annotate(
            expired=Coalesce(
                Sum("lots__amount", filter=Q(lots__lot__expires_on__lt=today)), Decimal(0)
            )
        )
        .order_by("account_id", "pk")
    )
    customers = {hold.account_id: accounts[hold.account_id].customer for hold in holds}
    recipients = _told_of_many(customers)
    rows = notifications.Rows()
    for hold in holds:
        customer = customers[hold.account_id]
        for recipient in recipients[hold.account_id]:
            subject, body = hold_expiry_words(customer, recipient, hold, hold.expired)
            rows.add(
                recipient=recipient.pk if recipient else None,
                address="" if recipient else customer.email,
                subject=subject,
                body=body,
                link=transactions_link(customer),
                balance_after=accounts[hold.account_id].balance,
                reference=f"{RELEASE_REFERENCE_PREFIX}{hold.pk}",
            )
    notifications.write(NotificationKind.CREDITS_HELD, rows)


# --- Reminders of credits that expire soon ----------------------------------------------


def send_expiry_reminders() -> int:
    """Remind recipients, once per lot, of credits that expire within REMINDER_DAYS days.

    A lot gets its reminder on the first run that finds it within REMINDER_DAYS of its
    expiration with credits left; notifications_write tells each recipient of a reference
    once, so a second run (or two at once) tells nobody twice. Returns the number of
    notifications written.
    """
    today = timezone.localdate(timezone.now())
    lots = CreditLot.objects.filter(
        remaining__gt=0,
        expires_on__gte=today,
        expires_on__lte=today + dt.timedelta(days=REMINDER_DAYS),
    )
    candidates = dict(lots.values_list("pk", "account_id"))
    told = notification_selectors.references_told(
        NotificationKind.CREDITS_EXPIRING, [reminder_reference(pk) for pk in candidates]
    )
    account_ids = sorted(
        {account for pk, account in candidates.items() if reminder_reference(pk) not in told}
    )
    written = 0
    for account_id in account_ids:
        with transaction.atomic():
            # Under the account lock no deduction runs, so `remaining` is what it says.
            account = (
                CreditAccount.objects.select_for_update(of=("self",))
                .select_related("user", "company")
                .get(pk=account_id)
            )
            customer = account.customer
            recipients, address = who_is_told(customer)
            link = transactions_link(customer)
            rows = notifications.Rows()
            for lot in lots.filter(account=account).order_by("expires_on", "created_at", "id"):
                if reminder_reference(lot.pk) in told:
                    continue
                for recipient in recipients:
                    subject, body = reminder_words(customer, lot, recipient)
                    rows.add(
                        recipient=recipient.pk if recipient else None,
                        address=address,
                        subject=subject,
                        body=body,
                        link=link,
                        reference=reminder_reference(lot.pk),
                    )
            written += notifications.write(NotificationKind.CREDITS_EXPIRING, rows)
    return written
