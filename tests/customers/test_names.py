"""Names are one line of visible text: no line breaks, control or bidi/format characters.

A name goes into email subjects ("25 credits added to Acme Ltd's balance"), where a line
break is a header injection, and onto every page, where U+202E shows the rest reversed.
"""

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.urls import reverse

from customers.member_forms import ProfileForm
from customers.models import Company, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ONE_LINE = "Enter this on one line, without line breaks."
REFUSED = [
    ("Acme\nLtd", ONE_LINE),
    ("Acme\r\nLtd", ONE_LINE),
    ("Acme\rLtd", ONE_LINE),
    ("Acme\u2028Ltd", ONE_LINE),
    ("Acme\x85Ltd", ONE_LINE),
    ("Acme\u202eLtd", "Remove the invisible character U+202E (RIGHT-TO-LEFT OVERRIDE)."),
    ("Acme\u2066Ltd", "Remove the invisible character U+2066 (LEFT-TO-RIGHT ISOLATE)."),
    ("Acme\u200fLtd", "Remove the invisible character U+200F (RIGHT-TO-LEFT MARK)."),
    ("Acme\ufeffLtd", "Remove the invisible character U+FEFF (ZERO WIDTH NO-BREAK SPACE)."),
    ("Acme\tLtd", "Remove the control character U+0009."),
    ("Acme\x1bLtd", "Remove the control character U+001B."),
    ("Acme\x00Ltd", "Remove the control character U+0000."),
]
ACCEPTED = [
    "Acme Ltd",
    "Zoë O'Brien-Núñez",
    "شركة الفضاء",  # right-to-left text is fine; only the invisible controls are refused
    "می\u200cخواهم",  # the zero-width non-joiner spells Persian words
    "Team 👩\u200d🚀",  # the zero-width joiner builds emoji
    "株式会社",
]


@pytest.mark.parametrize("name, message", REFUSED)
def test_a_company_name_with_a_line_break_or_control_is_refused(name, message):
    company = Company(name=name)
    with pytest.raises(ValidationError) as refused:
        company.full_clean()
    assert refused.value.message_dict == {"name": [message]}


@pytest.mark.parametrize("field", ["first_name", "last_name"])
@pytest.mark.parametrize("name, message", REFUSED)
def test_a_persons_name_with_a_line_break_or_control_is_refused(field, name, message):
    user = User(email="ann@example.com", **{field: name})
    with pytest.raises(ValidationError) as refused:
        user.full_clean(exclude=["password"])
    assert refused.value.message_dict == {field: [message]}


@pytest.mark.parametrize("name", ACCEPTED)
def test_names_in_any_script_are_accepted(name):
    Company(name=name).full_clean()
    User(email="ann@example.com", first_name=name, last_name=name).full_clean(exclude=["password"])


@pytest.mark.parametrize("name, message", REFUSED)
def test_the_account_form_refuses_such_a_name_with_its_message(name, message):
    member = UserFactory(first_name="Lena")
    data = {"first_name": name, "last_name": "", "email": member.email}
    form = ProfileForm(data, user=member, request=RequestFactory().post("/account/"))
    assert list(form.errors) == ["first_name"]
    assert form.errors["first_name"][0] == message  # NUL: Django's own message follows


def test_the_account_page_says_so_and_keeps_the_name(client):
    member = UserFactory(first_name="Lena", last_name="Novak")
    client.force_login(member)
    response = client.post(
        reverse("member:account"),
        {"first_name": "Lena", "last_name": "\u202ekavoN", "email": member.email},
    )
    assert response.status_code == 422
    assert "Remove the invisible character U+202E" in response.content.decode()
    member.refresh_from_db()
    assert member.last_name == "Novak"


def _company_form(name):
    return {
        "name": name,
        "email": "",
        "created_at_0": "2026-06-01",
        "created_at_1": "12:00:00",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }


def test_the_django_admin_refuses_a_company_name_on_two_lines(client):
    client.force_login(User.objects.create_superuser(email="root@example.com", password="x"))
    add = reverse("admin:customers_company_add")
    response = client.post(add, _company_form("Acme\r\nLtd"))
    assert response.status_code == 200
    assert ONE_LINE in response.content.decode()
    assert not Company.objects.exists()
    assert client.post(add, _company_form("Acme Ltd")).status_code == 302
    assert Company.objects.get().name == "Acme Ltd"
