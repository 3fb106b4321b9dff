"""The staff side of the ledger: the "Adjust balance" form and a customer's transactions.

Thin views: the form checks shape, `policies` decide who may, the services and selectors do
the work. The transactions page renders `credits/_transaction_table.html`, the table the
member pages share.
"""

import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from customers import selectors as customer_selectors
from customers.decorators import staff_required
from customers.models import Company, User, url_kind
from spacecredits.formats import format_credits
from spacecredits.htmx import render_page_or_part

from . import listing, notices, policies, selectors, services
from .forms import (
    AdjustBalanceForm,
    GrantToManyForm,
    ReverseForm,
    TransferForm,
    add_service_errors,
)
from .models import CreditBatch, CreditTransaction
from .notices import lots_words


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
    balances = selectors.get_balances(customer)
    context = {
        "customer": customer,
        "owner": owner,
        "form": form,
        "balance": balances.balance,
        "balance_after": form.balance_after(balances.balance),
        "breakdown": balances.breakdown,
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
            list_url_of=lambda other: reverse(
                "credits:transactions", args=[url_kind(other), other.pk]
            ),
        ),
    }
    if context["can_adjust"]:
        context["reversible"] = selectors.get_reversible_ids(context["page"].rows)
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


def _changed(request, customer, message: str):
    """After a change from a dialog: a page load without JavaScript; with htmx the dialog
    closes, a toast confirms and the parts showing credits refresh (creditsChanged)."""
    if not request.htmx:
        messages.success(request, message)
        return redirect(customer)
    response = HttpResponse(status=204)
    trigger_client_event(response, "showToast", {"message": message})
    trigger_client_event(response, "creditsChanged", {})
    trigger_client_event(response, "closeDialog", {})
    return response


def reversal_words(row) -> str:
    """What reversing `row` will do, said before it is done: "Takes back the 25 credits
    that remain of this addition" / "Returns 6 credits: 5 to credits expiring 4 Dec 2026,
    1 to credits that never expire"."""
    amount = services.reversal_amount(row)
    if amount is None:
        return ""
    if amount < 0:
        remain = "remains" if -amount == 1 else "remain"
        return f"Takes back the {format_credits(amount)} that {remain} of this addition."
    today = timezone.localdate(timezone.now())
    parts = []
    for usage in row.usages.select_related("lot").order_by("lot__expires_on", "lot_id"):
        expires_on = usage.lot.expires_on
        if expires_on and expires_on < today:
            grace = services._grace_days()
            expires_on = today + dt.timedelta(days=grace)
        parts.append((usage.amount, expires_on))
    parts = selectors._lot_parts(parts)
    return f"Returns {format_credits(amount)}: {lots_words(parts, 'to')}."


@staff_required
@require_http_methods(["GET", "POST"])
def reverse_transaction(request, owner: str, pk: int, transaction_id: int):
    """GET: the confirm dialog (a page without JavaScript) saying what the reversal will
    do. POST: reverse the row once per form (its one-time key)."""
    if not policies.can_adjust_balance(request.user):
        raise PermissionDenied
    customer = customer_selectors.get_customer(owner, pk)
    row = get_object_or_404(
        CreditTransaction, pk=transaction_id, account_id=customer.credit_account.pk
    )
    if services.reversal_amount(row) is None and request.method == "GET":
        raise Http404("This transaction cannot be reversed.")
    status = 200
    if request.method == "POST":
        form = ReverseForm(request.POST)
        if form.is_valid():
            try:
                reversal = services.reverse_transaction(
                    row,
                    memo=form.cleaned_data["memo"],
                    actor=request.user,
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                verb = "Took back" if reversal.amount < 0 else "Returned"
                return _changed(
                    request,
                    customer,
                    f"Reversed: {verb.lower()} {format_credits(reversal.amount)}.",
                )
        status = 422
    else:
        form = ReverseForm.blank()
    context = {
        "customer": customer,
        "owner": owner,
        "row": row,
        "form": form,
        "what_happens": reversal_words(row),
    }
    return render_page_or_part(
        request, "credits/reverse.html", context, partials={"adjust-dialog-body"}, status=status
    )


@staff_required
@require_http_methods(["GET", "POST"])
def transfer_credits(request, owner: str, pk: int):
    """ "Transfer credits" between this customer and one of its companies (a user) or
    members (a company), either way."""
    if not policies.can_adjust_balance(request.user):
        raise PermissionDenied
    customer = customer_selectors.get_customer(owner, pk)
    others = customer_selectors.transfer_partners(customer)
    status = 200
    if request.method == "POST":
        form = TransferForm(request.POST, others=others)
        if form.is_valid():
            source, target = form.parties(customer)
            try:
                services.transfer_credits(
                    source,
                    target,
                    form.cleaned_data["amount"],
                    memo=form.cleaned_data["memo"],
                    actor=request.user,
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                amount = format_credits(form.cleaned_data["amount"])
                return _changed(
                    request,
                    customer,
                    f"Transferred {amount} from {source.display_name} to {target.display_name}.",
                )
        status = 422
    else:
        form = TransferForm.blank(initial={"direction": "out"}, others=others)
    balances = selectors.get_balances(customer)
    context = {
        "customer": customer,
        "owner": owner,
        "form": form,
        "balance": balances.balance,
        "available": balances.available,
    }
    return render_page_or_part(
        request, "credits/transfer.html", context, partials={"adjust-dialog-body"}, status=status
    )


def _grant_recipients(form: GrantToManyForm) -> list:
    """The customers a grant goes to: the company's members, then the emails' users (in
    the order written); unknown emails are the form's error."""
    people = []
    if form.cleaned_data.get("company"):
        people += customer_selectors.transfer_partners(
            Company.objects.get(pk=form.cleaned_data["company"])
        )
    emails = form.cleaned_data["email_list"]
    if emails:
        found = {user.email.lower(): user for user in User.objects.filter(email__in=emails)}
        unknown = [email for email in emails if email not in found]
        if unknown:
            form.add_error("emails", f"No user has these emails: {', '.join(unknown)}.")
            return []
        people += [found[email] for email in emails]
    return list({person.pk: person for person in people}.values())


@staff_required
@require_http_methods(["GET", "POST"])
def grant_to_many(request):
    """ "Grant to many": the form; its first POST shows who gets what (the count and the
    total) before the second, confirmed one records the batch, which a worker then runs."""
    if not policies.can_adjust_balance(request.user):
        raise PermissionDenied
    companies = Company.objects.order_by("name", "pk")
    status, recipients = 200, []
    if request.method == "POST":
        form = GrantToManyForm(request.POST, companies=companies)
        if form.is_valid():
            recipients = _grant_recipients(form)
        if form.is_valid() and recipients:
            if form.is_confirmed():
                try:
                    batch = services.grant_to_many(
                        recipients,
                        form.cleaned_data["amount"],
                        expires_on=form.cleaned_data["expires_on"],
                        memo=form.cleaned_data["memo"],
                        actor=request.user,
                        idempotency_key=form.cleaned_data["idempotency_key"],
                    )
                except ValidationError as error:
                    add_service_errors(form, error)
                    status = 422
                else:
                    return redirect("credits:batch", pk=batch.pk)
            else:
                form.data = form.data.copy()
                form.data["confirmed"] = form.reviewed_digest()
        else:
            status = 422
    else:
        form = GrantToManyForm.blank(companies=companies)
    amount = form.cleaned_data.get("amount") if hasattr(form, "cleaned_data") else None
    context = {
        "form": form,
        "recipients": recipients if status == 200 else [],
        "total": (amount or 0) * len(recipients),
    }
    return render(request, "credits/grant_to_many.html", context, status=status)


@staff_required
def batch(request, pk: int):
    """A grant's progress (htmx polls the progress part while it runs) and its result."""
    batch = get_object_or_404(CreditBatch.objects.select_related("actor"), pk=pk)
    rows = list(
        batch.transactions.select_related("account__user", "account__company").order_by("pk")
    )
    context = {
        "batch": batch,
        "rows": rows,
        "done": len(rows),
        "percent": round(100 * len(rows) / batch.total) if batch.total else 100,
        "running": batch.is_running,
    }
    return render_page_or_part(request, "credits/batch.html", context, partials={"batch-progress"})
