"""Anonymise: a superuser forgets a person who asked; the ledger stays and balances."""

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from credits import ledger_check, selectors, services
from customers import services as customer_services
from customers.models import CompanyMembership, User
from notifications import services as notification_services
from notifications.models import Notification, NotificationPreferences
from tests.factories import PASSWORD, CompanyFactory, MembershipFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    admin = User.objects.create_superuser("root@example.com", PASSWORD, first_name="Rosa")
    client.force_login(admin)
    return admin


@pytest.fixture
def maria(clock):
    maria = UserFactory(email="maria@example.com", first_name="Maria", last_name="Garcia")
    acme = CompanyFactory(name="Acme Ltd")
    MembershipFactory(company=acme, user=maria, role="manager")
    services.add_credits(maria, 30, expires_on=dt.date(2026, 7, 1), memo="Welcome")
    services.deduct_credits(maria, 5)
    services.add_credits(acme, 10)  # Maria, its manager, is told
    notification_services.update_preferences(maria, email_credit_updates=False)
    return maria


def test_a_superuser_anonymises_a_person_and_the_ledger_stays(client, root, maria):
    other_device = Client()
    other_device.force_login(maria)
    Client().post("/login/", {"username": "maria@example.com", "password": "wrong"})
    assert AccessAttempt.objects.filter(username="maria@example.com").exists()
    history = list(selectors.get_transactions(maria).values_list("pk", "amount", "balance_after"))
    assert Notification.objects.filter(recipient=maria).count() == 3

    page = client.get(f"/customers/users/{maria.pk}/anonymise/")
    assert page.status_code == 200
    assert "maria@example.com" in page.content.decode()
    response = client.post(
        f"/customers/users/{maria.pk}/anonymise/", {"confirm_email": "Maria@example.com"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/customers/users/{maria.pk}/"

    maria.refresh_from_db()
    assert maria.display_name == str(maria) == f"Former member #{maria.pk}"
    assert (maria.first_name, maria.last_name) == ("", "")
    assert maria.email == f"former-member-{maria.pk}@anonymised.invalid"
    assert not maria.has_usable_password() and not maria.is_active
    assert maria.anonymised_by == root and maria.anonymised_at is not None
    # The ledger: every row as it was, the balance too, and it still checks out.
    assert (
        list(selectors.get_transactions(maria).values_list("pk", "amount", "balance_after"))
        == history
    )
    assert selectors.get_balance(maria) == 25
    assert ledger_check.run_checks().ok
    # Gone: notifications, preferences, sessions, failed logins, company roles.
    assert not Notification.objects.filter(recipient=maria).exists()
    assert not NotificationPreferences.objects.filter(user=maria).exists()
    assert not AccessAttempt.objects.filter(username="maria@example.com").exists()
    assert not CompanyMembership.objects.filter(user=maria).exists()
    assert other_device.get("/membership/").status_code == 302  # logged out
    assert all(s.get_decoded().get("_auth_user_id") != str(maria.pk) for s in Session.objects.all())
    assert (
        Client()
        .post("/login/", {"username": "maria@example.com", "password": PASSWORD})
        .status_code
        == 200
    )

    # The confirmation names them once, for the superuser; then the profile never does.
    confirmation = client.get(f"/customers/users/{maria.pk}/").content.decode()
    assert f"Maria Garcia is now Former member #{maria.pk}." in confirmation
    profile = client.get(f"/customers/users/{maria.pk}/").content.decode()
    assert f"Former member #{maria.pk}" in profile
    assert "maria@example.com" not in profile and "Garcia" not in profile
    assert "Anonymised" in profile and "by Rosa" in profile
    listing = client.get("/customers/?q=former").content.decode()
    assert f"Former member #{maria.pk}" in listing and "anonymised.invalid" not in listing


def test_the_admin_who_made_a_change_shows_as_a_former_member(client, root, clock):
    admin = StaffFactory(first_name="Ada", last_name="Admin")
    member = UserFactory()
    services.add_credits(member, 5, actor=admin)
    customer_services.anonymise_user(admin, by=root)
    page = client.get(f"/customers/users/{member.pk}/transactions/").content.decode()
    # Not "Ada" alone: the member's own made-up name can hold it (Adams, Canada).
    assert f"Former member #{admin.pk}" in page and "Ada Admin" not in page


def test_a_wrong_confirmation_changes_nothing(client, root, maria):
    response = client.post(f"/customers/users/{maria.pk}/anonymise/", {"confirm_email": "maria@"})
    assert response.status_code == 422
    assert "Type maria@example.com exactly as shown to confirm." in response.content.decode()
    maria.refresh_from_db()
    assert maria.email == "maria@example.com" and maria.anonymised_at is None
    assert Notification.objects.filter(recipient=maria).exists()


def test_only_superusers_may(client, maria):
    staff = StaffFactory()
    staff.user_permissions.add(*Permission.objects.all())
    client.force_login(staff)
    assert client.get(f"/customers/users/{maria.pk}/anonymise/").status_code == 403
    assert (
        client.post(
            f"/customers/users/{maria.pk}/anonymise/", {"confirm_email": maria.email}
        ).status_code
        == 403
    )
    assert "Anonymise" not in client.get(f"/customers/users/{maria.pk}/").content.decode()
    client.force_login(maria)
    assert client.get(f"/customers/users/{maria.pk}/anonymise/").status_code == 403
    with pytest.raises(PermissionDenied):
        customer_services.anonymise_user(maria, by=staff)
    maria.refresh_from_db()
    assert maria.anonymised_at is None


def test_not_oneself_not_twice_and_unknown_ids_are_404(client, root, maria):
    assert client.get("/customers/users/999999/anonymise/").status_code == 404
    own = client.post(f"/customers/users/{root.pk}/anonymise/", {"confirm_email": root.email})
    assert own.status_code == 422
    assert "You cannot anonymise your own account" in own.content.decode()
    root.refresh_from_db()
    assert root.is_active and root.anonymised_at is None
    customer_services.anonymise_user(maria, by=root)
    with pytest.raises(ValidationError, match="anonymised already"):
        customer_services.anonymise_user(maria, by=root)
    again = client.post(f"/customers/users/{maria.pk}/anonymise/", {"confirm_email": maria.email})
    assert again.status_code == 422
    assert "was anonymised already" in again.content.decode()
