import datetime as dt

from credits.forms import TransactionFilterForm


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
