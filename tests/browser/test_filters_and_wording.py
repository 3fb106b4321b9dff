"""The transaction filters and the words of the same actions on staff and member pages
(issue 15, items 4 and 7)."""

import pytest

from credits import services
from customers.models import User
from tests.factories import PASSWORD, UserFactory


@pytest.fixture
def admin(db):
    return User.objects.create_superuser(
        email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Admin"
    )


@pytest.fixture
def maria(db):
    maria = UserFactory(first_name="Maria", last_name="Garcia", email="maria@example.com")
    services.add_credits(maria, 20, memo="Welcome bonus")
    services.deduct_credits(maria, 5, memo="Printing")
    return maria


@pytest.mark.django_db(transaction=True)
def test_arrowing_through_the_type_filter_sends_one_request(page, login, admin, maria):
    login(admin.email, PASSWORD)
    page.goto(f"/customers/users/{maria.pk}/transactions/")
    requests = []
    page.on(
        "request",
        lambda request: (
            requests.append(request.url)
            if request.headers.get("hx-request") and "/transactions/" in request.url
            else None
        ),
    )
    page.get_by_label("Type").focus()
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    page.wait_for_timeout(1500)
    assert len(requests) == 1, requests
    # The list shows the type the keys stopped at.
    chosen = page.get_by_label("Type").evaluate("select => select.value")
    assert f"kind={chosen}" in requests[0]
