"""The API's reads: customer ids, the objects as the API shows them, cursor pages."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from decimal import Decimal

from django.db.models import F, Prefetch, Q, QuerySet, Value, prefetch_related_objects
from django.db.models.functions import Concat, NullIf

from credits import selectors as ledger
from credits.models import (
    CreditHold,
    CreditLot,
    CreditLotReturn,
    CreditLotUsage,
    CreditTransaction,
    TransactionKind,
)
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


def not_found(what: str, field: str | None = None) -> ApiProblem:
    """A 404; `field` names the body's field that holds the id, when it is not the URL's."""
    if field is None:
        return ApiProblem(404, "not_found", f"No {what} has this id.")
    message = f"No {what} has the id given as {field}."
    return ApiProblem(404, "not_found", message, errors={field: [message]})


def get_customer(value: str, *, field: str | None = None) -> User | Company:
    """The customer `user_<id>` or `company_<id>` names, or a 404 (also for any id that is
    not of that form: to a client an id is a name, not a number to parse)."""
    match = CUSTOMER_ID.fullmatch(value)
    if match is None:
        raise not_found("customer", field)
    model = User if match[1] == "user" else Company
    try:
        return model.objects.select_related("credit_account").get(pk=int(match[2]))
    except model.DoesNotExist:
        raise not_found("customer", field) from None


ROW_ID = re.compile(r"[1-9][0-9]{0,17}")


# --- Customers --------------------------------------------------------------------------


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
    balances = ledger.get_balances(customer)
    return {
        **customer_summary(customer, balances.balance),
        "available": money(balances.available),
        "held": money(balances.held),
        "buckets": [
            {"expires_on": expires_on, "amount": money(amount)}
            for expires_on, amount in balances.breakdown
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


def _lot_prefetch(relation: str) -> Prefetch:
    """The relation of a transaction that says which lots it moved (see _lots)."""
    if relation == "lots":
        return Prefetch("lots", queryset=CreditLot.objects.order_by("pk"))
    model = CreditLotUsage if relation == "usages" else CreditLotReturn
    related = ["lot"] if relation == "usages" else ["lot", "grace_lot"]
    return Prefetch(relation, queryset=model.objects.select_related(*related).order_by("id"))


def _with_details(rows: QuerySet[CreditTransaction]) -> QuerySet[CreditTransaction]:
    return rows.select_related("account", "actor", "api_change__api_key").prefetch_related(
        *(_lot_prefetch(relation) for relation in ("lots", "usages", "returns"))
    )


def with_lots(row: CreditTransaction) -> CreditTransaction:
    """`row` with the lots it moved read (one query), for transaction_detail."""
    prefetch_related_objects([row], _lot_prefetch(_lot_relation(row)))
    return row


def get_transaction(value: str) -> CreditTransaction:
    if not ROW_ID.fullmatch(value):
        raise not_found("transaction")
    rows = CreditTransaction.objects.select_related("account", "actor", "api_change__api_key")
    found = rows.filter(pk=int(value)).first()
    if found is None:
        raise not_found("transaction")
    return with_lots(found)


# How a change made through a key is named, in the API's `actor` and in the history's
# "By" (made_by, registered with credits.selectors in apps.py): "API: <key name>".
KEY_ACTOR_PREFIX = "API: "


def made_by_key():
    """The history's label of a row made through a key, NULL for any other row (Concat
    reads NULL as "", so the bare prefix is made NULL again)."""
    prefix = Value(KEY_ACTOR_PREFIX)
    return NullIf(Concat(prefix, F("api_change__api_key__name")), prefix)


def _actor(row: CreditTransaction) -> str | None:
    change = getattr(row, "api_change", None)
    if change is not None:
        return f"{KEY_ACTOR_PREFIX}{change.api_key.name}"
    return row.actor.display_name if row.actor_id else None


def _owner(account) -> str:
    return f"user_{account.user_id}" if account.user_id else f"company_{account.company_id}"


# The kinds whose credits go back to the lots they came from (CreditLotReturn).
GIVING_BACK = {TransactionKind.REFUND, TransactionKind.REVERSAL}


def _lot(lot, amount: Decimal) -> dict:
    return {"lot_id": lot.pk, "amount": money(amount), "expires_on": lot.expires_on}


def _lot_relation(row: CreditTransaction) -> str:
    """Where the lots a row moved are recorded: what a row that takes credits took from
    each lot (usages); where a refund or reversal gave credits back (returns: to the lot,
    or to the new grace lot when the lot's date had passed); the lots a row added (a
    transfer in adds one per date)."""
    if row.amount < 0:
        return "usages"
    return "returns" if row.kind in GIVING_BACK else "lots"


def _lots(row: CreditTransaction) -> list[dict]:
    relation = _lot_relation(row)
    if relation == "usages":
        return [_lot(use.lot, use.amount) for use in row.usages.all()]
    if relation == "returns":
        return [_lot(given.grace_lot or given.lot, given.amount) for given in row.returns.all()]
    return [_lot(lot, lot.amount) for lot in row.lots.all()]


def transaction_detail(row: CreditTransaction) -> dict:
    on_behalf_of = row.on_behalf_of_id
    return {
        "id": row.pk,
        "customer_id": _owner(row.account),
        "type": row.kind,
        "amount": money(row.amount),
        "balance_after": money(row.balance_after),
        "memo": row.memo,
        "created_at": row.created_at,
        "expires_on": row.expires_on,
        "actor": _actor(row),
        "lots": _lots(row),
        "reverses": row.reverses_id,
        "refunded_charge": row.refunded_charge_id,
        "hold_id": row.hold_id,
        "on_behalf_of": f"user_{on_behalf_of}" if on_behalf_of else None,
    }


# --- Holds ------------------------------------------------------------------------------


def get_hold(value: str) -> CreditHold:
    if not ROW_ID.fullmatch(value):
        raise not_found("hold")
    found = CreditHold.objects.select_related("account").filter(pk=int(value)).first()
    if found is None:
        raise not_found("hold")
    return found


def hold_detail(hold: CreditHold) -> dict:
    return {
        "id": hold.pk,
        "customer_id": _owner(hold.account),
        "amount": money(hold.amount),
        "status": hold.status,
        "expires_at": hold.expires_at,
    }


def utc(moment: dt.datetime, field: str) -> dt.datetime:
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
        rows = rows.filter(created_at__gte=utc(filters.created_gte, "created_gte"))
    if filters.created_lt:
        rows = rows.filter(created_at__lt=utc(filters.created_lt, "created_lt"))
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
