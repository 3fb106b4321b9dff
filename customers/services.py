"""Every write to customers, companies and memberships."""

from __future__ import annotations

from collections.abc import Callable

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from credits import policies

from .models import Company, CreditsVisibilityChange, User


def set_members_can_use_credits(company: Company, enabled: bool, *, by: User) -> Company:
    """Turn "Members can see and use company credits" on or off for `company`.

    Only the company's managers may (checked under the company's row lock, so a manager
    demoted a moment ago cannot still change it). Raises PermissionDenied otherwise.
    A change is recorded with who made it and when (CreditsVisibilityChange); asking for
    what is already so records nothing.
    """
    with transaction.atomic():
        locked = Company.objects.select_for_update().get(pk=company.pk)
        if not policies.can_set_members_can_use_credits(by, locked):
            raise PermissionDenied("Only the company's managers can change this.")
        if locked.members_can_use_credits != enabled:
            locked.members_can_use_credits = enabled
            locked.save(update_fields=["members_can_use_credits"])
            record_credits_visibility_change(locked, by=by)
    company.members_can_use_credits = locked.members_can_use_credits
    return locked


def record_credits_visibility_change(company: Company, *, by: User | None) -> None:
    """Record that `by` has just set the company's "Members can see and use company
    credits" to what it now is (the service above, and the Django admin's form)."""
    CreditsVisibilityChange.objects.create(
        company=company,
        enabled=company.members_can_use_credits,
        changed_by=by,
        changed_at=timezone.now(),
    )


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


# --- Forgetting a person ------------------------------------------------------------------

# Apps above this one that keep a person's data register here how to erase it (the
# notifications app: their notifications and preferences), so that anonymise_user erases
# everything in one transaction without customers importing them. Each eraser takes the
# user and the email address they had, and deletes what its app keeps of them.
PERSONAL_DATA_ERASERS: list[Callable[[User, str], None]] = []


def register_personal_data_eraser(eraser: Callable[[User, str], None]) -> None:
    if eraser not in PERSONAL_DATA_ERASERS:
        PERSONAL_DATA_ERASERS.append(eraser)


def anonymised_email(user: User) -> str:
    """The address an anonymised account keeps (the column is unique and required);
    `.invalid` is reserved (RFC 2606): nothing is ever delivered there."""
    return f"former-member-{user.pk}@anonymised.invalid"


def anonymise_user(user: User, *, by: User) -> User:
    """Forget a person who asked to be forgotten: their name, email and login go, and they
    can no longer log in (no password, inactive, no staff rights or company roles); their
    notifications, notification preferences, sessions and failed-login records are
    deleted. Their credit account and every ledger row stay as they are, so the ledger
    still balances; pages show them as "Former member #<id>". Who did it and when is kept
    on the row (anonymised_by, anonymised_at).

    Only a superuser may, and not on their own account. Raises PermissionDenied, or
    ValidationError for an account already anonymised or their own.
    """
    if not (by.is_active and by.is_superuser):
        raise PermissionDenied("Only a superuser can anonymise a person.")
    if user.pk == by.pk:
        raise ValidationError("You cannot anonymise your own account.", code="self")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.anonymised_at:
            raise ValidationError(
                f"{locked.display_name} was anonymised already.", code="already_anonymised"
            )
        old_email = locked.email
        locked.email = anonymised_email(locked)
        locked.first_name = locked.last_name = ""
        locked.set_unusable_password()
        locked.is_active = locked.is_staff = locked.is_superuser = False
        locked.last_login = None
        locked.anonymised_at = timezone.now()
        locked.anonymised_by = by
        locked.save()
        locked.groups.clear()
        locked.user_permissions.clear()
        locked.memberships.all().delete()
        _delete_sessions_of(locked)
        AccessAttempt.objects.filter(username__iexact=old_email).delete()
        AccessLog.objects.filter(username__iexact=old_email).delete()
        AccessFailureLog.objects.filter(username__iexact=old_email).delete()
        for eraser in PERSONAL_DATA_ERASERS:
            eraser(locked, old_email)
    user.refresh_from_db()
    return locked


def _delete_sessions_of(user: User) -> None:
    """Django keeps no index of sessions by user: each live session is read (anonymising
    is rare, and the app's sessions are few)."""
    mine = str(user.pk)
    stale = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get(SESSION_KEY) == mine
    ]
    Session.objects.filter(pk__in=stale).delete()
