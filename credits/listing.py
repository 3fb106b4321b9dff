"""One transaction list for the staff and the member pages: the same filters, the same
keyset pages, the same CSV. Only who may open it (the views ask `policies`) and whether
an admin's name shows (`show_actor`) differ."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseBadRequest, QueryDict, StreamingHttpResponse

from . import selectors
from .exports import stream_csv
from .forms import TransactionFilterForm


def _without_cursor(params: QueryDict) -> str:
    query = params.copy()
    for key in ("before", "after"):
        query.pop(key, None)
    return query.urlencode()


def transaction_list_context(
    request, customer, *, list_url: str, csv_url: str, show_actor: bool, list_url_of=None
) -> dict:
    """Context for `credits/_transaction_table.html` and its filter form: the filtered page
    the request asks for, and links that keep the filters (page links add a cursor).
    `list_url_of(customer)` links rows related to rows of another customer (None: no
    link); rows of this customer link to this list."""
    form = TransactionFilterForm(request.GET or None)
    filters = form.filters()
    rows = selectors.filter_transactions(customer, **filters)
    query = _without_cursor(request.GET)
    suffix = f"?{query}" if query else ""
    page = selectors.get_transaction_page(rows, **form.cursor())

    def link_of(other):
        if other == customer:
            return list_url
        return list_url_of(other) if list_url_of else None

    selectors.add_history_details(page.rows, list_url_of=link_of)
    return {
        "form": form,
        "page": page,
        "page_url": list_url + suffix,
        "csv_url": csv_url + suffix,
        "show_actor": show_actor,
        "is_filtered": any(filters.values()),
    }


def transactions_csv(
    request, customer, *, filename: str, show_actor: bool
) -> StreamingHttpResponse | HttpResponse:
    """Every transaction that matches the request's filters (no cursor: an export is whole).

    A bad filter answers 400 with what is wrong: a file has no place for the message the
    list shows, and exporting every row instead would look like the filtered export."""
    form = TransactionFilterForm(request.GET or None)
    if errors := form.filter_errors():
        return HttpResponseBadRequest(
            "The transactions were not exported: " + " ".join(errors) + "\n",
            content_type="text/plain; charset=utf-8",
        )
    rows = selectors.filter_transactions(customer, **form.filters())
    return stream_csv(rows, filename=filename, show_actor=show_actor)
