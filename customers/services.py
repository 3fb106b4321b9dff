"""Every write to customers, companies and memberships."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

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


def update_profile(user: User, *, first_name: str, last_name: str, email: str) -> User:
    """Change a person's name and login email. The email stays unique (ignoring case);
    raises ValidationError({"email": ...}) when another account uses it."""
    email = User.objects.normalize_email(email).strip().lower()
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if User.objects.filter(email__iexact=email).exclude(pk=locked.pk).exists():
            raise ValidationError(
                {"email": "Another account already uses this email address."}, code="taken"
            )
        locked.first_name = first_name.strip()
        locked.last_name = last_name.strip()
        locked.email = email
        locked.save(update_fields=["first_name", "last_name", "email"])
    user.first_name, user.last_name, user.email = locked.first_name, locked.last_name, email
    return locked
