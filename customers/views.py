from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers

from credits import charts, policies
from credits import selectors as credit_selectors

from . import selectors
from .decorators import staff_required
from .models import User

CUSTOMERS_PER_PAGE = 25
RECENT_TRANSACTIONS = 5


@login_required
def home(request):
    if policies.can_manage_customers(request.user):
        return redirect("customers:list")
    if not request.user.is_staff:
        return redirect("member:membership")
    return render(request, "home.html")


def _render(request, template: str, context: dict, *, partials: set[str], status: int = 200):
    """Render the page, or only the partial whose element htmx asked for (HX-Target)."""
    target = request.htmx.target if request.htmx else None
    name = f"{template}#{target}" if target in partials else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


@staff_required
def customer_list(request):
    tab = "companies" if request.GET.get("tab") == "companies" else "users"
    query = request.GET.get("q", "").strip()[: selectors.MAX_QUERY_LENGTH]
    rows = (
        selectors.search_companies(query) if tab == "companies" else selectors.search_users(query)
    )
    page = Paginator(rows, CUSTOMERS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"tab": tab, "q": query, "page": page}
    return _render(request, "customers/customer_list.html", context, partials={"customer-results"})


@staff_required
def profile(request, owner: str, pk: int):
    customer = selectors.get_customer(owner, pk)
    is_user = isinstance(customer, User)
    recent = credit_selectors.get_transaction_page(
        credit_selectors.get_transactions(customer), size=RECENT_TRANSACTIONS
    )
    context = {
        "customer": customer,
        "owner": owner,
        "is_user": is_user,
        "balance": credit_selectors.get_balance(customer),
        "breakdown": credit_selectors.get_expiration_breakdown(customer),
        "chart": charts.balance_chart(credit_selectors.get_balance_history(customer)),
        "recent": recent,
        "can_adjust": policies.can_adjust_balance(request.user),
        "memberships": (
            customer.memberships.select_related("company").order_by("company__name")
            if is_user
            else customer.memberships.select_related("user").order_by(
                "user__first_name", "user__last_name", "user__email"
            )
        ),
    }
    return _render(
        request,
        "customers/profile.html",
        context,
        partials={"credit-balance", "recent-transactions"},
    )
