"""The API's reads: customer ids, the objects as the API shows them, cursor pages."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from decimal import Decimal

from django.db.models import Prefetch, Q, QuerySet

from credits import selectors as ledger
from credits.models import CreditLot, CreditLotUsage, CreditTransaction
from customers import selectors as customer_selectors
from customers.models import Company, User

from .models import WebhookAttempt, WebhookEndpoint
from .problems import ApiProblem

CUSTOMER_ID = re.compile(r"(user|company)_([1-9][0-9]{0,17})")
ZERO = Decimal("0.00")


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def customer_id(customer) -> str:
    return f"user_{customer.pk}" if isinstance(customer, User) else f"company_{customer.pk}"


def not_found(what: str) -> ApiProblem:
    return ApiProblem(404, "not_found", f"No {what} has this id.")


def get_customer(value: str) -> User | Company:
    """The customer `user_<id>` or `company_<id>` names, or a 404 (also for any id that is
    not of that form: to a client an id is a name, not a number to parse)."""
    match = CUSTOMER_ID.fullmatch(value)
    if match is None:
        raise not_found("customer")
    model = User if match[1] == "user" else Company
    customer = model.objects.select_related("credit_account").filter(pk=int(match[2])).first()
    if customer is None:
        raise not_found("customer")
    return customer


# --- Customers --------------------------------------------------------------------------


def _held(customer) -> Decimal:
    # Holds arrive with the ledger's other verbs (issue 13); until then nothing is held.
    get_held = getattr(ledger, "get_held_balance", None)
    return get_held(customer) if get_held else ZERO


def _available(customer, balance: Decimal) -> Decimal:
    get_available = getattr(ledger, "get_available_balance", None)
    return get_available(customer) if get_available else balance


def customer_summary(customer, balance: Decimal) -> dict:
    is_user = isinstance(customer, User)
    return {
        "id": customer_id(customer),
        "type": "user" if is_user else "company",
        "name": customer.display_name,
        "email": customer.email if is_user else None,
        "balance": money(balance),
    }


def customer_detail(customer) -> dict:
    buckets = ledger.get_expiration_breakdown(customer)
    balance = sum((amount for _, amount in buckets), ZERO)
    return {
        **customer_summary(customer, balance),
        "available": money(_available(customer, balance)),
        "held": money(_held(customer)),
        "buckets": [
            {"expires_on": expires_on, "amount": money(amount)} for expires_on, amount in buckets
        ],
    }


# Customers are listed newest first across both kinds, by (created, kind, id); the cursor
# is the last row's position in that order.
KIND_RANK = {"company": 0, "user": 1}


def _encode(*parts) -> str:
    text = ".".join(str(part) for part in parts)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii").split(".")
    except (ValueError, UnicodeError, binascii.Error):
        raise bad_cursor()


def bad_cursor() -> ApiProblem:
    return ApiProblem(
        422,
        "invalid_values",
        "The cursor is not one this list gave.",
        errors={"cursor": ["Pass a next_cursor from this list, unchanged."]},
    )


def _customer_cursor(cursor: str) -> tuple[dt.datetime, int, int]:
    parts = _decode(cursor)
    try:
        tag, micros, rank, pk = parts
        assert tag == "c" and rank in ("0", "1")
        created = dt.datetime.fromtimestamp(int(micros) / 1_000_000, tz=dt.UTC)
        return created, int(rank), int(pk)
    except (ValueError, AssertionError, OverflowError, OSError):
        raise bad_cursor()


def _micros(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _after(rows: QuerySet, created_field: str, rank: int, cursor) -> QuerySet:
    """Rows of one kind (`rank`) that come after `cursor` in (created, rank, id) desc."""
    if cursor is None:
        return rows
    created, cursor_rank, pk = cursor
    before = Q(**{f"{created_field}__lt": created})
    if rank < cursor_rank:
        return rows.filter(before | Q(**{created_field: created}))
    if rank == cursor_rank:
        return rows.filter(before | Q(**{created_field: created, "pk__lt": pk}))
    return rows.filter(before)


def list_customers(*, type: str | None, q: str, limit: int, cursor: str | None) -> dict:
    position = _customer_cursor(cursor) if cursor else None
    found = []
    kinds = [type] if type else ["user", "company"]
    for kind in kinds:
        if kind == "user":
            rows, created = customer_selectors.search_users(q), "date_joined"
        else:
            rows, created = customer_selectors.search_companies(q), "created_at"
        rows = _after(rows, created, KIND_RANK[kind], position)
        rows = rows.order_by(f"-{created}", "-pk")[: limit + 1]
        found += [(getattr(row, created), KIND_RANK[kind], row.pk, row) for row in rows]
    found.sort(key=lambda item: item[:3], reverse=True)
    page, more = found[:limit], len(found) > limit
    last = page[-1] if page and more else None
    return {
        "data": [customer_summary(row, row.credit_balance) for *_, row in page],
        "next_cursor": _encode("c", _micros(last[0]), last[1], last[2]) if last else None,
    }


# --- Transactions -----------------------------------------------------------------------


def _with_details(rows: QuerySet[CreditTransaction]) -> QuerySet[CreditTransaction]:
    return rows.select_related("account", "actor", "api_change__api_key").prefetch_related(
        Prefetch("lots", queryset=CreditLot.objects.order_by("pk")),
        Prefetch("usages", queryset=CreditLotUsage.objects.select_related("lot").order_by("id")),
    )


def get_transaction(value: str) -> CreditTransaction:
    if not re.fullmatch(r"[1-9][0-9]{0,17}", value):
        raise not_found("transaction")
    found = _with_details(CreditTransaction.objects.filter(pk=int(value))).first()
    if found is None:
        raise not_found("transaction")
    return found


def _actor(row: CreditTransaction) -> str | None:
    change = getattr(row, "api_change", None)
    if change is not None:
        return f"API: {change.api_key.name}"
    return row.actor.display_name if row.actor_id else None


def transaction_detail(row: CreditTransaction) -> dict:
    account = row.account
    owner = f"user_{account.user_id}" if account.user_id else f"company_{account.company_id}"
    # The lots it added (one; a transfer in adds one per expiration date), or those it took.
    added = list(row.lots.all())
    if added:
        lots = [
            {"lot_id": lot.pk, "amount": money(lot.amount), "expires_on": lot.expires_on}
            for lot in added
        ]
    else:
        lots = [
            {"lot_id": use.lot_id, "amount": money(use.amount), "expires_on": use.lot.expires_on}
            for use in row.usages.all()
        ]
    on_behalf_of = getattr(row, "on_behalf_of_id", None)
    return {
        "id": row.pk,
        "customer_id": owner,
        "type": row.kind,
        "amount": money(row.amount),
        "balance_after": money(row.balance_after),
        "memo": row.memo,
        "created_at": row.created_at,
        "expires_on": row.expires_on,
        "actor": _actor(row),
        "lots": lots,
        # The ledger's other verbs (issue 13) add these columns.
        "reverses": getattr(row, "reverses_id", None),
        "refunded_charge": getattr(row, "refunded_charge_id", None),
        "hold_id": getattr(row, "hold_id", None),
        "on_behalf_of": f"user_{on_behalf_of}" if on_behalf_of else None,
    }


def _utc(moment: dt.datetime, field: str) -> dt.datetime:
    """The moment in UTC: PostgreSQL takes offsets up to 15:59 only, and Python up to 23:59."""
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        raise ApiProblem(
            422,
            "invalid_values",
            "A time is out of range.",
            errors={field: ["Give a time between the years 1 and 9999."]},
        )


def list_transactions(customer, *, filters) -> dict:
    """Newest first by the account's `seq`: rows added while a client walks the pages get
    higher seqs, so they never shift the rows of the pages still to come."""
    rows = ledger.get_transactions(customer)
    if filters.type:
        rows = rows.filter(kind=filters.type)
    if filters.created_gte:
        rows = rows.filter(created_at__gte=_utc(filters.created_gte, "created_gte"))
    if filters.created_lt:
        rows = rows.filter(created_at__lt=_utc(filters.created_lt, "created_lt"))
    if filters.cursor:
        parts = _decode(filters.cursor)
        if len(parts) != 2 or parts[0] != "t" or not parts[1].isdigit() or len(parts[1]) > 18:
            raise bad_cursor()
        rows = rows.filter(seq__lt=int(parts[1]))
    fetched = list(_with_details(rows.order_by("-seq"))[: filters.limit + 1])
    page = fetched[: filters.limit]
    more = len(fetched) > filters.limit
    return {
        "data": [transaction_detail(row) for row in page],
        "next_cursor": _encode("t", page[-1].seq) if more else None,
    }


# --- Holds ------------------------------------------------------------------------------


def hold_detail(hold) -> dict:
    """A hold as the API shows it (`id`, `customer_id`, `amount`, `status`, `expires_at`)."""
    account = hold.account
    owner = f"user_{account.user_id}" if account.user_id else f"company_{account.company_id}"
    return {
        "id": hold.pk,
        "customer_id": owner,
        "amount": money(hold.amount),
        "status": hold.status,
        "expires_at": hold.expires_at,
    }


# --- Webhooks ---------------------------------------------------------------------------

RECENT_DELIVERIES = 10


def webhook_endpoints_with_recent_deliveries(pk: int | None = None) -> list:
    """The endpoints (or the one `pk` names), each with `recent_deliveries`: its latest
    deliveries, newest first, with their attempts, oldest first."""
    endpoints = list(WebhookEndpoint.objects.filter(**({"pk": pk} if pk else {})))
    attempts = Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("id"))
    for endpoint in endpoints:
        endpoint.recent_deliveries = list(
            endpoint.deliveries.order_by("-id").prefetch_related(attempts)[:RECENT_DELIVERIES]
        )
    return endpoints
