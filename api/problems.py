"""Every failure of the API as application/problem+json (RFC 9457), from one place.

`problem()` builds the response; `ApiProblem` is what the API's code raises; the
exception handlers (installed on the NinjaAPI in api/v1.py) and ProblemJsonMiddleware (for
what Django answers on its own under /api/: unknown paths, methods, hosts) turn every other
failure into one.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from http import HTTPStatus

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpResponse

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
API_PREFIX = "/api/"


def type_uri(code: str) -> str:
    """The problem's `type`: a URN naming it (RFC 9457 asks for a URI, not a web page)."""
    return f"urn:spacecredits:problem:{code}"


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    errors: dict[str, list[str]] | None = None,
    available: Decimal | None = None,
    remaining: Decimal | None = None,
) -> dict:
    body = {
        "type": type_uri(code),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    if available is not None:
        body["available"] = f"{available:.2f}"
    if remaining is not None:
        body["remaining"] = f"{remaining:.2f}"
    return body


def problem(status: int, code: str, detail: str, *, headers=None, **extra) -> HttpResponse:
    response = HttpResponse(
        json.dumps(problem_body(status, code, detail, **extra)),
        status=status,
        content_type=CONTENT_TYPE,
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class ApiProblem(Exception):
    """A failure the API answers with a problem document."""

    def __init__(self, status: int, code: str, detail: str, *, headers=None, **extra):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers, self.extra = headers or {}, extra

    def response(self) -> HttpResponse:
        return problem(self.status, self.code, self.detail, headers=self.headers, **self.extra)


# What Django answers on its own, by status, when a request under /api/ goes wrong before
# (or outside) the API's views.
GENERIC = {
    400: ("bad_request", "The request could not be read."),
    403: ("forbidden", "This request is not allowed."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept this method."),
    413: ("too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as application/json."),
    500: ("server_error", "Something went wrong on our side; nothing was changed."),
}


HANDLED_BY_DJANGO = (Http404, PermissionDenied, SuspiciousOperation, BadRequest)


class ProblemJsonMiddleware:
    """Under /api/, turn any error response that is not yet a problem document (Django's
    404 and 400 pages, ninja's 405) into one, and any unhandled exception into a 500 one
    (logged: it is a bug, never the client's input)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith(CONTENT_TYPE)
        ):
            status = response.status_code
            code, detail = GENERIC.get(status, ("error", HTTPStatus(status).phrase + "."))
            replaced = problem(status, code, detail)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(API_PREFIX) or isinstance(exception, HANDLED_BY_DJANGO):
            return None  # Django answers these with a 4xx, which __call__ then converts
        logger.exception("Unhandled error in %s %s", request.method, request.path)
        return problem(500, *GENERIC[500])
