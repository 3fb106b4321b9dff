from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse

from credits import charts, policies
from credits import selectors as credit_selectors
from spacecredits.htmx import render_page_or_part
from spacecredits.params import get_page

from . import selectors
from .decorators import staff_required
from .forms import LoginForm
from .models import User, url_kind

CUSTOMERS_PER_PAGE = 25
RECENT_TRANSACTIONS = 5


login = auth_views.LoginView.as_view(
    template_name="customers/login.html",
    authentication_form=LoginForm,
    redirect_authenticated_user=True,
)


@login_required
def home(request):
    if policies.can_manage_customers(request.user):
        return redirect("customers:list")
    if not request.user.is_staff:
        return redirect("member:membership")
    return render(request, "home.html")


@staff_required
def customer_list(request):
    tab = "companies" if request.GET.get("tab") == "companies" else "users"
    query = request.GET.get("q", "").strip()[: selectors.MAX_QUERY_LENGTH]
    rows = (
        selectors.search_companies(query) if tab == "companies" else selectors.search_users(query)
    )
    page, page_error = get_page(Paginator(rows, CUSTOMERS_PER_PAGE), request.GET.get("page"))
    context = {
        "tab": tab,
        "q": query,
        "page": page,
        "page_error": page_error,
        "can_adjust": policies.can_adjust_balance(request.user),
    }
    return render_page_or_part(
        request, "customers/customer_list.html", context, partials={"customer-results"}
    )


def _credit_balance_context(customer) -> dict:
    breakdown = credit_selectors.get_expiration_breakdown(customer)
    balance = sum((amount for _, amount in breakdown), credit_selectors.ZERO)
    history = credit_selectors.get_balance_history(customer, balance_now=balance)
    holds = list(credit_selectors.get_active_holds(customer))
    held = sum((hold.amount for hold in holds), credit_selectors.ZERO)
    return {
        "balance": balance,
        "breakdown": breakdown,
        "chart": charts.balance_chart(history),
        "holds": holds,
        "held": held,
        "available": balance - held,
    }


def _staff_transactions_url(customer) -> str:
    return reverse("credits:transactions", args=[url_kind(customer), customer.pk])


def _recent_transactions_context(customer) -> dict:
    recent = credit_selectors.get_transaction_page(
        credit_selectors.get_transactions(customer), size=RECENT_TRANSACTIONS
    )
    credit_selectors.add_history_details(recent.rows, list_url_of=_staff_transactions_url)
    return {"recent": recent, "reversible": credit_selectors.get_reversible_ids(recent.rows)}


# A company profile lists this many members (managers first) unless asked for all.
MEMBERS_SHOWN = 12


def _relations_context(customer, *, all_members: bool) -> dict:
    """A user's companies; a company's members, managers first, the first MEMBERS_SHOWN
    of them unless `all_members` (a company may have hundreds)."""
    if isinstance(customer, User):
        return {
            "memberships": customer.memberships.select_related("company").order_by("company__name")
        }
    members = customer.memberships.select_related("user").order_by(
        "role",
        "user__first_name",
        "user__last_name",
        "user__email",  # "manager" < "member"
    )
    if all_members:
        return {"memberships": list(members)}
    shown = list(members[: MEMBERS_SHOWN + 1])
    if len(shown) <= MEMBERS_SHOWN:
        return {"memberships": shown}
    return {"memberships": shown[:MEMBERS_SHOWN], "member_count": members.count()}


# What each part of the profile needs: an htmx refresh of one part computes only that part.
PROFILE_PARTS = {
    "credit-balance": _credit_balance_context,
    "recent-transactions": _recent_transactions_context,
}


@staff_required
def profile(request, owner: str, pk: int):
    customer = selectors.get_customer(owner, pk)
    is_user = isinstance(customer, User)
    context = {
        "customer": customer,
        "owner": owner,
        "is_user": is_user,
        "can_adjust": policies.can_adjust_balance(request.user),
    }
    target = request.htmx.target if request.htmx else None
    if target not in PROFILE_PARTS:  # the whole page: its relations card too
        context.update(
            _relations_context(customer, all_members=request.GET.get("members") == "all")
        )
    for part, part_context in PROFILE_PARTS.items():
        if target not in PROFILE_PARTS or target == part:
            context.update(part_context(customer))
    return render_page_or_part(
        request, "customers/profile.html", context, partials=set(PROFILE_PARTS)
    )
