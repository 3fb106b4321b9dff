"""Walking the cursors while rows are being added: each row exactly once."""

import threading

import pytest
from django.db import connection

from credits import services
from tests.api.conftest import ApiClient
from tests.factories import UserFactory


@pytest.mark.django_db(transaction=True)
def test_a_walk_over_120_rows_while_20_more_are_added_sees_each_of_the_120_once(write_key):
    member = UserFactory()
    existing = [services.add_credits(member, 1, memo=f"row {n}").pk for n in range(120)]
    client = ApiClient(write_key.key)
    path = f"/api/v1/customers/user_{member.pk}/transactions"
    first = client.get(path, {"limit": 7}).json()  # the walk starts before the additions
    page_done = threading.Event()
    walk_over = threading.Event()
    added = []

    def add_while_walking():
        try:
            for n in range(20):
                if not walk_over.is_set():  # one addition per page while the walk lasts
                    page_done.wait(timeout=10)
                    page_done.clear()
                added.append(services.add_credits(member, 1, memo=f"new {n}").pk)
        finally:
            connection.close()

    adder = threading.Thread(target=add_while_walking)
    adder.start()
    seen = [row["id"] for row in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(path, {"limit": 7, "cursor": cursor}).json()
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
        page_done.set()
    walk_over.set()
    page_done.set()
    adder.join(timeout=30)
    assert len(added) == 20
    assert seen == list(reversed(existing))  # each once, newest first, none of the new ones
    newest = client.get(path, {"limit": 20}).json()["data"]
    assert [row["id"] for row in newest] == list(reversed(added))
