"""The member side: Membership (credits and transactions) and Account pages.

Every customer named in a URL is resolved through credits.policies, which answers 404 for
anything that is not the member's to see. Staff are treated as members here.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.messages.views import SuccessMessageMixin
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.cache import patch_vary_headers
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from credits import listing, policies, selectors
from credits.forms import TransferForm, add_service_errors

from . import services
from .member_forms import CreditsVisibilityForm, PasswordChangeForm, ProfileForm

RECENT_ROWS = 5
VISIBILITY_CHANGES_SHOWN = 10  # the Members page lists the newest changes of the switch


def _credits_section(customer, *, title: str, anchor: str, transactions_url: str, **extra):
    recent = selectors.get_transaction_page(selectors.get_transactions(customer), size=RECENT_ROWS)
    visible = extra.pop("visible_urls", {})

    def list_url_of(other):
        return transactions_url if other == customer else visible.get((type(other), other.pk))

    selectors.add_history_details(recent.rows, list_url_of=list_url_of)
    balances = selectors.get_balances(customer)
    return {
        "customer": customer,
        "title": title,
        "anchor": anchor,
        "balance": balances.balance,
        "held": balances.held,
        "available": balances.available,
        "breakdown": balances.breakdown,
        "recent": recent,
        "transactions_url": transactions_url,
        **extra,
    }


@login_required
@require_GET
def membership(request):
    member = request.user
    accesses = policies.member_company_access(member)
    # Rows related to another customer the member may see link to that customer's list.
    visible_urls = {(type(member), member.pk): _transactions_url("users", member)} | {
        (type(a.company), a.company.pk): _transactions_url("companies", a.company)
        for a in accesses
        if a.can_view_credits
    }
    personal = _credits_section(
        member,
        title="Personal",
        anchor="personal",
        transactions_url=_transactions_url("users", member),
        visible_urls=visible_urls,
    )
    companies, hidden = [], []
    mine = {m.company_id: m for m in member.memberships.select_related("company")}
    for access in accesses:
        if not access.can_view_credits:
            hidden.append(access)
            continue
        companies.append(
            _credits_section(
                access.company,
                title=access.company.name,
                anchor=f"company-{access.company.pk}",
                transactions_url=_transactions_url("companies", access.company),
                access=access,
                visible_urls=visible_urls,
                membership=mine.get(access.company.pk),
                limit_left=selectors.get_monthly_limit_left(mine[access.company.pk])
                if access.company.pk in mine
                else None,
            )
        )
    return render(
        request,
        "membership/membership.html",
        {"personal": personal, "companies": companies, "hidden": hidden},
    )


def _transactions_url(owner: str, customer) -> str:
    return reverse("member:transactions", args=[owner, customer.pk])


@login_required
@require_GET
def transactions(request, owner: str, pk: int):
    customer = policies.visible_customer_or_404(request.user, owner=owner, pk=pk)
    context = {
        "customer": customer,
        "owner": owner,
        "title": "Personal" if owner == "users" else customer.name,
        **listing.transaction_list_context(
            request,
            customer,
            list_url=_transactions_url(owner, customer),
            csv_url=reverse("member:transactions-csv", args=[owner, customer.pk]),
            show_actor=False,  # members never see an admin's name: "The space"
        ),
    }
    template = "membership/transactions.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#results"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))  # the page and its fragment share a URL
    return response


@login_required
@require_GET
def transactions_csv(request, owner: str, pk: int):
    customer = policies.visible_customer_or_404(request.user, owner=owner, pk=pk)
    name = "personal" if owner == "users" else slugify(customer.name) or "company"
    return listing.transactions_csv(
        request, customer, filename=f"credits-{name}.csv", show_actor=False
    )


@login_required
@require_GET
def company_members(request, pk: int):
    company = policies.managed_company_or_404(request.user, pk)
    return render(request, "membership/company_members.html", members_context(company))


def members_context(company) -> dict:
    """The Members page: who belongs, credits visibility, each member's monthly limit and
    what is left of it, and the form that moves credits between company and member."""
    memberships = list(
        company.memberships.select_related("user", "company").order_by(
            "role", "user__first_name", "user__last_name", "user__email"
        )
    )
    for membership in memberships:
        membership.limit_left = selectors.get_monthly_limit_left(membership)
    members = sorted((m.user for m in memberships), key=lambda u: u.display_name.lower())
    return {
        "company": company,
        "memberships": memberships,
        "form": CreditsVisibilityForm(
            initial={"members_can_use_credits": company.members_can_use_credits}
        ),
        "visibility_changes": company.credits_visibility_changes.select_related("changed_by")[
            :VISIBILITY_CHANGES_SHOWN
        ],
        "transfer_form": TransferForm.blank(
            initial={"direction": "out"}, others=members, by="manager"
        ),
        "available": selectors.get_available_balance(company),
    }


@login_required
@require_POST
def company_credits_visibility(request, pk: int):
    company = policies.managed_company_or_404(request.user, pk)
    form = CreditsVisibilityForm(request.POST)
    form.is_valid()  # a checkbox: absent means off, so it is always valid
    enabled = form.cleaned_data.get("members_can_use_credits", False)
    services.set_members_can_use_credits(company, enabled, by=request.user)
    message = (
        f"Members of {company.name} can now see and use company credits."
        if enabled
        else f"Only managers of {company.name} can now see company credits."
    )
    if request.htmx:
        context = members_context(company)
        response = render(request, "membership/company_members.html#visibility", context)
        return trigger_client_event(response, "showToast", {"message": message})
    messages.success(request, message)
    return redirect("member:company-members", pk=company.pk)


@login_required
@require_http_methods(["GET", "POST"])
def account(request):
    member = request.user
    form = ProfileForm(request.POST or None, user=member, request=request)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_profile(
                member,
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
                email=form.cleaned_data["email"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Your profile was saved.")
            return redirect("member:account")
    status = 422 if form.is_bound and form.errors else 200
    return render(request, "account/account.html", {"form": form}, status=status)


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    """Django's password change; the member stays logged in on this device."""

    form_class = PasswordChangeForm
    template_name = "account/password_change.html"
    success_url = reverse_lazy("member:account")
    success_message = "Your password was changed."

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}
