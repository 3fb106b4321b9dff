"""API keys: the command, the staff page, hashing, Bearer auth and scopes."""

import io

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client

from api import services
from api.models import ApiKey, Scope
from tests.api.conftest import ApiClient, assert_problem
from tests.factories import PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_the_key_as_its_last_line_and_stores_only_its_hash():
    out = io.StringIO()
    call_command("create_api_key", "--name", "Shop", "--scope", "write", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    stored = ApiKey.objects.get(name="Shop")
    assert stored.scope == Scope.WRITE
    assert key.startswith("sck_") and key.startswith(stored.prefix)
    assert key not in stored.hashed_key and stored.hashed_key == services.hash_key(key)
    assert ApiClient(key).get("/api/v1/customers").status_code == 200


def test_no_key_a_wrong_key_and_a_revoked_key_are_401(write_key):
    assert_problem(ApiClient(None).get("/api/v1/customers"), 401, "unauthenticated")
    assert_problem(ApiClient("sck_wrong").get("/api/v1/customers"), 401)
    assert_problem(ApiClient("not-even-a-key").get("/api/v1/customers"), 401)
    response = Client().get("/api/v1/customers", HTTP_AUTHORIZATION="Basic abc")
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"
    services.revoke_api_key(write_key.api_key)
    assert_problem(ApiClient(write_key.key).get("/api/v1/customers"), 401)


def test_a_read_key_reads_but_may_not_write(reader):
    customer = UserFactory()
    assert reader.get(f"/api/v1/customers/user_{customer.pk}").status_code == 200
    response = reader.post(f"/api/v1/customers/user_{customer.pk}/credits", {"amount": "5"})
    assert_problem(response, 403, "insufficient_scope")


def test_last_used_is_noted(api, write_key):
    assert write_key.api_key.last_used_at is None
    api.get("/api/v1/customers")
    write_key.api_key.refresh_from_db()
    assert write_key.api_key.last_used_at is not None


def _staff_with_permission():
    staff = StaffFactory()
    staff.user_permissions.add(Permission.objects.get(codename="manage_api_keys"))
    client = Client()
    client.login(username=staff.email, password=PASSWORD)
    return staff, client


def test_the_staff_page_creates_shows_the_key_once_lists_and_revokes():
    staff, client = _staff_with_permission()
    assert 'href="/api-keys/"' in client.get("/account/").content.decode()
    page = client.get("/api-keys/")
    assert page.status_code == 200 and b"API keys" in page.content
    created = client.post("/api-keys/", {"name": "Web shop", "scope": "write"})
    assert created.status_code == 200
    stored = ApiKey.objects.get(name="Web shop")
    assert stored.created_by == staff
    text = created.content.decode()
    start = text.index('id="new-key"')
    key = text[start:].split('value="', 1)[1].split('"', 1)[0]
    assert services.hash_key(key) == stored.hashed_key
    listed = client.get("/api-keys/").content.decode()
    assert key not in listed and stored.prefix in listed and "Never" in listed
    assert client.post(f"/api-keys/{stored.pk}/revoke/").status_code == 302
    stored.refresh_from_db()
    assert stored.revoked_at is not None
    assert_problem(ApiClient(key).get("/api/v1/customers"), 401)


def test_the_staff_page_refuses_staff_without_the_permission_and_checks_the_form():
    staff = StaffFactory()
    client = Client()
    client.login(username=staff.email, password=PASSWORD)
    assert client.get("/api-keys/").status_code == 403
    assert client.post("/api-keys/", {"name": "x", "scope": "write"}).status_code == 403
    assert not ApiKey.objects.exists()
    assert Client().get("/api-keys/").status_code == 302  # to the login page
    _, allowed = _staff_with_permission()
    assert allowed.post("/api-keys/", {"name": "", "scope": "admin"}).status_code == 422
