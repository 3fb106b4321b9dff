import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from credits import selectors, services
from tests.factories import CompanyFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "HX-Target": "adjust-dialog-body"}


@pytest.fixture
def maria(clock):
    maria = UserFactory(first_name="Maria", last_name="Garcia")
    services.add_credits(maria, 10, memo="Welcome bonus")
    return maria


def adjust_url(customer):
    owner = "companies" if customer.__class__.__name__ == "Company" else "users"
    return reverse("credits:adjust", args=[owner, customer.pk])


def post_adjustment(client, customer, *, headers=HTMX, **fields):
    data = {"kind": "add", "expiry": "never", "amount": "25", "memo": "", "idempotency_key": "k1"}
    data.update(fields)
    return client.post(adjust_url(customer), data, headers=headers)


def ledger(customer):
    return list(selectors.get_transactions(customer).values_list("kind", "amount"))


# --- Permissions ------------------------------------------------------------------------


def test_anonymous_post_is_sent_to_log_in_and_changes_nothing(client, maria):
    response = post_adjustment(client, maria)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert selectors.get_balance(maria) == 10


def test_member_post_is_refused(client, maria):
    client.force_login(maria)
    assert post_adjustment(client, maria).status_code == 403
    assert client.get(adjust_url(maria)).status_code == 403
    assert selectors.get_balance(maria) == 10


def test_staff_without_the_permission_get_403_and_nothing_changes(client, maria):
    client.force_login(StaffFactory())
    assert client.get(adjust_url(maria)).status_code == 403
    assert post_adjustment(client, maria, amount="1000").status_code == 403
    assert selectors.get_balance(maria) == 10
    assert len(ledger(maria)) == 1


@pytest.mark.parametrize(
    "kind, amount, toast",
    [
        ("add", "12.5", "Added 12.50 credits to Maria Garcia's balance."),
        ("add", "1000", "Added 1,000 credits to Maria Garcia's balance."),
        ("deduct", "1", "Deducted 1 credit from Maria Garcia's balance."),
    ],
)
def test_the_toast_writes_the_amount_as_balances_are_written(
    client, adjuster, maria, kind, amount, toast
):
    response = post_adjustment(client, maria, kind=kind, amount=amount)
    assert json.loads(response["HX-Trigger"])["showToast"] == {"message": toast}


def test_superusers_may_adjust(client, maria):
    client.force_login(StaffFactory(is_superuser=True))
    assert post_adjustment(client, maria).status_code == 204
    assert selectors.get_balance(maria) == 35


# --- Adjusting --------------------------------------------------------------------------


def test_adding_with_htmx_records_it_and_tells_the_page(client, adjuster, maria, clock):
    response = post_adjustment(
        client,
        maria,
        amount="10",
        expiry="date",
        expires_on="2026-07-01",
        memo="Event credits",
    )
    assert response.status_code == 204
    events = json.loads(response["HX-Trigger"])
    assert events["showToast"] == {"message": "Added 10 credits to Maria Garcia's balance."}
    assert "creditsChanged" in events and "closeDialog" in events
    assert selectors.get_expiration_breakdown(maria) == [
        (dt.date(2026, 7, 1), Decimal("10.00")),
        (None, Decimal("10.00")),
    ]
    added = selectors.get_transactions(maria).first()
    assert added.actor == adjuster and added.memo == "Event credits"


def test_deducting_ignores_an_expiration(client, adjuster, maria):
    response = post_adjustment(
        client, maria, kind="deduct", amount="4", expiry="date", expires_on="2026-07-01"
    )
    assert response.status_code == 204
    assert selectors.get_balance(maria) == 6
    assert "Deducted 4 credits" in json.loads(response["HX-Trigger"])["showToast"]["message"]


def test_a_double_post_records_one_adjustment(client, adjuster, maria):
    first = post_adjustment(client, maria, idempotency_key="same-form")
    second = post_adjustment(client, maria, idempotency_key="same-form")
    assert first.status_code == second.status_code == 204
    assert selectors.get_balance(maria) == 35
    assert len(ledger(maria)) == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": "-5"}, "Enter an amount greater than 0."),
        ({"amount": "0"}, "Enter an amount greater than 0."),
        ({"amount": "1.234"}, "Use at most 2 decimal places."),
        ({"amount": "2000000"}, "Enter an amount of at most 1,000,000 credits."),
        ({"amount": "lots"}, "Enter the amount as a number."),
        ({"amount": ""}, "Enter the amount."),
        ({"kind": ""}, "Choose Add or Deduct."),
        ({"expiry": "date", "expires_on": ""}, "Choose the date the credits expire, or Never."),
        ({"expiry": "date", "expires_on": "2026-05-31"}, "cannot be in the past"),
        ({"kind": "deduct", "amount": "11"}, "Only 10 credits are available."),
        ({"memo": "x" * 501}, "500 characters"),
    ],
)
def test_bad_input_comes_back_422_next_to_its_field_and_changes_nothing(
    client, adjuster, maria, fields, message
):
    response = post_adjustment(client, maria, **fields)
    assert response.status_code == 422
    body = response.content.decode()
    assert message in body
    assert 'aria-invalid="true"' in body
    assert "<html" not in body  # only the form, for htmx to swap into the dialog
    assert selectors.get_balance(maria) == 10
    assert len(ledger(maria)) == 1


def test_same_key_for_different_content_is_refused(client, adjuster, maria):
    post_adjustment(client, maria, idempotency_key="k", amount="1")
    response = post_adjustment(client, maria, idempotency_key="k", amount="2")
    assert response.status_code == 422
    assert "already used for a different adjustment" in response.content.decode()
    assert selectors.get_balance(maria) == 11


def test_without_javascript_the_form_is_a_page_and_success_redirects(client, adjuster, maria):
    page = client.get(adjust_url(maria))
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert 'name="idempotency_key"' in page.content.decode()

    response = post_adjustment(client, maria, headers={}, amount="3", kind="deduct")
    assert response.status_code == 302 and response["Location"] == maria.get_absolute_url()
    followed = client.get(response["Location"]).content.decode()
    assert "Deducted 3 credits from Maria Garcia&#x27;s balance." in followed
    assert selectors.get_balance(maria) == 7

    invalid = post_adjustment(client, maria, headers={}, amount="", idempotency_key="k2")
    assert invalid.status_code == 422 and "<html" in invalid.content.decode()


def test_a_company_balance_can_be_adjusted(client, adjuster, clock):
    acme = CompanyFactory(name="Acme Ltd")
    assert post_adjustment(client, acme, amount="200").status_code == 204
    assert selectors.get_balance(acme) == 200


# --- Transactions page and CSV ------------------------------------------------------------


def transactions_url(customer, name="credits:transactions"):
    return reverse(name, args=["users", customer.pk])


def test_transactions_page_is_staff_only(client, maria):
    assert client.get(transactions_url(maria)).status_code == 302
    client.force_login(maria)
    assert client.get(transactions_url(maria)).status_code == 403
    assert client.get(transactions_url(maria, "credits:transactions_csv")).status_code == 403


def test_transactions_page_filters_by_type_and_date(client, adjuster, maria, clock):
    clock.advance(days=2)
    services.deduct_credits(maria, 3, memo="Printing", actor=adjuster)
    clock.advance(days=2)
    services.add_credits(maria, 4, memo="Goodwill", actor=adjuster)

    everything = client.get(transactions_url(maria)).content.decode()
    assert "Printing" in everything and "Goodwill" in everything and "Welcome bonus" in everything
    assert "Deducted by admin" in everything and "Ada Admin" in everything

    charges = client.get(transactions_url(maria), {"kind": "admin_charge"}).content.decode()
    assert "Printing" in charges and "Goodwill" not in charges and "Welcome bonus" not in charges

    window = client.get(
        transactions_url(maria), {"date_from": "2026-06-03", "date_to": "2026-06-03"}
    ).content.decode()
    assert "Printing" in window and "Goodwill" not in window and "Welcome bonus" not in window

    backwards = client.get(
        transactions_url(maria), {"date_from": "2026-06-05", "date_to": "2026-06-01"}
    ).content.decode()
    assert "The end date must be on or after the start date." in backwards
    assert "Goodwill" in backwards  # the valid "From" still applies
    assert "Welcome bonus" not in backwards and "Printing" not in backwards


def test_transactions_are_paged_by_keyset(client, adjuster, maria):
    for index in range(30):
        services.add_credits(maria, 1, memo=f"Row {index:02}")
    first = client.get(transactions_url(maria)).content.decode()
    assert "Row 29" in first and "Row 05" in first and "Row 04" not in first
    assert "before=" in first and "OFFSET" not in first
    oldest_on_page = selectors.get_transactions(maria)[24].seq
    second = client.get(transactions_url(maria), {"before": oldest_on_page}).content.decode()
    assert "Row 04" in second and "Welcome bonus" in second and "Row 05" not in second
    assert "← Newer" in second


def test_htmx_filtering_returns_only_the_list(client, adjuster, maria):
    response = client.get(
        transactions_url(maria),
        {"kind": "admin_allocation"},
        headers={"HX-Request": "true", "HX-Target": "transaction-list"},
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="transaction-list"')
    assert "Download CSV" in body and "kind=admin_allocation" in body


def test_csv_export_streams_the_filtered_rows_as_plain_numbers(client, adjuster, maria, clock):
    services.deduct_credits(maria, "2.5", memo="=HYPERLINK()", actor=adjuster)
    services.add_credits(maria, 1000, expires_on=dt.date(2026, 12, 31), actor=adjuster)

    response = client.get(transactions_url(maria, "credits:transactions_csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="maria-garcia-transactions-2026-06-01.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "Date",
        "Type",
        "Memo",
        "Amount",
        "Balance after",
        "Expires on",
        "By",
        "Related",
        "Credits used or given back",
    ]
    assert [row[:7] for row in rows[1:]] == [
        ["2026-06-01 12:00", "Added by admin", "", "1000.00", "1007.50", "2026-12-31", "Ada Admin"],
        [
            "2026-06-01 12:00",
            "Deducted by admin",
            "'=HYPERLINK()",
            "-2.50",
            "7.50",
            "",
            "Ada Admin",
        ],
        ["2026-06-01 12:00", "Added by admin", "Welcome bonus", "10.00", "10.00", "", "System"],
    ]
    assert rows[2][8] == "2.50 from credits that never expire"

    charges = client.get(
        transactions_url(maria, "credits:transactions_csv"), {"kind": "admin_charge"}
    )
    charge_rows = list(csv.reader(io.StringIO(b"".join(charges.streaming_content).decode())))
    assert [row[1] for row in charge_rows[1:]] == ["Deducted by admin"]


def test_profile_and_transactions_pages_do_not_read_the_whole_history(
    client, adjuster, maria, django_assert_max_num_queries
):
    for index in range(40):
        services.add_credits(maria, 1, memo=f"Row {index}")
    # 12, and the other verbs' three: the active holds, the rows related to the recent
    # ones, and which of them still hold credits to reverse.
    with django_assert_max_num_queries(15):
        profile = client.get(maria.get_absolute_url())
    assert profile.status_code == 200
    assert "Row 39" in profile.content.decode()  # the newest rows are shown
    # 8, and the rows related to the page's and which of them still hold credits to reverse.
    with django_assert_max_num_queries(10) as captured:
        listing = client.get(transactions_url(maria))
    page = listing.content.decode()
    assert listing.status_code == 200
    assert "Row 39" in page and "Row 15" in page  # one page of 25, newest first
    assert "Row 14" not in page
    # Every read of the ledger is bounded: a LIMIT, or the rows related to the page's own
    # (by their ids, through unique or foreign-key indexes); no COUNT, no OFFSET.
    ledger_reads = [q["sql"] for q in captured if '"credits_credittransaction"' in q["sql"]]
    assert ledger_reads
    for sql in ledger_reads:
        assert "COUNT(" not in sql and "OFFSET" not in sql
        assert "LIMIT" in sql or "EXISTS" in sql.upper() or " IN (" in sql
