"""Each endpoint: success, its error statuses, unknown and foreign ids."""

import datetime as dt

import pytest
from django.test import Client

from credits import services
from credits.models import CreditTransaction
from tests.api.conftest import assert_problem
from tests.factories import PASSWORD, CompanyFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_get_customer_with_buckets_soonest_first(api, clock):
    member = UserFactory(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    services.add_credits(member, 5)
    services.add_credits(member, "2.50", expires_on=clock.today() + dt.timedelta(days=30))
    body = api.get(f"/api/v1/customers/user_{member.pk}").json()
    assert body == {
        "id": f"user_{member.pk}",
        "type": "user",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "balance": "7.50",
        "available": "7.50",
        "held": "0.00",
        "buckets": [
            {"expires_on": (clock.today() + dt.timedelta(days=30)).isoformat(), "amount": "2.50"},
            {"expires_on": None, "amount": "5.00"},
        ],
    }
    company = CompanyFactory(name="Acme Ltd")
    body = api.get(f"/api/v1/customers/company_{company.pk}").json()
    assert body["type"] == "company" and body["email"] is None and body["buckets"] == []


def test_unknown_and_foreign_customer_ids_are_the_same_404(api):
    member, company = UserFactory(), CompanyFactory()
    unknown = assert_problem(api.get(f"/api/v1/customers/user_{member.pk + 1000}"), 404)
    # A company's number under user_ is no user: the same answer as an unknown id.
    foreign = assert_problem(api.get(f"/api/v1/customers/user_{company.pk + 5000}"), 404)
    assert unknown == foreign
    for path in ("", "/transactions"):
        assert_problem(api.get(f"/api/v1/customers/company_{company.pk + 1000}{path}"), 404)
    credits = f"/api/v1/customers/company_{company.pk + 1}/credits"
    assert_problem(api.post(credits, {"amount": "1"}, key="a"), 404)
    charges = f"/api/v1/customers/user_{member.pk + 1}/charges"
    assert_problem(api.post(charges, {"amount": "1"}, key="b"), 404)
    assert_problem(api.get("/api/v1/transactions/987654"), 404)


def test_list_customers_newest_first_by_type_and_search(api):
    older = UserFactory(first_name="Old", email="old@example.com")
    company = CompanyFactory(name="Zeta Ltd")
    newer = UserFactory(first_name="New", email="new@example.com")
    services.add_credits(newer, 3)
    ids = [row["id"] for row in api.get("/api/v1/customers").json()["data"]]
    assert (
        ids.index(f"user_{newer.pk}")
        < ids.index(f"company_{company.pk}")
        < ids.index(f"user_{older.pk}")
    )
    users = api.get("/api/v1/customers", {"type": "user", "q": "new"}).json()
    assert users["data"] == [
        {
            "id": f"user_{newer.pk}",
            "type": "user",
            "name": newer.display_name,
            "email": "new@example.com",
            "balance": "3.00",
        }
    ]
    companies = api.get("/api/v1/customers", {"type": "company"}).json()["data"]
    assert [row["id"] for row in companies] == [f"company_{company.pk}"]


def test_list_customers_pages_through_both_kinds_once_each(api):
    made = []
    for n in range(7):
        made.append(f"user_{UserFactory().pk}" if n % 2 else f"company_{CompanyFactory().pk}")
    seen, cursor = [], None
    while True:
        page = api.get("/api/v1/customers", {"limit": 2, **({"cursor": cursor} if cursor else {})})
        body = page.json()
        seen += [row["id"] for row in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


def test_add_credits_201_with_the_transaction_and_its_lot(api, clock):
    member = UserFactory()
    expires = clock.today() + dt.timedelta(days=10)
    response = api.post(
        f"/api/v1/customers/user_{member.pk}/credits",
        {
            "amount": "12.50",
            "expires_on": expires.isoformat(),
            "memo": "Top-up",
            "type": "purchase_allocation",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    row = CreditTransaction.objects.get(pk=body["id"])
    assert body == {
        "id": row.pk,
        "customer_id": f"user_{member.pk}",
        "type": "purchase_allocation",
        "amount": "12.50",
        "balance_after": "12.50",
        "memo": "Top-up",
        "created_at": body["created_at"],
        "expires_on": expires.isoformat(),
        "actor": "API: Bookings",
        "lots": [{"lot_id": row.lot.pk, "amount": "12.50", "expires_on": expires.isoformat()}],
        "reverses": None,
        "refunded_charge": None,
        "hold_id": None,
        "on_behalf_of": None,
    }
    assert dt.datetime.fromisoformat(body["created_at"]) == clock.now


def test_add_credits_refuses_a_past_date_and_odd_types(api, clock):
    path = f"/api/v1/customers/user_{UserFactory().pk}/credits"
    yesterday = (clock.today() - dt.timedelta(days=1)).isoformat()
    body = assert_problem(api.post(path, {"amount": "1", "expires_on": yesterday}, key="a"), 422)
    assert body["errors"] == {"expires_on": ["The expiration date cannot be in the past."]}
    assert_problem(api.post(path, {"amount": "1", "type": "booking"}, key="b"), 422)
    assert_problem(api.post(path, {"amount": "0"}, key="c"), 422)
    assert_problem(api.post(path, {"amount": "1000000.01"}, key="d"), 422)
    assert not CreditTransaction.objects.exists()


def test_charge_201_takes_earliest_expiring_first_and_409_says_what_is_available(api, clock):
    company = CompanyFactory()
    soon = services.add_credits(company, 3, expires_on=clock.today() + dt.timedelta(days=3))
    never = services.add_credits(company, 10)
    path = f"/api/v1/customers/company_{company.pk}/charges"
    response = api.post(path, {"amount": "5", "memo": "Room 1"}, key="charge-1")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["type"] == "booking" and body["amount"] == "-5.00"
    assert body["balance_after"] == "8.00"
    assert body["lots"] == [
        {"lot_id": soon.lot.pk, "amount": "3.00", "expires_on": soon.expires_on.isoformat()},
        {"lot_id": never.lot.pk, "amount": "2.00", "expires_on": None},
    ]
    assert api.get(f"/api/v1/transactions/{body['id']}").json() == body
    refused = assert_problem(api.post(path, {"amount": "8.01"}, key="charge-2"), 409)
    assert refused["type"] == "urn:spacecredits:problem:insufficient_credits"
    assert refused["available"] == "8.00"
    admin = api.post(path, {"amount": "1", "type": "admin_charge"}, key="charge-3")
    assert admin.status_code == 201 and admin.json()["type"] == "admin_charge"


def test_charge_on_behalf_of_someone_not_a_member_is_422(api):
    company, member = CompanyFactory(), UserFactory()
    services.add_credits(company, 5)
    response = api.post(
        f"/api/v1/customers/company_{company.pk}/charges",
        {"amount": "1", "on_behalf_of": f"user_{member.pk}"},
    )
    body = assert_problem(response, 422)
    assert "on_behalf_of" in body["errors"]


def test_transactions_list_filters_and_pages(api, clock):
    member = UserFactory()
    first = services.add_credits(member, 10)
    clock.advance(days=1)
    services.deduct_credits(member, 1)
    clock.advance(days=1)
    services.deduct_credits(member, 2)
    path = f"/api/v1/customers/user_{member.pk}/transactions"
    body = api.get(path).json()
    assert [row["amount"] for row in body["data"]] == ["-2.00", "-1.00", "10.00"]
    assert body["next_cursor"] is None
    only = api.get(path, {"type": "admin_allocation"}).json()["data"]
    assert [row["id"] for row in only] == [first.pk]
    since = (clock.now - dt.timedelta(hours=1)).isoformat()
    assert [r["amount"] for r in api.get(path, {"created_gte": since}).json()["data"]] == ["-2.00"]
    before = api.get(path, {"created_lt": since}).json()["data"]
    assert [r["amount"] for r in before] == ["-1.00", "10.00"]
    page = api.get(path, {"limit": 2}).json()
    rest = api.get(path, {"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [r["amount"] for r in rest["data"]] == ["10.00"] and rest["next_cursor"] is None


def test_the_history_pages_name_the_key(api):
    member = UserFactory()
    api.post(f"/api/v1/customers/user_{member.pk}/credits", {"amount": "4"})
    services.add_credits(member, 1)  # no key, no person: "System", not "API: "
    staff = StaffFactory()
    client = Client()
    client.login(username=staff.email, password=PASSWORD)
    page = client.get(f"/customers/users/{member.pk}/transactions/").content.decode()
    assert "API: Bookings" in page
    csv = b"".join(client.get(f"/customers/users/{member.pk}/transactions/export.csv")).decode()
    assert "API: Bookings" in csv
    assert page.count("API: ") == csv.count("API: ") == 1
    assert "System" in page and "System" in csv
    mine = Client()
    mine.login(username=member.email, password=PASSWORD)
    members_page = mine.get(f"/membership/users/{member.pk}/transactions/")
    assert members_page.status_code == 200
    assert "API: Bookings" not in members_page.content.decode()
