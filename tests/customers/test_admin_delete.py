"""Staff who may delete users cannot delete a superuser: the admin says so plainly, in the
delete view and the bulk action, and deletes nothing."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from customers.models import User
from tests.factories import PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/customers/user/"
REFUSED = "Only a superuser can delete a superuser account: root@example.com was not deleted."


@pytest.fixture
def remover():
    staff = StaffFactory(email="remover@example.com")
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "change_user", "delete_user"])
    )
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def root():
    return User.objects.create_superuser(email="root@example.com", password=PASSWORD)


def refused(response) -> bool:
    """The request was sent back (to the change page or the list) with the refusal."""
    return bool(response.redirect_chain) and REFUSED in response.content.decode()


def test_the_delete_view_refuses_a_superuser_with_a_message(remover, root):
    change = remover.get(f"{CHANGELIST}{root.pk}/change/").content.decode()
    assert f"{CHANGELIST}{root.pk}/delete/" not in change  # no Delete button
    delete = f"{CHANGELIST}{root.pk}/delete/"
    for response in (
        remover.get(delete, follow=True),
        remover.post(delete, {"post": "yes"}, follow=True),
    ):
        assert refused(response)
        assert response.redirect_chain == [(f"{CHANGELIST}{root.pk}/change/", 302)]
    assert User.objects.filter(pk=root.pk).exists()


def test_the_bulk_delete_refuses_when_a_superuser_is_selected(remover, root):
    member = UserFactory()
    selected = {"action": "delete_selected", "_selected_action": [root.pk, member.pk]}
    for data in (selected, {**selected, "post": "yes"}):  # the review, and its confirmation
        assert refused(remover.post(CHANGELIST, data, follow=True))
    assert User.objects.filter(pk__in=[root.pk, member.pk]).count() == 2

    # Members alone go on to Django's own page (which lists what protects them).
    review = remover.post(CHANGELIST, {**selected, "_selected_action": [member.pk]})
    assert review.status_code == 200 and REFUSED not in review.content.decode()


def test_a_superuser_is_not_refused(root):
    other = User.objects.create_superuser(email="other@example.com", password=PASSWORD)
    client = Client()
    client.force_login(root)
    page = client.get(f"{CHANGELIST}{other.pk}/delete/")
    assert page.status_code == 200 and "Only a superuser" not in page.content.decode()
