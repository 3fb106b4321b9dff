import datetime as dt

from credits.forms import AdjustBalanceForm, TransactionFilterForm


def test_one_bad_filter_keeps_the_valid_ones():
    form = TransactionFilterForm(
        {"kind": "admin_charge", "date_from": "2026-06-10", "date_to": "x"}
    )
    assert not form.is_valid()
    assert "date_to" in form.errors
    assert form.filters() == {
        "kinds": ["admin_charge"],
        "date_from": dt.date(2026, 6, 10),
        "date_to": None,
    }


def test_end_before_start_is_refused_with_a_message():
    form = TransactionFilterForm({"date_from": "2026-06-10", "date_to": "2026-06-01"})
    assert form.errors["date_to"] == ["The end date must be on or after the start date."]
    assert form.filters()["date_from"] == dt.date(2026, 6, 10)


def test_no_filters_means_everything():
    assert TransactionFilterForm(None).filters() == {
        "kinds": None,
        "date_from": None,
        "date_to": None,
    }


def _adjust_form(**fields):
    form = AdjustBalanceForm({"kind": "add", "amount": "5", "idempotency_key": "k", **fields})
    form.is_valid()
    return form


def test_adjust_form_expiration_never_wins_over_a_leftover_date():
    form = _adjust_form(expiry="never", expires_on="2030-01-31")
    assert form.is_valid()
    assert form.cleaned_data["expires_on"] is None
    assert "expiry" not in form.cleaned_data  # not an argument of services.adjust_balance


def test_adjust_form_on_a_date_needs_the_date():
    assert _adjust_form(expiry="date", expires_on="2030-01-31").cleaned_data["expires_on"] == (
        dt.date(2030, 1, 31)
    )
    form = _adjust_form(expiry="date")
    assert not form.is_valid()
    assert form.errors["expires_on"] == ["Choose the date the credits expire, or Never."]


def test_adjust_form_without_the_choice_reads_the_date_alone():
    # The Django admin's adjust page shows the radios unchecked; a date alone means that date.
    assert _adjust_form(expires_on="2030-01-31").cleaned_data["expires_on"] == dt.date(2030, 1, 31)
    assert _adjust_form().cleaned_data["expires_on"] is None


def test_adjust_form_deduction_drops_the_expiration():
    form = _adjust_form(kind="deduct", expiry="date", expires_on="2030-01-31")
    assert form.is_valid() and form.cleaned_data["expires_on"] is None


def test_the_type_filter_offers_only_the_kinds_something_records():
    offered = [value for value, _ in TransactionFilterForm().fields["kind"].choices]
    assert offered == [
        "",
        "admin_allocation",
        "admin_charge",
        "expiration",
        "purchase_allocation",
        "subscription_allocation",
        "booking",
        "refund",
        "reversal",
        "transfer_in",
        "transfer_out",
    ]


def test_a_reserved_kind_in_the_url_is_an_invalid_filter_like_any_other():
    form = TransactionFilterForm({"kind": "subscription_expiration", "date_from": "2026-06-10"})
    assert not form.is_valid()
    assert form.filters() == {"kinds": None, "date_from": dt.date(2026, 6, 10), "date_to": None}
    assert form.filter_errors() == [
        "Type: Select a valid choice. subscription_expiration is not one of the available choices."
    ]
    unknown = TransactionFilterForm({"kind": "gift"})
    assert unknown.filters()["kinds"] is None and len(unknown.filter_errors()) == 1


def test_one_transfer_form_with_the_staffs_or_a_managers_words():
    from credits.forms import TransferForm

    staff, manager = TransferForm(), TransferForm(by="manager")
    assert [label for _, label in staff.fields["direction"].choices] == [
        "From this customer",
        "To this customer",
    ]
    assert staff.fields["other"].label == "Other customer"
    assert [label for _, label in manager.fields["direction"].choices] == [
        "From the company to the member",
        "From the member to the company",
    ]
    assert manager.fields["other"].label == "Member"
    assert manager.fields["memo"].help_text == "Optional. The member and the managers see it."
