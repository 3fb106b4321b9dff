"""The holes found when the app was attacked (issue 10).

1. Staff who may change users must not take over staff or superuser accounts through the
   Django admin: only superusers change passwords, the active flag, staff status, groups or
   permissions; staff with `change_user` edit members' names and emails only, and see the
   rest read-only.
4. Every check of a password (the old password on the password change, the current
   password on the email change) counts towards the same django-axes lockout as login.
"""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.utils import timezone

from customers.models import User
from tests.factories import PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

HR_CHOICE = "chosen-by-hr-1234"


def body(response) -> str:
    return response.content.decode()


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def hr():
    """Staff who may only view and change users, as in the attack."""
    hr = StaffFactory(email="hr@example.com")
    hr.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    return hr


@pytest.fixture
def root():
    return User.objects.create_superuser(email="root@example.com", password=PASSWORD)


@pytest.fixture
def targets(root):
    """The accounts hr may not touch: a superuser and another staff member."""
    return {"superuser": root, "staff": StaffFactory(email="ops@example.com")}


def change_url(user) -> str:
    return f"/admin/customers/user/{user.pk}/change/"


def password_url(user) -> str:
    return f"/admin/customers/user/{user.pk}/password/"


def change_form_data(user, **changes) -> dict:
    """What the admin change form posts for `user` (no memberships), with `changes`."""
    data = {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "date_joined_0": timezone.localtime(user.date_joined).date().isoformat(),
        "date_joined_1": timezone.localtime(user.date_joined).strftime("%H:%M:%S"),
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    if user.is_active:
        data["is_active"] = "on"
    if user.is_staff:
        data["is_staff"] = "on"
    if user.is_superuser:
        data["is_superuser"] = "on"
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def has_input(page: str, name: str) -> bool:
    return f'name="{name}"' in page


def assert_no_password_hash(page: str, user: User):
    *_, salt, password_hash = user.password.split("$")
    assert salt not in page and password_hash not in page


# Finding 1: the admin escalation


@pytest.mark.parametrize("target", ["superuser", "staff", "member"])
def test_hr_cannot_set_anyones_password_in_the_admin(hr, targets, target):
    # Members too: staff who may change users edit names and emails, nothing else.
    account = targets.get(target) or UserFactory(email="member@example.com")
    client = logged_in(hr)

    assert client.get(password_url(account)).status_code == 403
    response = client.post(
        password_url(account),
        {"password1": HR_CHOICE, "password2": HR_CHOICE, "usable_password": "true"},
    )

    assert response.status_code == 403
    account.refresh_from_db()
    assert account.check_password(PASSWORD)
    assert not account.check_password(HR_CHOICE)
    assert not Client().login(username=account.email, password=HR_CHOICE)


@pytest.mark.parametrize("target", ["superuser", "staff"])
def test_hr_sees_staff_and_superuser_accounts_read_only_and_cannot_change_them(hr, targets, target):
    account = targets[target]
    group = Group.objects.create(name="Everything")
    permission = Permission.objects.get(codename="adjust_balance")
    client = logged_in(hr)

    page = body(client.get(change_url(account)))
    for field in ["email", "first_name", "is_active", "is_staff", "is_superuser", "groups"]:
        assert not has_input(page, field), f"{field} is editable"
    assert not has_input(page, "user_permissions")
    assert account.email in page  # shown, read-only
    assert "Is active" in page and "Superuser status" in page
    assert_no_password_hash(page, account)

    response = client.post(
        change_url(account),
        change_form_data(
            account,
            email="hr-owns-this@example.com",
            first_name="Pwned",
            is_active=None,
            is_staff=None,
            is_superuser=None,
            groups=str(group.pk),
            user_permissions=str(permission.pk),
        ),
    )

    assert response.status_code == 403
    account.refresh_from_db()
    assert account.email != "hr-owns-this@example.com"
    assert account.first_name != "Pwned"
    assert account.is_active and account.is_staff
    assert account.is_superuser == (target == "superuser")
    assert not account.groups.exists() and not account.user_permissions.exists()


def test_hr_edits_a_members_name_and_email_and_sees_the_rest_read_only(hr):
    member = UserFactory(email="lena@example.com", first_name="Lena")
    group = Group.objects.create(name="Everything")
    permission = Permission.objects.get(codename="adjust_balance")
    client = logged_in(hr)

    page = body(client.get(change_url(member)))
    for field in ["email", "first_name", "last_name"]:
        assert has_input(page, field), f"{field} is not editable"
    for field in ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]:
        assert not has_input(page, field), f"{field} is editable"
    # The fields hr may not change are shown, read-only, not left out.
    assert "Is active" in page and "Is staff" in page and "User permissions" in page
    assert "only a superuser changes passwords" in page
    assert_no_password_hash(page, member)

    response = client.post(
        change_url(member),
        change_form_data(
            member,
            email="lena.novak@example.com",
            first_name="Helena",
            is_active=None,  # an unticked box: would deactivate
            is_staff="on",
            is_superuser="on",
            groups=str(group.pk),
            user_permissions=str(permission.pk),
        ),
    )

    assert response.status_code == 302
    member.refresh_from_db()
    assert member.first_name == "Helena"
    assert member.email == "lena.novak@example.com"
    assert member.is_active
    assert not member.is_staff and not member.is_superuser
    assert not member.groups.exists() and not member.user_permissions.exists()


def test_a_superuser_still_changes_everything(root, targets):
    staff = targets["staff"]
    group = Group.objects.create(name="Support")
    permission = Permission.objects.get(codename="adjust_balance")
    client = logged_in(root)

    page = body(client.get(change_url(staff)))
    for field in ["email", "is_active", "is_staff", "is_superuser", "groups"]:
        assert has_input(page, field), f"{field} is not editable"

    response = client.post(
        change_url(staff),
        change_form_data(
            staff,
            email="ops.lead@example.com",
            is_active=None,
            is_superuser="on",
            groups=str(group.pk),
            user_permissions=str(permission.pk),
        ),
    )
    assert response.status_code == 302
    staff.refresh_from_db()
    assert staff.email == "ops.lead@example.com"
    assert not staff.is_active and staff.is_superuser
    assert list(staff.groups.all()) == [group]
    assert list(staff.user_permissions.all()) == [permission]

    response = client.post(
        password_url(staff),
        {"password1": "set-by-root-1234", "password2": "set-by-root-1234"},
    )
    assert response.status_code == 302
    staff.refresh_from_db()
    assert staff.check_password("set-by-root-1234")


# Finding 4: every password check goes through the login lockout


def wrong_old_password(client: Client):
    return client.post(
        "/account/password/",
        {
            "old_password": "wrong-guess",
            "new_password1": "a-much-longer-new-secret",
            "new_password2": "a-much-longer-new-secret",
        },
    )


def right_old_password(client: Client):
    return client.post(
        "/account/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-longer-new-secret",
            "new_password2": "a-much-longer-new-secret",
        },
    )


def email_change(client: Client, member: User, password: str):
    return client.post(
        "/account/",
        {
            "first_name": member.first_name,
            "last_name": member.last_name,
            "email": "taken-over@example.com",
            "current_password": password,
        },
    )


def login(email: str, password: str):
    return Client().post("/login/", {"username": email, "password": password})


def assert_locked_out_page(response):
    assert response.status_code == 429
    page = body(response)
    assert "Too many wrong passwords" in page
    assert "paused for 15 minutes" in page


def test_wrong_old_passwords_lock_the_password_change_out():
    member = UserFactory()
    client = logged_in(member)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = wrong_old_password(client)
        assert response.status_code == 200
        assert "Your old password was entered incorrectly" in body(response)
    assert_locked_out_page(wrong_old_password(client))

    # Locked out: even the right old password is refused, and so is a login.
    assert_locked_out_page(right_old_password(client))
    member.refresh_from_db()
    assert member.check_password(PASSWORD)
    assert login(member.email, PASSWORD).status_code == 429


def test_wrong_current_passwords_lock_the_email_change_out():
    member = UserFactory()
    email = member.email
    client = logged_in(member)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = email_change(client, member, "wrong-guess")
        assert response.status_code == 422
        assert "That is not your current password." in body(response)
    assert_locked_out_page(email_change(client, member, "wrong-guess"))

    assert_locked_out_page(email_change(client, member, PASSWORD))
    member.refresh_from_db()
    assert member.email == email
    assert login(email, PASSWORD).status_code == 429


def test_wrong_passwords_on_the_account_forms_count_with_failed_logins():
    member = UserFactory()
    client = logged_in(member)
    assert login(member.email, "wrong-guess").status_code == 200
    assert login(member.email, "wrong-guess").status_code == 200
    assert wrong_old_password(client).status_code == 200
    assert email_change(client, member, "wrong-guess").status_code == 422
    # The fifth wrong password, wherever it was typed, locks every password check.
    assert login(member.email.upper(), "wrong-guess").status_code == 429
    assert login(member.email, PASSWORD).status_code == 429
    assert_locked_out_page(right_old_password(client))
    assert_locked_out_page(email_change(client, member, PASSWORD))


def test_failed_logins_lock_a_stolen_session_out_of_the_account_forms():
    member = UserFactory()
    stolen = logged_in(member)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(member.email, "wrong-guess")
    assert_locked_out_page(right_old_password(stolen))
    assert_locked_out_page(email_change(stolen, member, PASSWORD))


def test_a_name_change_needs_no_password_and_is_not_counted():
    member = UserFactory()
    client = logged_in(member)
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        response = client.post(
            "/account/",
            {"first_name": "New", "last_name": member.last_name, "email": member.email},
        )
        assert response.status_code == 302
    assert not AccessAttempt.objects.exists()


def test_the_failures_recorded_keep_no_password_in_clear():
    member = UserFactory()
    client = logged_in(member)
    wrong_old_password(client)
    email_change(client, member, "another-wrong-guess")
    recorded = " ".join(AccessAttempt.objects.values_list("post_data", flat=True))
    assert recorded  # the failures were counted ...
    for secret in ["wrong-guess", "another-wrong-guess", "a-much-longer-new-secret"]:
        assert secret not in recorded  # ... without what was typed


def test_the_admins_own_password_change_is_the_throttled_one(hr):
    client = logged_in(hr)
    response = client.get("/admin/password_change/")
    assert response.status_code == 302
    assert response["Location"] == "/account/password/"
