"""Who may see and change whose credits: the one place both the admin and the member
screens ask. Views call these; templates only show what the view decided."""

from __future__ import annotations

from django.db.models import Q, QuerySet

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


def can_view_own_credits(member: User, customer: User | Company) -> bool:
    """The member side: a member's own credits, or a company's per the rule above."""
    if not member.is_authenticated:
        return False
    if isinstance(customer, User):
        return customer.pk == member.pk
    return companies_with_visible_credits(member).filter(pk=customer.pk).exists()


def is_company_manager(member: User, company: Company) -> bool:
    return CompanyMembership.objects.filter(
        company=company, user=member, role=CompanyMembership.Role.MANAGER
    ).exists()
