import datetime as dt
from decimal import Decimal

import pytest

from credits import charts, selectors, services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_history_starts_from_the_balance_before_the_window_and_ends_with_today(
    clock, django_assert_max_num_queries
):
    maria = UserFactory()
    clock.set_local(2026, 1, 10)
    services.add_credits(maria, 10)  # before the 90-day window
    clock.set_local(2026, 4, 12, 9)
    services.deduct_credits(maria, 3)
    clock.set_local(2026, 4, 12, 18)
    services.add_credits(maria, "0.5")  # the day's last balance counts
    clock.set_local(2026, 5, 31)
    services.add_credits(maria, 5, expires_on=dt.date(2026, 5, 31))
    clock.set_local(2026, 6, 1, 12)  # those 5 expired at midnight; not yet swept

    with django_assert_max_num_queries(3):
        history = dict(selectors.get_balance_history(maria))

    assert len(history) == 90
    assert min(history) == dt.date(2026, 3, 4) and max(history) == dt.date(2026, 6, 1)
    assert history[dt.date(2026, 3, 4)] == Decimal("10.00")
    assert history[dt.date(2026, 4, 11)] == Decimal("10.00")
    assert history[dt.date(2026, 4, 12)] == Decimal("7.50")
    assert history[dt.date(2026, 5, 31)] == Decimal("12.50")
    assert history[dt.date(2026, 6, 1)] == Decimal("7.50")  # today: what can be spent now


def test_a_customer_without_history_has_a_flat_zero_line(clock):
    history = selectors.get_balance_history(UserFactory())
    assert {balance for _, balance in history} == {Decimal("0.00")}
    chart = charts.balance_chart(history)
    assert chart.line == f"M0,{chart.height}.0H{chart.width}"
    assert chart.top == 0


def test_chart_steps_where_the_balance_changes():
    days = [dt.date(2026, 6, day) for day in range(1, 5)]
    chart = charts.balance_chart(list(zip(days, map(Decimal, [0, 10, 10, 5]), strict=True)))
    assert chart.line == "M0,140.0H200.0V10.0H600.0V75.0H600"
    assert (chart.start, chart.end, chart.top) == (0, 5, 10)
