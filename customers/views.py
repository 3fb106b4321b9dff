from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from credits import charts, policies
from credits import exports as credit_exports
from credits import selectors as credit_selectors
from spacecredits.htmx import render_page_or_part
from spacecredits.params import get_page

from . import selectors, services
from .auth import count_reset_request
from .decorators import staff_required
from .forms import AnonymiseForm, LoginForm, PasswordResetForm
from .models import CompanyMembership, User, url_kind

CUSTOMERS_PER_PAGE = 25
RECENT_TRANSACTIONS = 5


class LoginView(auth_views.LoginView):
    template_name = "customers/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        # With DEBUG on (make demo), the page says where the demo logins are.
        return {**super().get_context_data(**kwargs), "demo_hint": settings.DEBUG}


login = LoginView.as_view()


class PasswordResetView(auth_views.PasswordResetView):
    """Django's "email me a reset link", throttled by the login lockout: each request
    counts for its address as a wrong password does (customers.auth.count_reset_request).
    The answer is the same page whether or not an account has the address."""

    form_class = PasswordResetForm
    template_name = "account/password_reset_form.html"
    email_template_name = "account/password_reset_email.txt"
    subject_template_name = "account/password_reset_subject.txt"
    success_url = reverse_lazy("password-reset-sent")

    def form_valid(self, form):
        if count_reset_request(self.request, form.cleaned_data["email"].strip().lower()):
            return HttpResponse(status=429)  # AxesMiddleware puts its lockout page here
        # The link in the email points at SITE_URL, not at whatever Host the request named.
        site = urlsplit(settings.SITE_URL)
        self.extra_email_context = {
            "protocol": site.scheme,
            "domain": site.netloc,
            "timeout_days": RESET_DAYS,
        }
        return super().form_valid(form)


# How long a reset link works (Django's PASSWORD_RESET_TIMEOUT, 3 days by default).
RESET_DAYS = max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)
password_reset = PasswordResetView.as_view()
password_reset_sent = auth_views.PasswordResetDoneView.as_view(
    template_name="account/password_reset_sent.html", extra_context={"timeout_days": RESET_DAYS}
)
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="account/password_reset_confirm.html",
    success_url=reverse_lazy("password-reset-complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="account/password_reset_complete.html"
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
    # An unknown sort or filter (an old or edited link) shows the default one.
    sort = request.GET.get("sort", "name")
    sort = sort if sort in selectors.SORTS else "name"
    accounts = request.GET.get("accounts", "all")
    accounts = accounts if accounts in selectors.ACCOUNT_FILTERS and tab == "users" else "all"
    if tab == "companies":
        rows = selectors.search_companies(query, sort=sort)
    else:
        rows = selectors.search_users(query, sort=sort, accounts=accounts)
    page, page_error = get_page(Paginator(rows, CUSTOMERS_PER_PAGE), request.GET.get("page"))
    # The list's own state, for the links that keep it (pages, tabs, sort headers).
    state = {"tab": tab, "q": query, "sort": sort, "accounts": accounts}
    defaults = {"tab": "users", "q": "", "sort": "name", "accounts": "all"}

    def link(**changes):
        kept = {k: v for k, v in (state | changes).items() if v != defaults[k]}
        return "?" + urlencode(kept) if kept else "?"

    count = page.paginator.count
    noun = ("company" if count == 1 else "companies") if tab == "companies" else "user"
    context = {
        **state,
        "page": page,
        "page_error": page_error,
        "result_count": f"{count:,} {noun}{'s' if tab == 'users' and count != 1 else ''}",
        "account_filters": ACCOUNT_FILTER_LABELS,
        "sort_choices": SORT_LABELS,
        "accounts_label": ACCOUNT_FILTER_LABELS[accounts].lower(),
        "sort_links": {
            "name": link(sort="-name" if sort == "name" else "name"),
            "balance": link(sort="-balance" if sort == "balance" else "balance"),
        },
        "tab_links": {
            "users": link(tab="users"),
            "companies": link(tab="companies", accounts="all"),
        },
        "page_link_base": link(),
        "can_adjust": policies.can_adjust_balance(request.user),
    }
    return render_page_or_part(
        request, "customers/customer_list.html", context, partials={"customer-results"}
    )


# The sort menu (also on phones, where the list has no column headers to click).
SORT_LABELS = {
    "name": "Name, A to Z",
    "-name": "Name, Z to A",
    "balance": "Balance, lowest first",
    "-balance": "Balance, highest first",
}
ACCOUNT_FILTER_LABELS = {
    "all": "All accounts",
    "active": "Active",
    "inactive": "Inactive",
    "staff": "Staff",
}


@staff_required
def customers_csv(request):
    """Every customer (users, then companies) with their balance and expiring credits."""
    today = timezone.localdate(timezone.now())
    return credit_exports.customer_balances_csv(filename=f"customers-balances-{today:%Y-%m-%d}.csv")


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
    # Only active managers are told of changes to a company's credits (credits.notices).
    told = {
        "managers_told": customer.memberships.filter(
            role=CompanyMembership.Role.MANAGER, user__is_active=True
        ).exists()
    }
    if all_members:
        return {"memberships": list(members), **told}
    shown = list(members[: MEMBERS_SHOWN + 1])
    if len(shown) <= MEMBERS_SHOWN:
        return {"memberships": shown, **told}
    return {"memberships": shown[:MEMBERS_SHOWN], "member_count": members.count(), **told}


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


@staff_required
@require_http_methods(["GET", "POST"])
def anonymise(request, pk: int):
    """Superusers only: forget a person (customers.services.anonymise_user), after they
    type the person's email address."""
    if not request.user.is_superuser:
        raise PermissionDenied
    person = get_object_or_404(User, pk=pk)
    form = AnonymiseForm(request.POST or None, person=person)
    if request.method == "POST" and not person.is_anonymised and form.is_valid():
        name = person.display_name
        try:
            services.anonymise_user(person, by=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"{name} is now {person.display_name}.")
            return redirect(person.get_absolute_url())
    status = 422 if form.is_bound and (form.errors or person.is_anonymised) else 200
    context = {"person": person, "form": form, "is_self": person.pk == request.user.pk}
    return render(request, "customers/anonymise.html", context, status=status)
