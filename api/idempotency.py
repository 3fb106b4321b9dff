"""Idempotency-Key for every POST (SPEC.md, "The public API"; docs/api.md says why so).

The request's record is inserted first, in the database transaction that makes the change
and stores the response. PostgreSQL makes a second INSERT of the same (API key, key) wait
on the unique index until the first transaction ends: if it committed, the second finds
its response and replays it (or, for another body, answers 409); if it rolled back, the
second runs itself. So one key records one change, however many requests carry it at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import OperationalError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone

from .models import ApiKey, IdempotencyRecord
from .problems import ApiProblem

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# How long a request waits for another one with the same key to finish.
WAIT_FOR_OTHER = "10s"

# The refusals that are an outcome of the change, stored and replayed like a success.
STORED_REFUSALS = {409}

OPENAPI_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": True,
    "description": "A unique string per change, e.g. a UUID. The same key with the same "
    "body returns the first response (with `Idempotent-Replayed: true`); with another body "
    "it is a 409. Kept for at least 24 hours.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}


def header_key(request) -> str:
    """The request's Idempotency-Key, or a 400."""
    key = request.headers.get(HEADER)
    if key is None:
        raise ApiProblem(400, "idempotency_key_missing", f"Send an {HEADER} header with a POST.")
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiProblem(
            400,
            "idempotency_key_invalid",
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable characters.",
        )
    return key


def fingerprint(request, body: dict) -> str:
    canonical = json.dumps(
        [request.method, request.path, body], sort_keys=True, default=str, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        record.body, status=record.status_code, content_type=record.content_type
    )
    response["Idempotent-Replayed"] = "true"
    return response


def conflict() -> ApiProblem:
    return ApiProblem(
        409,
        "idempotency_conflict",
        f"This {HEADER} was already used with another request; use a new key for a new change.",
    )


def run_once(
    request, api_key: ApiKey, body: dict, work: Callable[[], HttpResponse]
) -> HttpResponse:
    """`work()` (which writes and returns the response) once per Idempotency-Key.

    A success, or the ledger's refusal of the change itself (409, insufficient credits),
    is stored and replayed, as Stripe does; a request refused for its input (401, 403,
    429, invalid JSON or values, an unknown id) stores nothing, so the key stays free for
    the corrected request.
    """
    key = header_key(request)
    print_ = fingerprint(request, body)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{WAIT_FOR_OTHER}'")
                cursor.execute(
                    "INSERT INTO api_idempotencyrecord"
                    " (api_key_id, key, fingerprint, content_type, body, created_at)"
                    " VALUES (%s, %s, %s, '', '', %s)"
                    " ON CONFLICT (api_key_id, key) DO NOTHING RETURNING id",
                    [api_key.pk, key, print_, timezone.now()],
                )
                inserted = cursor.fetchone()
            if inserted is None:
                earlier = IdempotencyRecord.objects.get(api_key=api_key, key=key)
                if earlier.fingerprint != print_:
                    raise conflict()
                return replay(earlier)
            try:
                response = work()
            except ApiProblem as refused:
                if refused.status not in STORED_REFUSALS:
                    raise  # the record goes with the rolled-back transaction
                response = refused.response()
            IdempotencyRecord.objects.filter(pk=inserted[0]).update(
                status_code=response.status_code,
                content_type=response["Content-Type"],
                body=response.content.decode(),
            )
            return response
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) == "55P03":  # lock_not_available
            raise ApiProblem(
                409,
                "idempotency_in_progress",
                f"A request with this {HEADER} is still running; retry in a moment.",
                headers={"Retry-After": "1"},
            )
        raise
