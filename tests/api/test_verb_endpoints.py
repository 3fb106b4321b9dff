"""The ledger's other verbs through the API: holds, capture, release, refund, reverse,
transfers, charges on behalf of a member, and the key check (ping). Each endpoint's
success, its refusals with their statuses, unknown ids, a read key, and replays."""

import datetime as dt

import pytest

from api.models import ApiKeyChange, ApiKeyHold
from credits import services
from credits.models import CreditHold, CreditTransaction
from tests.api.conftest import assert_problem
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def in_hours(clock, hours: int) -> str:
    return (clock.now + dt.timedelta(hours=hours)).isoformat()


def hold(api, customer_path, clock, amount="4", key="hold-1", hours=2):
    return api.post(
        f"{customer_path}/holds", {"amount": amount, "expires_at": in_hours(clock, hours)}, key=key
    )


@pytest.fixture
def member(db):
    return UserFactory()


@pytest.fixture
def member_path(member):
    return f"/api/v1/customers/user_{member.pk}"


# --- Holds ------------------------------------------------------------------------------


def test_hold_201_with_the_hold_and_available_drops(api, clock, member, member_path):
    services.add_credits(member, 10)
    response = api.post(
        f"{member_path}/holds",
        {"amount": "4", "expires_at": "2026-06-01T18:00:00+02:00", "memo": "Room 3"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    made = CreditHold.objects.get()
    assert body == {
        "id": made.pk,
        "customer_id": f"user_{member.pk}",
        "amount": "4.00",
        "status": "held",
        "expires_at": "2026-06-01T16:00:00Z",
    }
    assert made.memo == "Room 3"
    assert ApiKeyHold.objects.get().hold == made
    customer = api.get(member_path).json()
    assert (customer["balance"], customer["held"], customer["available"]) == (
        "10.00",
        "4.00",
        "6.00",
    )


def test_hold_refusals(api, clock, member, member_path):
    services.add_credits(member, 3)
    refused = assert_problem(hold(api, member_path, clock, "3.01", key="a"), 409)
    assert refused["type"].endswith(":insufficient_credits") and refused["available"] == "3.00"
    past = assert_problem(hold(api, member_path, clock, key="b", hours=-1), 422)
    assert list(past["errors"]) == ["expires_at"]
    naive = {"amount": "1", "expires_at": "2026-06-01T18:00:00"}
    assert (
        "expires_at"
        in assert_problem(api.post(f"{member_path}/holds", naive, key="c"), 422)["errors"]
    )
    # An offset PostgreSQL does not take (beyond 15:59) is read as UTC, not a 500.
    odd = {"amount": "1", "expires_at": "2026-06-02T18:00:00+23:59"}
    assert api.post(f"{member_path}/holds", odd, key="d").status_code == 201
    unknown = f"/api/v1/customers/user_{member.pk + 1000}"
    assert_problem(hold(api, unknown, clock, key="e"), 404)
    assert CreditHold.objects.count() == 1


def test_capture_201_with_the_booking_and_the_rest_freed(api, clock, member, member_path):
    services.add_credits(member, 10)
    hold_id = hold(api, member_path, clock, "4").json()["id"]
    response = api.post(
        f"/api/v1/holds/{hold_id}/capture", {"amount": "3", "memo": "Used"}, key="c"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["type"], body["amount"], body["balance_after"]) == ("booking", "-3.00", "7.00")
    assert (body["hold_id"], body["memo"], body["actor"]) == (hold_id, "Used", "API: Bookings")
    assert [lot["amount"] for lot in body["lots"]] == ["3.00"]
    assert api.get(f"/api/v1/transactions/{body['id']}").json() == body
    assert api.get(member_path).json()["available"] == "7.00"
    again = assert_problem(api.post(f"/api/v1/holds/{hold_id}/capture", key="c2"), 409)
    assert again["type"].endswith(":hold_not_held") and "captured" in again["detail"]


def test_capture_without_a_body_takes_all_and_above_the_hold_is_422(
    api, clock, member, member_path
):
    services.add_credits(member, 10)
    hold_id = hold(api, member_path, clock, "4").json()["id"]
    above = api.post(f"/api/v1/holds/{hold_id}/capture", {"amount": "4.01"}, key="c1")
    assert list(assert_problem(above, 422)["errors"]) == ["amount"]
    # As `curl -X POST` sends it: no body, no content type.
    response = api.client.generic(
        "POST",
        f"/api/v1/holds/{hold_id}/capture",
        b"",
        HTTP_AUTHORIZATION=f"Bearer {api.key}",
        HTTP_IDEMPOTENCY_KEY="c2",
    )
    assert response.status_code == 201, response.content
    assert response.json()["amount"] == "-4.00"


def test_a_hold_whose_time_is_up_is_not_captured(api, clock, member, member_path):
    services.add_credits(member, 10)
    hold_id = hold(api, member_path, clock, "4", hours=1).json()["id"]
    clock.advance(hours=2)
    body = assert_problem(api.post(f"/api/v1/holds/{hold_id}/capture", key="c"), 409)
    assert "expired" in body["detail"]
    released = api.post(f"/api/v1/holds/{hold_id}/release", key="r")
    assert released.status_code == 200 and released.json()["status"] == "expired"


def test_release_200_with_the_hold_and_a_captured_one_is_409(api, clock, member, member_path):
    services.add_credits(member, 10)
    hold_id = hold(api, member_path, clock, "4").json()["id"]
    response = api.post(f"/api/v1/holds/{hold_id}/release", key="r1")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "released" and response.json()["id"] == hold_id
    assert api.get(member_path).json()["available"] == "10.00"
    # Releasing a released hold changes nothing and answers it as it is.
    assert api.post(f"/api/v1/holds/{hold_id}/release", key="r2").json()["status"] == "released"
    captured = hold(api, member_path, clock, "2", key="hold-2").json()["id"]
    assert api.post(f"/api/v1/holds/{captured}/capture", key="c").status_code == 201
    body = assert_problem(api.post(f"/api/v1/holds/{captured}/release", key="r3"), 409)
    assert body["type"].endswith(":hold_not_held")


def test_unknown_holds_are_404(api):
    for path in ("987654/capture", "987654/release", "abc/capture", "0/release"):
        assert_problem(api.post(f"/api/v1/holds/{path}", key=path), 404, "not_found")


# --- Refund and reverse -----------------------------------------------------------------


def test_refund_in_part_then_the_rest_then_409(api, clock, member, member_path):
    lot = services.add_credits(member, 10, expires_on=clock.today() + dt.timedelta(days=5)).lot
    charge = api.post(f"{member_path}/charges", {"amount": "5"}, key="charge").json()
    path = f"/api/v1/transactions/{charge['id']}/refund"
    response = api.post(path, {"amount": "2", "memo": "Cancelled"}, key="r1")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["type"], body["amount"], body["balance_after"]) == ("refund", "2.00", "7.00")
    assert (body["refunded_charge"], body["actor"]) == (charge["id"], "API: Bookings")
    assert body["lots"] == [
        {"lot_id": lot.pk, "amount": "2.00", "expires_on": lot.expires_on.isoformat()}
    ]
    above = assert_problem(api.post(path, {"amount": "3.01"}, key="r2"), 422)
    assert above["errors"] == {"amount": ["Only 3 credits of this booking can still be refunded."]}
    rest = api.post(path, key="r3")
    assert rest.status_code == 201 and rest.json()["amount"] == "3.00"
    again = assert_problem(api.post(path, key="r4"), 409, "refunded_already")
    assert again["detail"] == "This booking was refunded in full already."


def test_a_refund_of_an_expired_lot_comes_back_as_a_grace_lot(api, clock, member, member_path):
    services.add_credits(member, 5, expires_on=clock.today())
    charge = api.post(f"{member_path}/charges", {"amount": "2"}, key="charge").json()
    clock.advance(days=2)
    body = api.post(f"/api/v1/transactions/{charge['id']}/refund", key="r").json()
    [given] = body["lots"]
    assert given["amount"] == "2.00"
    assert given["expires_on"] == (clock.today() + dt.timedelta(days=7)).isoformat()


def test_only_a_booking_is_refunded(api, member):
    addition = services.add_credits(member, 5)
    body = assert_problem(api.post(f"/api/v1/transactions/{addition.pk}/refund"), 409)
    assert body["type"].endswith(":not_refundable")


def test_reverse_an_addition_then_twice_is_409(api, member):
    addition = services.add_credits(member, 10)
    services.deduct_credits(member, 4)
    path = f"/api/v1/transactions/{addition.pk}/reverse"
    response = api.post(path, {"memo": "Wrong customer"}, key="v1")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["type"], body["amount"], body["balance_after"]) == ("reversal", "-6.00", "0.00")
    assert (body["reverses"], body["memo"]) == (addition.pk, "Wrong customer")
    assert body["lots"] == [{"lot_id": addition.lot.pk, "amount": "6.00", "expires_on": None}]
    assert api.get(f"/api/v1/transactions/{addition.pk}").json()["reverses"] is None
    assert_problem(api.post(path, key="v2"), 409, "reversed_already")
    assert_problem(api.post(f"/api/v1/transactions/{body['id']}/reverse", key="v3"), 409)


def test_reverse_a_deduction_gives_back_what_it_took(api, member):
    lot = services.add_credits(member, 10).lot
    deduction = services.deduct_credits(member, 4)
    body = api.post(f"/api/v1/transactions/{deduction.pk}/reverse").json()
    assert (body["type"], body["amount"], body["balance_after"]) == ("reversal", "4.00", "10.00")
    assert body["lots"] == [{"lot_id": lot.pk, "amount": "4.00", "expires_on": None}]


def test_reverse_refusals_are_409_with_what_is_wrong(api, member, member_path):
    used = services.add_credits(member, 3)
    services.deduct_credits(member, 3)
    body = assert_problem(api.post(f"/api/v1/transactions/{used.pk}/reverse", key="a"), 409)
    assert body["type"].endswith(":nothing_left") and "Nothing is left" in body["detail"]
    services.add_credits(member, 5)
    booking = api.post(f"{member_path}/charges", {"amount": "1"}, key="charge").json()
    body = assert_problem(api.post(f"/api/v1/transactions/{booking['id']}/reverse", key="b"), 409)
    assert body["type"].endswith(":not_reversible")


def test_unknown_transactions_are_404(api):
    for path in ("987654/refund", "987654/reverse", "x1/refund", "-1/reverse"):
        assert_problem(api.post(f"/api/v1/transactions/{path}", key=path), 404, "not_found")


# --- Transfers --------------------------------------------------------------------------


def test_transfer_201_with_both_rows_keeping_their_dates(api, clock):
    membership = MembershipFactory()
    company, member = membership.company, membership.user
    expires = clock.today() + dt.timedelta(days=9)
    services.add_credits(company, 10, expires_on=expires)
    response = api.post(
        f"/api/v1/customers/company_{company.pk}/transfers",
        {"to": f"user_{member.pk}", "amount": "4", "memo": "For May"},
    )
    assert response.status_code == 201, response.content
    out_row, in_row = response.json()["transfer_out"], response.json()["transfer_in"]
    assert (out_row["type"], out_row["customer_id"], out_row["amount"]) == (
        "transfer_out",
        f"company_{company.pk}",
        "-4.00",
    )
    assert (in_row["type"], in_row["customer_id"], in_row["amount"]) == (
        "transfer_in",
        f"user_{member.pk}",
        "4.00",
    )
    assert [lot["expires_on"] for lot in in_row["lots"]] == [expires.isoformat()]
    assert out_row["actor"] == in_row["actor"] == "API: Bookings"
    assert ApiKeyChange.objects.count() == 2
    back = api.post(
        f"/api/v1/customers/user_{member.pk}/transfers",
        {"to": f"company_{company.pk}", "amount": "4.01"},
        key="k2",
    )
    assert assert_problem(back, 409, "insufficient_credits")["available"] == "4.00"


def test_transfer_refusals(api):
    membership = MembershipFactory()
    company = membership.company
    services.add_credits(company, 10)
    path = f"/api/v1/customers/company_{company.pk}/transfers"
    stranger = UserFactory()
    body = assert_problem(
        api.post(path, {"to": f"user_{stranger.pk}", "amount": "1"}, key="a"), 422
    )
    assert list(body["errors"]) == ["to"]
    itself = api.post(path, {"to": f"company_{company.pk}", "amount": "1"}, key="b")
    assert list(assert_problem(itself, 422)["errors"]) == ["to"]
    unknown = api.post(path, {"to": f"user_{stranger.pk + 1000}", "amount": "1"}, key="c")
    assert list(assert_problem(unknown, 404, "not_found")["errors"]) == ["to"]
    zero = api.post(path, {"to": f"user_{membership.user.pk}", "amount": "0"}, key="d")
    assert list(assert_problem(zero, 422)["errors"]) == ["amount"]
    missing = f"/api/v1/customers/company_{company.pk + 1000}/transfers"
    assert_problem(api.post(missing, {"to": f"user_{membership.user.pk}", "amount": "1"}), 404)
    assert not CreditTransaction.objects.filter(kind__startswith="transfer").exists()


# --- Charges on behalf of a member ------------------------------------------------------


def test_charge_on_behalf_of_a_member_within_their_monthly_limit(api):
    membership = MembershipFactory(monthly_credit_limit=5)
    company, member = membership.company, membership.user
    services.add_credits(company, 20)
    path = f"/api/v1/customers/company_{company.pk}/charges"
    on_behalf = {"on_behalf_of": f"user_{member.pk}"}
    response = api.post(path, {"amount": "3", **on_behalf}, key="a")
    assert response.status_code == 201, response.content
    assert response.json()["on_behalf_of"] == f"user_{member.pk}"
    over = assert_problem(api.post(path, {"amount": "3", **on_behalf}, key="b"), 409)
    assert over["type"].endswith(":credit_limit_exceeded") and over["remaining"] == "2.00"
    stranger = {"on_behalf_of": f"user_{UserFactory().pk}"}
    assert (
        "on_behalf_of" in assert_problem(api.post(path, {"amount": "1", **stranger}), 422)["errors"]
    )
    unknown = api.post(path, {"amount": "1", "on_behalf_of": f"user_{member.pk + 1000}"}, key="c")
    assert list(assert_problem(unknown, 404)["errors"]) == ["on_behalf_of"]
    of_a_user = f"/api/v1/customers/user_{member.pk}/charges"
    assert (
        "on_behalf_of"
        in assert_problem(api.post(of_a_user, {"amount": "1", **on_behalf}), 422)["errors"]
    )


# --- Keys, and each new POST replayed ---------------------------------------------------


def test_ping_names_the_key(api, reader):
    assert api.get("/api/v1/ping").json() == {"api_key": "Bookings", "scope": "write"}
    assert reader.get("/api/v1/ping").json() == {"api_key": "Accounting", "scope": "read"}
    assert_problem(api.client.get("/api/v1/ping"), 401)


def test_a_read_key_on_each_new_write_endpoint_is_403(reader, member_path):
    for path in (
        f"{member_path}/holds",
        f"{member_path}/transfers",
        "/api/v1/holds/1/capture",
        "/api/v1/holds/1/release",
        "/api/v1/transactions/1/refund",
        "/api/v1/transactions/1/reverse",
    ):
        assert_problem(reader.post(path, {}), 403, "insufficient_scope")


def _hold_path(api, clock, customer):
    path = f"/api/v1/customers/user_{customer.pk}"
    return f"/api/v1/holds/{hold(api, path, clock, '2', key='setup').json()['id']}"


REQUESTS = {
    "hold": lambda api, clock, customer: (
        f"/api/v1/customers/user_{customer.pk}/holds",
        {"amount": "2", "expires_at": in_hours(clock, 2)},
    ),
    "capture": lambda api, clock, customer: (
        f"{_hold_path(api, clock, customer)}/capture",
        {"amount": "1"},
    ),
    "release": lambda api, clock, customer: (f"{_hold_path(api, clock, customer)}/release", None),
    "refund": lambda api, clock, customer: (
        f"/api/v1/transactions/{services.charge_credits(customer, 2, kind='booking').pk}/refund",
        {"amount": "1"},
    ),
    "reverse": lambda api, clock, customer: (
        f"/api/v1/transactions/{services.deduct_credits(customer, 2).pk}/reverse",
        {},
    ),
    "transfer": lambda api, clock, customer: (
        f"/api/v1/customers/user_{customer.pk}/transfers",
        {"to": f"company_{MembershipFactory(user=customer).company.pk}", "amount": "1"},
    ),
}


@pytest.mark.parametrize("verb", REQUESTS)
def test_each_new_post_is_replayed_with_one_change(api, clock, member, verb):
    services.add_credits(member, 10)
    path, body = REQUESTS[verb](api, clock, member)

    def counts():
        return CreditTransaction.objects.count(), CreditHold.objects.count()

    before = counts()
    first = api.post(path, body, key="once")
    assert first.status_code in (200, 201), first.content
    after = counts()
    assert after != before or verb == "release"
    again = api.post(path, body, key="once")
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again["Idempotent-Replayed"] == "true"
    assert counts() == after
    if body is not None:  # a release has no body
        other = api.post(path, {**body, "memo": "another"}, key="once")
        assert_problem(other, 409, "idempotency_conflict")
