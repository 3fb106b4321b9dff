"""Odd values in the query string of every transaction list and CSV never answer a 500.

A list page ignores the bad filter or cursor and says why beside the filters (200, as for
any invalid date); a CSV cannot show a message, so it answers 400 with one instead of
exporting rows the filters did not ask for. The CSV takes no cursor and ignores one.
"""

import pytest
from django.urls import reverse
from django.utils.html import escape

from credits import services
from tests.factories import CompanyFactory, MembershipFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

ODD_VALUES = [
    "9999-12-31",
    "0001-01-01",
    "10000-01-01",
    "²",
    "١٠",
    "５",
    "-1",
    "1e9",
    "9" * 30,
    "null",
    "\x00",
    "2026-06-01\x00",
    "x" * 5000,
]
FILTERS = ["date_from", "date_to", "kind"]
CURSORS = ["before", "after"]


@pytest.fixture
def maria(clock):
    maria = UserFactory(first_name="Maria")
    services.add_credits(maria, 10, memo="Welcome bonus")
    return maria


@pytest.fixture
def acme(clock, maria):
    acme = CompanyFactory(name="Acme Ltd")
    MembershipFactory(company=acme, user=maria, role="manager")
    services.add_credits(acme, 30)
    return acme


def staff_urls(customer, owner):
    return (
        reverse("credits:transactions", args=[owner, customer.pk]),
        reverse("credits:transactions_csv", args=[owner, customer.pk]),
    )


def member_urls(customer, owner):
    return (
        reverse("member:transactions", args=[owner, customer.pk]),
        reverse("member:transactions-csv", args=[owner, customer.pk]),
    )


@pytest.fixture(params=["staff-user", "staff-company", "member-user", "member-company"])
def views(request, client, maria, acme):
    """(list URL, CSV URL) of one of the four transaction lists, its reader logged in."""
    side, kind = request.param.split("-")
    customer, owner = (maria, "user") if kind == "user" else (acme, "company")
    owner = {"user": "users", "company": "companies"}[owner]
    if side == "staff":
        client.force_login(StaffFactory())
        return staff_urls(customer, owner)
    client.force_login(maria)
    return member_urls(customer, owner)


@pytest.fixture
def list_url(views):
    return views[0]


@pytest.fixture
def csv_url(views):
    return views[1]


def _shown_errors(response, param):
    errors = response.context["form"].errors.get(param, [])
    html = response.content.decode()
    return errors, [error for error in errors if escape(error) in html]


@pytest.mark.parametrize("value", ODD_VALUES)
@pytest.mark.parametrize("param", FILTERS + CURSORS)
def test_a_list_ignores_an_odd_value_and_says_why(client, list_url, param, value):
    response = client.get(list_url, {param: value})
    assert response.status_code == 200
    errors, shown = _shown_errors(response, param)
    assert errors, f"{param}={value!r} was accepted"
    assert shown == errors  # each message is on the page, not only in the form
    assert "Welcome bonus" in response.content.decode() or "Acme" in response.content.decode()


@pytest.mark.parametrize("param", FILTERS + CURSORS)
def test_an_empty_value_is_no_filter(client, list_url, param):
    response = client.get(list_url, {param: ""})
    assert response.status_code == 200
    assert not response.context["form"].errors


@pytest.mark.parametrize("value", ODD_VALUES)
@pytest.mark.parametrize("param", FILTERS)
def test_a_csv_with_an_odd_filter_is_refused_with_a_message(client, csv_url, param, value):
    response = client.get(csv_url, {param: value})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert body.startswith("The transactions were not exported:")
    assert "Enter a" in body or "Select a valid choice" in body


@pytest.mark.parametrize("value", ODD_VALUES)
@pytest.mark.parametrize("param", CURSORS)
def test_a_csv_ignores_a_cursor_it_does_not_take(client, csv_url, param, value):
    response = client.get(csv_url, {param: value})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")


def test_a_date_range_to_the_end_of_time_is_refused_with_its_bounds(client, maria):
    client.force_login(maria)
    list_url, csv_url = member_urls(maria, "users")
    response = client.get(list_url, {"date_to": "9999-12-31"})
    assert response.context["form"].errors["date_to"] == [
        "Enter a date between 1 Jan 1900 and 31 Dec 2999."
    ]
    assert client.get(csv_url, {"date_to": "2999-12-31"}).status_code == 200
    assert client.get(csv_url, {"date_from": "1900-01-01"}).status_code == 200


def test_a_huge_customer_id_in_the_path_is_not_found(client, maria):
    client.force_login(StaffFactory())
    huge = 10**30
    assert client.get(f"/customers/users/{huge}/transactions/").status_code == 404
    assert client.get(f"/customers/users/{huge}/transactions/export.csv").status_code == 404
    client.force_login(maria)
    assert client.get(f"/membership/users/{huge}/transactions/").status_code == 404
    assert client.get(f"/membership/companies/{huge}/transactions.csv").status_code == 404


# Every kind but subscription_expiration is recorded now (the API, the ledger's verbs).
@pytest.mark.parametrize("kind", ["subscription_expiration"])
def test_a_reserved_kind_is_not_offered_and_is_an_odd_value_like_any_other(client, views, kind):
    list_url, csv_url = views
    response = client.get(list_url, {"kind": kind})
    assert response.status_code == 200
    errors, shown = _shown_errors(response, "kind")
    assert errors and shown == errors
    assert f'value="{kind}"' not in response.content.decode()  # not an option of "Type"
    assert client.get(csv_url, {"kind": kind}).status_code == 400
