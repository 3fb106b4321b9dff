from decimal import Decimal

import pytest

from credits import selectors, services
from tests.factories import UserFactory


@pytest.mark.django_db
def test_add_then_deduct(clock):
    member = UserFactory()
    services.add_credits(member, 10)
    services.deduct_credits(member, 3)
    assert selectors.get_balance(member) == Decimal("7.00")
