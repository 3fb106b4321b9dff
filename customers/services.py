"""Every write to customers, companies and memberships."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from credits import policies

from .models import Company, User


def set_members_can_use_credits(company: Company, enabled: bool, *, by: User) -> Company:
    """Turn "Members can see and use company credits" on or off for `company`.

    Only the company's managers may (checked under the company's row lock, so a manager
    demoted a moment ago cannot still change it). Raises PermissionDenied otherwise.
    """
    with transaction.atomic():
        locked = Company.objects.select_for_update().get(pk=company.pk)
        if not policies.can_set_members_can_use_credits(by, locked):
            raise PermissionDenied("Only the company's managers can change this.")
        if locked.members_can_use_credits != enabled:
            locked.members_can_use_credits = enabled
            locked.save(update_fields=["members_can_use_credits"])
    company.members_can_use_credits = locked.members_can_use_credits
    return locked


def set_monthly_credit_limit(membership, limit, *, by: User):
    """Set the most of the company's credits a member may spend in a calendar month, net of
    refunds (None: no limit). Only the company's managers may (checked under the
    membership's row lock). Raises ValidationError for a limit below 0 or with more than
    two decimal places."""
    from decimal import Decimal, InvalidOperation

    if limit is not None:
        try:
            limit = Decimal(str(limit))
        except InvalidOperation:
            raise ValidationError({"monthly_credit_limit": "Enter the limit as a number."})
        if not limit.is_finite() or limit < 0 or limit != limit.quantize(Decimal("0.01")):
            raise ValidationError(
                {"monthly_credit_limit": "Enter 0 or more, with at most 2 decimal places."}
            )
        if limit > Decimal("1000000"):
            raise ValidationError(
                {"monthly_credit_limit": "Enter a limit of at most 1,000,000 credits."}
            )
    with transaction.atomic():
        locked = type(membership).objects.select_for_update().get(pk=membership.pk)
        if not policies.is_company_manager(by, locked.company):
            raise PermissionDenied("Only the company's managers can change this.")
        locked.monthly_credit_limit = limit
        locked.save(update_fields=["monthly_credit_limit"])
    membership.monthly_credit_limit = limit
    return locked


def update_profile(user: User, *, first_name: str, last_name: str, email: str) -> User:
    """Change a person's name and login email. The email stays unique (ignoring case);
    raises ValidationError({"email": ...}) when another account uses it."""
    email = User.objects.normalize_email(email).strip().lower()
    taken = ValidationError(
        {"email": "Another account already uses this email address."}, code="taken"
    )
    try:
        with transaction.atomic():
            locked = User.objects.select_for_update().get(pk=user.pk)
            if User.objects.filter(email__iexact=email).exclude(pk=locked.pk).exists():
                raise taken
            locked.first_name = first_name.strip()
            locked.last_name = last_name.strip()
            locked.email = email
            locked.save(update_fields=["first_name", "last_name", "email"])
    except IntegrityError:  # another account took the address a moment ago
        raise taken
    user.first_name, user.last_name, user.email = locked.first_name, locked.last_name, email
    return locked
