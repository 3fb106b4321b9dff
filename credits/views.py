"""The staff side of the ledger: the "Adjust balance" form and a customer's transactions.

Thin views: the form checks shape, `policies` decide who may, the services and selectors do
the work. The transactions page renders `credits/_transaction_table.html`, the table the
member pages share.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from customers import selectors as customer_selectors
from customers.decorators import staff_required
from spacecredits.formats import format_credits
from spacecredits.htmx import render_page_or_part

from . import listing, notices, policies, selectors, services
from .forms import AdjustBalanceForm, add_service_errors


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
    balance = selectors.get_balance(customer)
    context = {
        "customer": customer,
        "owner": owner,
        "form": form,
        "balance": balance,
        "balance_after": form.balance_after(balance),
        "breakdown": selectors.get_expiration_breakdown(customer),
        "nobody_told": notices.nobody_told(customer),
    }
    return render_page_or_part(
        request,
        "credits/adjust_balance.html",
        context,
        partials={"adjust-dialog-body"},
        status=status,
    )


def _adjusted(request, customer, recorded):
    amount = format_credits(recorded.amount)
    if recorded.amount > 0:
        message = f"Added {amount} to {customer.display_name}'s balance."
    else:
        message = f"Deducted {amount} from {customer.display_name}'s balance."
    if not request.htmx:
        messages.success(request, message)
        return redirect(customer)
    # The dialog closes; the Credit balance section and open transaction lists refresh
    # themselves on creditsChanged.
    response = HttpResponse(status=204)
    trigger_client_event(response, "showToast", {"message": message})
    # The new row is highlighted where a list shows it (static/js/app.js).
    trigger_client_event(response, "creditsChanged", {"transaction": recorded.pk})
    trigger_client_event(response, "closeDialog", {})
    return response


@staff_required
def transactions(request, owner: str, pk: int):
    customer = customer_selectors.get_customer(owner, pk)
    context = {
        "customer": customer,
        "owner": owner,
        "target": "transaction-list",
        "balance": selectors.get_balance(customer),
        "can_adjust": policies.can_adjust_balance(request.user),
        **listing.transaction_list_context(
            request,
            customer,
            list_url=request.path,
            csv_url=reverse("credits:transactions_csv", args=[owner, customer.pk]),
            show_actor=True,
        ),
    }
    return render_page_or_part(
        request, "credits/transactions.html", context, partials={"transaction-list"}
    )


@staff_required
def transactions_csv(request, owner: str, pk: int):
    customer = customer_selectors.get_customer(owner, pk)
    today = timezone.localdate(timezone.now())
    name = slugify(customer.display_name) or owner
    return listing.transactions_csv(
        request, customer, filename=f"{name}-transactions-{today:%Y-%m-%d}.csv", show_actor=True
    )
