"""Odd `?page=` values on the customers list: the first (or last) page, saying why."""

import pytest
from django.urls import reverse

from tests.credits.test_odd_query_values import ODD_VALUES
from tests.factories import CompanyFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

NOT_A_PAGE = "That is not a page number: this is the first page."


@pytest.mark.parametrize("tab", ["users", "companies"])
@pytest.mark.parametrize("value", ODD_VALUES)
def test_an_odd_page_number_shows_the_first_page_and_says_so(client, tab, value):
    client.force_login(StaffFactory())
    UserFactory(first_name="Zelda")
    CompanyFactory(name="Zeta Ltd")
    response = client.get(reverse("customers:list"), {"tab": tab, "page": value})
    assert response.status_code == 200
    html = response.content.decode()
    assert NOT_A_PAGE in html
    assert ("Zelda" if tab == "users" else "Zeta Ltd") in html


def test_a_page_past_the_end_shows_the_last_and_says_so(client):
    client.force_login(StaffFactory())
    response = client.get(reverse("customers:list"), {"page": "7"})
    assert response.status_code == 200
    assert "There is no page 7: this is the last page." in response.content.decode()


def test_no_page_or_a_real_page_says_nothing(client):
    client.force_login(StaffFactory())
    for params in [{}, {"page": ""}, {"page": "1"}]:
        html = client.get(reverse("customers:list"), params).content.decode()
        assert "this is the first page" not in html and "this is the last page" not in html


def test_the_htmx_results_say_it_too(client):
    client.force_login(StaffFactory())
    response = client.get(
        reverse("customers:list"),
        {"page": "²"},
        headers={"HX-Request": "true", "HX-Target": "customer-results"},
    )
    assert response.status_code == 200 and NOT_A_PAGE in response.content.decode()


@pytest.mark.parametrize("tab", ["users", "companies"])
@pytest.mark.parametrize("query", ["\x00", "Zel\x00da", "\x1b[31m", "x" * 10_000])
def test_an_odd_search_is_a_search_not_an_error(client, tab, query):
    """No stored name holds a NUL or a control character, so leaving them out of the words
    finds what the member meant (PostgreSQL refuses a NUL in a query outright)."""
    client.force_login(StaffFactory())
    UserFactory(first_name="Zelda")
    response = client.get(reverse("customers:list"), {"tab": tab, "q": query})
    assert response.status_code == 200
    if tab == "users" and query == "Zel\x00da":
        assert "Zelda" in response.content.decode()
