import pytest
from django.urls import reverse

from customers.models import User

pytestmark = pytest.mark.django_db


def test_login_is_by_email_case_insensitively(client):
    User.objects.create_user(email="Maria@Example.com", password="pw-123456789")
    assert client.login(username="maria@example.com", password="pw-123456789")


def test_an_email_differing_only_in_case_is_refused_in_the_admin(client):
    User.objects.create_user(email="maria@example.com", password="pw-123456789")
    admin = User.objects.create_superuser(email="root@example.com", password="pw-123456789")
    client.force_login(admin)
    response = client.post(
        reverse("admin:customers_user_add"),
        {
            "email": "Maria@Example.com",
            "password1": "x-Secret-12345",
            "password2": "x-Secret-12345",
        },
    )
    assert response.status_code == 200
    assert "Another account already uses this email address." in response.content.decode()
    assert User.objects.filter(email__iexact="maria@example.com").count() == 1
    assert client.login(username="MARIA@example.com", password="pw-123456789")
