"""The staff side of the ledger: the "Adjust balance" form and a customer's transactions.

Thin views: the form checks shape, `policies` decide who may, the services and selectors do
the work. The transactions page renders `credits/_transaction_table.html`, the table the
member pages share.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from customers import selectors as customer_selectors
from customers.decorators import staff_required

from . import policies, selectors, services
from .exports import stream_csv
from .forms import AdjustBalanceForm, TransactionFilterForm, add_service_errors


def _partial(request, template: str, partials: set[str]) -> str:
    target = request.htmx.target if request.htmx else None
    return f"{template}#{target}" if target in partials else template


@staff_required
@require_http_methods(["GET", "POST"])
def adjust_balance(request, owner: str, pk: int):
    """GET: the form (a dialog's content for htmx, a page without JavaScript).
    POST: record the adjustment once per form (its idempotency key)."""
    if not policies.can_adjust_balance(request.user):
        raise PermissionDenied
    customer = customer_selectors.get_customer(owner, pk)
    status = 200
    if request.method == "POST":
        form = AdjustBalanceForm(request.POST)
        if form.is_valid():
            try:
                recorded = services.adjust_balance(
                    customer, actor=request.user, **form.cleaned_data
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                return _adjusted(request, customer, recorded)
        status = 422
    else:
        form = AdjustBalanceForm.blank()
    context = {
        "customer": customer,
        "owner": owner,
        "form": form,
        "balance": selectors.get_balance(customer),
        "breakdown": selectors.get_expiration_breakdown(customer),
    }
    template = _partial(request, "credits/adjust_balance.html", {"adjust-dialog-body"})
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


def _adjusted(request, customer, recorded):
    amount = f"{abs(recorded.amount).normalize():f}"
    noun = "credit" if abs(recorded.amount) == 1 else "credits"
    if recorded.amount > 0:
        message = f"Added {amount} {noun} to {customer.display_name}'s balance."
    else:
        message = f"Deducted {amount} {noun} from {customer.display_name}'s balance."
    if not request.htmx:
        messages.success(request, message)
        return redirect(customer)
    # The dialog closes; the Credit balance section and open transaction lists refresh
    # themselves on creditsChanged.
    response = HttpResponse(status=204)
    trigger_client_event(response, "showToast", {"message": message})
    trigger_client_event(response, "creditsChanged", {})
    trigger_client_event(response, "closeDialog", {})
    return response


@staff_required
def transactions(request, owner: str, pk: int):
    customer = customer_selectors.get_customer(owner, pk)
    form = TransactionFilterForm(request.GET)
    # The valid filters apply; a bad one is shown with its message (as on the member side).
    rows = selectors.filter_transactions(customer, **form.filters())
    page = selectors.get_transaction_page(rows, **form.cursor())
    filters = request.GET.copy()
    for cursor in ("before", "after"):
        filters.pop(cursor, None)
    query = filters.urlencode()
    list_url = request.path + (f"?{query}" if query else "")
    csv_url = reverse("credits:transactions_csv", args=[owner, customer.pk])
    context = {
        "customer": customer,
        "owner": owner,
        "form": form,
        "page": page,
        "page_url": list_url,
        "csv_url": csv_url + (f"?{query}" if query else ""),
        "show_actor": True,
        "target": "transaction-list",
        "balance": selectors.get_balance(customer),
        "can_adjust": policies.can_adjust_balance(request.user),
    }
    template = _partial(request, "credits/transactions.html", {"transaction-list"})
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


@staff_required
def transactions_csv(request, owner: str, pk: int):
    """The filtered transactions, all of them, streamed (no cursor: an export is whole)."""
    customer = customer_selectors.get_customer(owner, pk)
    form = TransactionFilterForm(request.GET)
    rows = selectors.filter_transactions(customer, **form.filters())
    today = timezone.localdate(timezone.now())
    name = slugify(customer.display_name) or owner
    return stream_csv(rows, filename=f"{name}-transactions-{today:%Y-%m-%d}.csv", show_actor=True)
