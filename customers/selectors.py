"""Reads of customers for the staff pages."""

from __future__ import annotations

from django.db.models import Count, F, Q, QuerySet
from django.shortcuts import get_object_or_404

from credits.selectors import balance_subquery

from .models import Company, User

# The word in a customer's URLs (/customers/users/1/, /customers/companies/1/).
OWNER_MODELS = {"users": User, "companies": Company}
MAX_QUERY_LENGTH = 100


def get_customer(owner: str, pk: int) -> User | Company:
    """The user or company a customer URL names, or 404."""
    return get_object_or_404(OWNER_MODELS[owner].objects.select_related("credit_account"), pk=pk)


def _words(query: str) -> list[str]:
    """The words searched for; control characters (a NUL among them) are left out, as no
    name or email holds one."""
    kept = (ch if ch.isprintable() or ch.isspace() else "" for ch in query[:MAX_QUERY_LENGTH])
    return "".join(kept).split()


# The orders the Customers list offers (?sort=): by name, or by balance, either way; ties
# fall back to the name, then the id, so pages never repeat or skip a row.
SORTS = ("name", "-name", "balance", "-balance")
# Which users the list shows (?accounts=).
ACCOUNT_FILTERS = {
    "all": Q(),
    "active": Q(is_active=True),
    "inactive": Q(is_active=False),
    "staff": Q(is_staff=True),
}


def _ordering(sort: str, name_fields: list[str]) -> list:
    names = [F(f).desc() if sort == "-name" else F(f).asc() for f in name_fields]
    if sort == "balance":
        return [F("credit_balance").asc(), *names, "pk"]
    if sort == "-balance":
        return [F("credit_balance").desc(), *names, "pk"]
    return [*names, "pk"]


def search_users(query: str = "", *, sort: str = "name", accounts: str = "all") -> QuerySet[User]:
    """Users whose name or email contains every word of `query`, with their balance,
    among the `accounts` (ACCOUNT_FILTERS), in the order `sort` (SORTS) names."""
    rows = User.objects.annotate(credit_balance=balance_subquery()).filter(
        ACCOUNT_FILTERS[accounts]
    )
    for word in _words(query):
        rows = rows.filter(
            Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)
        )
    return rows.order_by(*_ordering(sort, ["first_name", "last_name", "email"]))


def search_companies(query: str = "", *, sort: str = "name") -> QuerySet[Company]:
    """Companies whose name or email contains every word of `query`, with their balance,
    in the order `sort` (SORTS) names."""
    rows = Company.objects.annotate(
        credit_balance=balance_subquery(), member_count=Count("memberships")
    )
    for word in _words(query):
        rows = rows.filter(Q(name__icontains=word) | Q(email__icontains=word))
    return rows.order_by(*_ordering(sort, ["name"]))


def transfer_partners(customer) -> list[User | Company]:
    """Who credits may be transferred with: a user's companies, a company's members."""
    if isinstance(customer, User):
        return list(Company.objects.filter(memberships__user=customer).order_by("name", "pk"))
    return list(
        User.objects.filter(memberships__company=customer).order_by(
            "first_name", "last_name", "email"
        )
    )
