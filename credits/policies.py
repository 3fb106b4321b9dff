"""Who may see and change whose credits: the one place both the admin and the member
screens ask. Views call these; templates only show what the view decided."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.http import Http404

from customers.models import Company, CompanyMembership, User


def can_manage_customers(user: User) -> bool:
    """Staff read every customer's credits on the Customers pages."""
    return user.is_authenticated and user.is_active and user.is_staff


def can_adjust_balance(user: User) -> bool:
    """Only staff with `credits.adjust_balance` (superusers have it) change balances."""
    return can_manage_customers(user) and user.has_perm("credits.adjust_balance")


def companies_with_visible_credits(member: User) -> QuerySet[Company]:
    """Companies whose credits `member` may see on the member side: where they are a
    manager, or a member while the managers let members see and use company credits."""
    return (
        Company.objects.filter(
            Q(memberships__user=member, memberships__role=CompanyMembership.Role.MANAGER)
            | Q(memberships__user=member, members_can_use_credits=True)
        )
        .distinct()
        .order_by("name")
    )


def is_company_manager(member: User, company: Company) -> bool:
    return CompanyMembership.objects.filter(
        company=company, user=member, role=CompanyMembership.Role.MANAGER
    ).exists()


# The member side. Every member URL that names a customer resolves it here, so a member who
# changes an id in a URL, a filter or a CSV link gets the same 404 whether the customer
# exists or not. Staff get no extra rights on this side: they see their own account only.


def visible_customer_or_404(member: User, *, owner: str, pk: int) -> User | Company:
    """The customer (owner "users" or "companies", as in URLs, id `pk`) whose credits
    `member` may see on the member side, or Http404."""
    if member.is_authenticated and member.is_active:
        if owner == "users" and pk == member.pk:
            return member
        if owner == "companies":
            company = companies_with_visible_credits(member).filter(pk=pk).first()
            if company is not None:
                return company
    raise Http404("No such customer.")


def managed_company_or_404(member: User, pk: int) -> Company:
    """A company `member` manages (its Members page and settings), or Http404: other members
    of the company do not learn who else is in it."""
    company = Company.objects.filter(pk=pk).first() if member.is_authenticated else None
    if company is None or not member.is_active or not is_company_manager(member, company):
        raise Http404("No such company.")
    return company


def can_set_members_can_use_credits(member: User, company: Company) -> bool:
    """Only a company's managers decide whether its members see and use company credits."""
    return is_company_manager(member, company)


@dataclass(frozen=True)
class CompanyAccess:
    """What `member` may do with one company they belong to."""

    company: Company
    is_manager: bool
    can_view_credits: bool


def member_company_access(member: User) -> list[CompanyAccess]:
    """Each company `member` belongs to, by name, with what they may see of it."""
    memberships = (
        CompanyMembership.objects.filter(user=member)
        .select_related("company")
        .order_by("company__name", "company__pk")
    )
    visible = set(companies_with_visible_credits(member).values_list("pk", flat=True))
    return [
        CompanyAccess(
            company=membership.company,
            is_manager=membership.role == CompanyMembership.Role.MANAGER,
            can_view_credits=membership.company_id in visible,
        )
        for membership in memberships
    ]
