"""The Customers page at 1,000 members: a result count, sorting by name and balance, a
filter for inactive and staff accounts, and a CSV of every customer's balance."""

import csv
import datetime as dt
import io
import re

import pytest

from credits import services
from customers import services as customer_services
from customers.models import User
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db


def names(page) -> list[str]:
    return re.findall(r'class="row-link" href="[^"]+">([^<]+)</a>', page.content.decode())


@pytest.fixture
def people(adjuster, clock):
    ana = UserFactory(first_name="Ana", last_name="Alves", email="ana@example.com")
    bo = UserFactory(first_name="Bo", last_name="Berg", email="bo@example.com", is_active=False)
    cy = UserFactory(first_name="Cy", last_name="Cole", email="cy@example.com")
    services.add_credits(ana, 5)
    services.add_credits(cy, 50)
    services.add_credits(bo, 20, expires_on=dt.date(2026, 6, 20))
    return {"ana": ana, "bo": bo, "cy": cy}


def test_the_count_of_results(client, people):
    page = client.get("/customers/").content.decode()
    assert re.search(r'<p id="result-count"[^>]*role="status"[^>]*>4 users</p>', page)
    one = client.get("/customers/?q=ana").content.decode()
    assert '<p id="result-count" class="result-count muted" role="status"' in one
    assert 'aria-live="polite">1 user</p>' in one
    # An htmx search answers the list and the new count, for the live region outside it.
    part = client.get("/customers/?q=ana", headers={"HX-Request": "true"}).content.decode()
    assert '<span id="result-count" hx-swap-oob="innerHTML">1 user</span>' in part
    CompanyFactory(name="Acme Ltd")
    assert ">1 company</p>" in client.get("/customers/?tab=companies").content.decode()


def test_sorting_by_name_and_by_balance(client, people):
    assert names(client.get("/customers/?accounts=all")) == [
        "Ada Admin",
        "Ana Alves",
        "Bo Berg",
        "Cy Cole",
    ]
    assert names(client.get("/customers/?sort=-name")) == [
        "Cy Cole",
        "Bo Berg",
        "Ana Alves",
        "Ada Admin",
    ]
    assert names(client.get("/customers/?sort=balance")) == [
        "Ada Admin",
        "Ana Alves",
        "Bo Berg",
        "Cy Cole",
    ]
    assert names(client.get("/customers/?sort=-balance")) == [
        "Cy Cole",
        "Bo Berg",
        "Ana Alves",
        "Ada Admin",
    ]
    page = client.get("/customers/?sort=-balance").content.decode()
    assert 'aria-sort="descending"' in page
    assert 'href="?sort=balance"' in page  # the header sorts the other way next
    assert '<option value="-balance" selected>Balance, highest first</option>' in page


def test_balances_sort_by_what_can_be_spent_now(client, people, clock):
    clock.advance(days=30)  # Bo's 20 credits expired on 20 June (not yet swept)
    assert names(client.get("/customers/?sort=-balance"))[:2] == ["Cy Cole", "Ana Alves"]


def test_the_filter_for_inactive_and_staff_accounts(client, people):
    assert names(client.get("/customers/?accounts=inactive")) == ["Bo Berg"]
    assert names(client.get("/customers/?accounts=staff")) == ["Ada Admin"]
    assert names(client.get("/customers/?accounts=active")) == ["Ada Admin", "Ana Alves", "Cy Cole"]
    empty = client.get("/customers/?accounts=inactive&q=zed").content.decode()
    assert "No users match “zed” among inactive accounts." in empty


@pytest.mark.parametrize("bad", ["sort=price", "sort=%00", "accounts=robots", "accounts="])
def test_an_unknown_sort_or_filter_shows_the_default_list(client, people, bad):
    response = client.get(f"/customers/?{bad}")
    assert response.status_code == 200
    assert names(response) == ["Ada Admin", "Ana Alves", "Bo Berg", "Cy Cole"]


def test_pages_keep_the_sort_and_the_filter(client, adjuster):
    for n in range(60):
        UserFactory(first_name=f"Person{n:02}", last_name="X", is_active=n % 2 == 0)
    page = client.get("/customers/?accounts=active&sort=-name").content.decode()
    assert 'href="?sort=-name&amp;accounts=active&amp;page=2"' in page
    second = client.get("/customers/?sort=-name&accounts=active&page=2")
    assert names(second) == [f"Person{n:02} X" for n in (8, 6, 4, 2, 0)] + ["Ada Admin"]


def test_the_csv_has_every_customers_balance_and_expiring_credits(client, people, clock):
    acme = CompanyFactory(name="=Acme Ltd", email="billing@acme.example")
    services.add_credits(acme, 7, expires_on=dt.date(2026, 6, 10))
    services.add_credits(acme, 3, expires_on=dt.date(2026, 12, 31))
    gone = UserFactory(first_name="Gus", last_name="Gone")
    services.add_credits(gone, 1)
    customer_services.anonymise_user(gone, by=User.objects.create_superuser("r@example.com", "x"))
    response = client.get("/customers/balances.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="customers-balances-2026-06-01.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "Type",
        "Customer ID",
        "Name",
        "Email",
        "Active",
        "Balance",
        "Expiring within 30 days",
        "Next expiration",
        "Expiring then",
    ]
    by_id = {row[1]: row for row in rows[1:]}
    assert len(by_id) == 7  # 6 users (the superuser too) and the company
    assert by_id[f"user_{people['bo'].pk}"] == [
        "User",
        f"user_{people['bo'].pk}",
        "Bo Berg",
        "bo@example.com",
        "no",
        "20.00",
        "20.00",
        "2026-06-20",
        "20.00",
    ]
    assert by_id[f"user_{people['cy'].pk}"][4:] == ["yes", "50.00", "0.00", "", ""]
    assert by_id[f"company_{acme.pk}"] == [
        "Company",
        f"company_{acme.pk}",
        "'=Acme Ltd",
        "billing@acme.example",
        "",
        "10.00",
        "7.00",
        "2026-06-10",
        "7.00",
    ]
    assert by_id[f"user_{gone.pk}"][2:4] == [f"Former member #{gone.pk}", ""]
    assert rows[-1][0] == "Company"  # users first, then companies


def test_only_staff_get_the_csv(client):
    member = UserFactory()
    client.force_login(member)
    assert client.get("/customers/balances.csv").status_code == 403
    client.logout()
    assert client.get("/customers/balances.csv").status_code == 302


def test_the_list_stays_a_few_queries_at_a_thousand_users(
    client, adjuster, django_assert_max_num_queries
):
    User.objects.bulk_create(
        User(email=f"bulk{n}@example.com", first_name=f"Bulk{n}", is_active=n % 3 != 0)
        for n in range(1000)
    )
    with django_assert_max_num_queries(8):
        page = client.get("/customers/?sort=-balance&accounts=inactive")
    assert ">334 users</p>" in page.content.decode()
