"""The public API, version 1 (SPEC.md, "The public API (v1)"), on django-ninja.

Endpoints parse, authorise and call one service or selector; the ledger's rules stay in
credits.services. Every failure is a problem document (api/problems.py); every POST runs
once per Idempotency-Key (api/idempotency.py); every change records its key (ApiKeyChange).
"""

from __future__ import annotations

from csp.decorators import csp_update
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Body, NinjaAPI, Query
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer
from pydantic import BaseModel

from credits import services as ledger
from credits.exceptions import CreditLimitExceeded, IdempotencyConflict, InsufficientCredits
from customers import selectors as customer_selectors

from . import idempotency, ratelimit, schemas, selectors, services
from .models import ApiKey, ApiKeyChange, ApiKeyHold, Scope
from .problems import CONTENT_TYPE, ApiProblem, problem

PROBLEM = {"content": {CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


class KeyAuth(HttpBearer):
    """`Authorization: Bearer <key>`; `scope` is what the endpoint needs. Also counts the
    request against the key's rate limit, and for writes checks what every POST needs
    before its body is read (the Idempotency-Key header, a JSON body)."""

    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        api_key = services.authenticate(token)
        if api_key is None:
            return None
        decision = ratelimit.hit(api_key.pk)
        if not decision.allowed:
            raise ApiProblem(
                429,
                "rate_limited",
                "Too many requests with this key; retry after the Retry-After seconds.",
                headers={"Retry-After": str(decision.retry_after)},
            )
        if self.scope == Scope.WRITE and api_key.scope != Scope.WRITE:
            raise ApiProblem(403, "insufficient_scope", "This key may only read; use a write key.")
        if request.method == "POST":
            idempotency.header_key(request)
            content_type = request.content_type or ""
            if request.body and content_type != "application/json":
                raise ApiProblem(
                    415, "unsupported_media_type", "Send the body as application/json."
                )
        return api_key


READ, WRITE = KeyAuth(Scope.READ), KeyAuth(Scope.WRITE)

api = NinjaAPI(
    title="SpaceCredits API",
    version="1",
    description="Read and move a coworking space's credits. Errors are "
    "application/problem+json (RFC 9457); every POST needs an Idempotency-Key.",
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
    auth=READ,
    # Swagger UI's stylesheet draws its icons as data: SVG images; nothing else is widened
    # (its scripts are our static files, its settings a JSON script element).
    docs_decorator=csp_update({"img-src": ["'self'", "data:"]}),
)

# --- Errors -----------------------------------------------------------------------------


@api.exception_handler(ApiProblem)
def _problem(request, exc: ApiProblem):
    return exc.response()


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return problem(
        401,
        "unauthenticated",
        "Send a valid, unrevoked API key as Authorization: Bearer <key>.",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _field(loc) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    if parts and parts[0] in ("payload", "filters"):  # the view's argument, not a field
        parts = parts[1:]
    return ".".join(parts) or "body"


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc: NinjaValidationError):
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        errors.setdefault(_field(error.get("loc", ())), []).append(error.get("msg", "Invalid."))
    return problem(422, "invalid_values", "Some values are not valid.", errors=errors)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if exc.status_code == 400:
        return problem(400, "malformed_json", "The body is not valid JSON.")
    return problem(exc.status_code, "error", str(exc))


# The ledger's refusals (ValidationError codes of credits.services) that are about the
# state of what the request changes, not about the values it sends: a row reversed
# already, a booking refunded in full, a hold captured or released. They are 409, like a
# lack of credits; every other refusal is an invalid value, 422.
STATE_CONFLICTS = {
    "reversal_reversed": "not_reversible",
    "not_reversible": "not_reversible",
    "reversed_already": "reversed_already",
    "nothing_left": "nothing_left",
    "not_refundable": "not_refundable",
    "refunded": "refunded_already",
    "hold_captured": "hold_not_held",
    "hold_released": "hold_not_held",
    "hold_expired": "hold_not_held",
}


def ledger_problem(error: DjangoValidationError) -> ApiProblem:
    """The services' refusals as problems: 409 for a lack of credits or a conflict with
    the state of the row changed, 422 for invalid values (with `errors` per field)."""
    if isinstance(error, InsufficientCredits):
        return ApiProblem(409, "insufficient_credits", error.messages[0], available=error.available)
    if isinstance(error, CreditLimitExceeded):
        return ApiProblem(
            409, "credit_limit_exceeded", error.messages[0], remaining=error.remaining
        )
    if isinstance(error, IdempotencyConflict):
        return idempotency.conflict()
    if hasattr(error, "error_dict"):
        errors = {field: list(messages) for field, messages in error.message_dict.items()}
    else:
        codes = [STATE_CONFLICTS[e.code] for e in error.error_list if e.code in STATE_CONFLICTS]
        if codes:
            return ApiProblem(409, codes[0], " ".join(error.messages))
        errors = {"body": list(error.messages)}
    detail = " ".join(message for messages in errors.values() for message in messages)
    return ApiProblem(422, "invalid_values", detail, errors=errors)


# --- Responses --------------------------------------------------------------------------


def _json(status: int, body: dict, schema: type[BaseModel]) -> HttpResponse:
    """`body` checked against its schema and rendered as the schema renders it."""
    return HttpResponse(
        schema.model_validate(body).model_dump_json(),
        status=status,
        content_type="application/json",
    )


def errors_for(*statuses: int) -> dict:
    return {status: schemas.Problem for status in statuses}


READ_ERRORS = (401, 422, 429)
WRITE_ERRORS = (400, 401, 403, 404, 409, 415, 422, 429)

# --- Keys -------------------------------------------------------------------------------


@api.get(
    "/ping",
    response={200: schemas.Ping, **errors_for(401, 429)},
    summary="Check a key: its name and scope",
    description="The smallest authenticated answer (the key's lookup and rate limit, "
    "nothing else): for a client's health check, and the baseline of the API benchmark.",
    tags=["keys"],
)
def ping(request):
    return _json(200, {"api_key": request.auth.name, "scope": request.auth.scope}, schemas.Ping)


# --- Customers --------------------------------------------------------------------------


@api.get(
    "/customers",
    response={200: schemas.CustomerList, **errors_for(*READ_ERRORS)},
    summary="List customers with their balances",
    tags=["customers"],
)
def list_customers(request, filters: Query[schemas.CustomerFilters]):
    return _json(200, selectors.list_customers(**filters.model_dump()), schemas.CustomerList)


@api.get(
    "/customers/{customer_id}",
    response={200: schemas.Customer, **errors_for(404, *READ_ERRORS)},
    summary="A customer's balance, available and held credits, and expirations",
    tags=["customers"],
)
def get_customer(request, customer_id: str):
    customer = selectors.get_customer(customer_id)
    return _json(200, selectors.customer_detail(customer), schemas.Customer)


@api.get(
    "/customers/{customer_id}/transactions",
    response={200: schemas.TransactionList, **errors_for(404, *READ_ERRORS)},
    summary="A customer's transactions, newest first",
    tags=["transactions"],
)
def list_transactions(request, customer_id: str, filters: Query[schemas.TransactionFilters]):
    customer = selectors.get_customer(customer_id)
    page = selectors.list_transactions(customer, filters=filters)
    return _json(200, page, schemas.TransactionList)


@api.get(
    "/transactions/{transaction_id}",
    response={200: schemas.Transaction, **errors_for(404, *READ_ERRORS)},
    summary="One transaction, with the lots it used",
    tags=["transactions"],
)
def get_transaction(request, transaction_id: str):
    row = selectors.get_transaction(transaction_id)
    return _json(200, selectors.transaction_detail(row), schemas.Transaction)


# --- Writes -----------------------------------------------------------------------------


def _shown(request, row, customer=None) -> dict:
    """The row a service wrote, noted as the key's (in the transaction that wrote it),
    as GET /transactions/{id} shows it: built from the row the service answered (and
    `customer`, whose account it is), with only its lots read. Reading it back with all
    its relations was half of a charge's time (bench/api.py)."""
    if customer is not None:
        row.account = customer.credit_account
    ApiKeyChange.objects.create(transaction=row, api_key=request.auth)  # caches api_change
    return selectors.transaction_detail(selectors.with_lots(row))


def _recorded(request, row, customer=None) -> HttpResponse:
    return _json(201, _shown(request, row, customer), schemas.Transaction)


def _write(request, payload: BaseModel | None, change) -> HttpResponse:
    """Run `change()` (which writes and returns the response) once per Idempotency-Key;
    the ledger's refusals become problems (and roll back what `change` wrote)."""

    def work():
        try:
            with transaction.atomic():
                return change()
        except DjangoValidationError as refused:
            raise ledger_problem(refused)

    body = payload.model_dump(mode="json") if payload is not None else {}
    return idempotency.run_once(request, request.auth, body, work)


WRITE_OPERATION = {"openapi_extra": {"parameters": [idempotency.OPENAPI_PARAMETER]}}


@api.post(
    "/customers/{customer_id}/credits",
    auth=WRITE,
    response={201: schemas.Transaction, **errors_for(*WRITE_ERRORS)},
    summary="Add credits (a new lot)",
    tags=["transactions"],
    **WRITE_OPERATION,
)
def add_credits(request, customer_id: str, payload: schemas.AddCredits):
    def change():
        customer = selectors.get_customer(customer_id)
        row = ledger.grant_credits(
            customer,
            payload.amount,
            kind=payload.type,
            expires_on=payload.expires_on,
            memo=payload.memo,
        )
        return _recorded(request, row, customer)

    return _write(request, payload, change)


@api.post(
    "/customers/{customer_id}/charges",
    auth=WRITE,
    response={201: schemas.Transaction, **errors_for(*WRITE_ERRORS)},
    summary="Spend credits, earliest-expiring first (409 when too few are available, or "
    "beyond a member's monthly limit)",
    tags=["transactions"],
    **WRITE_OPERATION,
)
def charge(request, customer_id: str, payload: schemas.Charge):
    def change():
        customer = selectors.get_customer(customer_id)
        member = None
        if payload.on_behalf_of is not None:
            # The service refuses anyone but a member of the company `customer`.
            member = selectors.get_customer(payload.on_behalf_of, field="on_behalf_of")
        row = ledger.charge_credits(
            customer, payload.amount, kind=payload.type, memo=payload.memo, on_behalf_of=member
        )
        return _recorded(request, row, customer)

    return _write(request, payload, change)


@api.post(
    "/customers/{customer_id}/holds",
    auth=WRITE,
    response={201: schemas.Hold, **errors_for(*WRITE_ERRORS)},
    summary="Hold credits for a future booking until expires_at (409 when too few are available)",
    tags=["holds"],
    **WRITE_OPERATION,
)
def hold_credits(request, customer_id: str, payload: schemas.HoldCredits):
    def change():
        customer = selectors.get_customer(customer_id)
        hold = ledger.hold_credits(
            customer,
            payload.amount,
            expires_at=selectors.utc(payload.expires_at, "expires_at"),
            memo=payload.memo,
        )
        ApiKeyHold.objects.create(hold=hold, api_key=request.auth)
        return _json(201, selectors.hold_detail(hold), schemas.Hold)

    return _write(request, payload, change)


@api.post(
    "/holds/{hold_id}/capture",
    auth=WRITE,
    response={201: schemas.Transaction, **errors_for(*WRITE_ERRORS)},
    summary="Charge a hold's credits as a booking (all, or part and the rest freed)",
    tags=["holds"],
    **WRITE_OPERATION,
)
def capture_hold(request, hold_id: str, payload: Body[schemas.CaptureHold] = None):
    if payload is None:  # no body: every field's default
        payload = schemas.CaptureHold()

    def change():
        hold = selectors.get_hold(hold_id)
        row = ledger.capture_hold(hold, payload.amount, memo=payload.memo)
        return _recorded(request, row)

    return _write(request, payload, change)


@api.post(
    "/holds/{hold_id}/release",
    auth=WRITE,
    response={200: schemas.Hold, **errors_for(*WRITE_ERRORS)},
    summary="Free a hold's credits (a hold released or expired already is answered as it "
    "is; a captured one is a 409)",
    tags=["holds"],
    **WRITE_OPERATION,
)
def release_hold(request, hold_id: str):
    def change():
        hold = ledger.release_hold(selectors.get_hold(hold_id))
        return _json(200, selectors.hold_detail(hold), schemas.Hold)

    return _write(request, None, change)


@api.post(
    "/transactions/{transaction_id}/refund",
    auth=WRITE,
    response={201: schemas.Transaction, **errors_for(*WRITE_ERRORS)},
    summary="Refund a booking, wholly or in part, to the lots it took the credits from",
    tags=["transactions"],
    **WRITE_OPERATION,
)
def refund(request, transaction_id: str, payload: Body[schemas.Refund] = None):
    if payload is None:  # no body: every field's default
        payload = schemas.Refund()

    def change():
        charge = selectors.get_transaction(transaction_id)
        row = ledger.refund_charge(charge, payload.amount, memo=payload.memo)
        return _recorded(request, row)

    return _write(request, payload, change)


@api.post(
    "/transactions/{transaction_id}/reverse",
    auth=WRITE,
    response={201: schemas.Transaction, **errors_for(*WRITE_ERRORS)},
    summary="Reverse an admin's addition or deduction (a mistake), once",
    tags=["transactions"],
    **WRITE_OPERATION,
)
def reverse(request, transaction_id: str, payload: Body[schemas.Reverse] = None):
    if payload is None:  # no body: every field's default
        payload = schemas.Reverse()

    def change():
        row = ledger.reverse_transaction(
            selectors.get_transaction(transaction_id), memo=payload.memo
        )
        return _recorded(request, row)

    return _write(request, payload, change)


@api.post(
    "/customers/{customer_id}/transfers",
    auth=WRITE,
    response={201: schemas.Transfer, **errors_for(*WRITE_ERRORS)},
    summary="Move credits between a company and one of its members, either way, keeping "
    "their expiration dates (409 when too few are available)",
    tags=["transactions"],
    **WRITE_OPERATION,
)
def transfer(request, customer_id: str, payload: schemas.TransferCredits):
    def change():
        source = selectors.get_customer(customer_id)
        target = selectors.get_customer(payload.to, field="to")
        # Whom the staff's Transfer dialog offers: a user's companies, a company's members.
        if target not in customer_selectors.transfer_partners(source):
            raise DjangoValidationError(
                {"to": "Credits move only between a company and one of its members."}
            )
        out_row, in_row = ledger.transfer_credits(source, target, payload.amount, memo=payload.memo)
        body = {
            "transfer_out": _shown(request, out_row, source),
            "transfer_in": _shown(request, in_row, target),
        }
        return _json(201, body, schemas.Transfer)

    return _write(request, payload, change)


def _schema_with_problems(original):
    """The generated schema, with every error response described as problem+json."""

    def schema(*args, **kwargs):
        document = original(*args, **kwargs)
        for path in document.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    if int(status) >= 400:
                        content = response.get("content", {})
                        if "application/json" in content:
                            content[CONTENT_TYPE] = content.pop("application/json")
                    if int(status) == 429:
                        response["headers"] = {
                            "Retry-After": {
                                "description": "Seconds to wait.",
                                "schema": {"type": "integer"},
                            }
                        }
        return document

    return schema


api.get_openapi_schema = _schema_with_problems(api.get_openapi_schema)
