"""The member side's changes of credits: a company manager moves credits between the
company and one of its members, and sets each member's monthly limit, on the company's
Members page (customers/member_views.py renders it). Only the company's managers; anyone
else gets the 404 of managed_company_or_404."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from customers import services as customer_services
from customers.member_views import members_context
from customers.models import CompanyMembership
from spacecredits.formats import format_credits

from . import policies, services
from .forms import MonthlyLimitForm, TransferForm, add_service_errors


def members_of(company) -> list:
    return [
        membership.user
        for membership in company.memberships.select_related("user").order_by(
            "user__first_name", "user__last_name", "user__email"
        )
    ]


@login_required
@require_POST
def company_transfer(request, pk: int):
    company = policies.managed_company_or_404(request.user, pk)
    form = TransferForm(request.POST, others=members_of(company), by="manager")
    if form.is_valid():
        source, target = form.parties(company)
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
            messages.success(
                request,
                f"Transferred {amount} from {source.display_name} to {target.display_name}.",
            )
            return redirect("member:company-members", pk=company.pk)
    return render(
        request,
        "membership/company_members.html",
        {**members_context(company), "transfer_form": form},
        status=422,
    )


@login_required
@require_POST
def company_member_limit(request, pk: int, user_id: int):
    company = policies.managed_company_or_404(request.user, pk)
    membership = get_object_or_404(CompanyMembership, company=company, user_id=user_id)
    form = MonthlyLimitForm(request.POST)
    if form.is_valid():
        limit = form.cleaned_data["monthly_credit_limit"]
        try:
            customer_services.set_monthly_credit_limit(membership, limit, by=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            said = "no limit" if limit is None else f"a limit of {format_credits(limit)} a month"
            messages.success(request, f"{membership.user.display_name} now has {said}.")
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("member:company-members", pk=company.pk)
