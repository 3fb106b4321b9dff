"""An email subject is one header line whatever the stored text holds.

Names are refused on input when they hold a line break (tests/customers/test_names.py),
but rows written before that rule, or by a path that skipped it, still hold them: a
newline in a company name made every email about the company raise BadHeaderError.
"""

import pytest

from credits import services
from customers.models import Company
from notifications import services as notifications
from notifications.models import EmailStatus, Notification
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


@pytest.fixture
def legacy_company():
    # Company.objects.create runs no validators: the row a migration or old code left.
    company = Company.objects.create(name="Acme\nLtd")
    MembershipFactory(company=company, role="manager")
    return company


def test_a_company_name_on_two_lines_still_gets_its_email_on_one_line(
    legacy_company, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        services.add_credits(legacy_company, 25)

    notification = Notification.objects.get()
    assert notification.email_status == EmailStatus.SENT, notification.email_error
    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject == "25 credits added to Acme Ltd's balance"
    assert mailoutbox[0].message()["Subject"] == "25 credits added to Acme Ltd's balance"


def test_send_again_of_such_an_email_sends_it(
    legacy_company, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        services.add_credits(legacy_company, 25)
    # As it stood before the fix: failed for good, its subject on two lines.
    Notification.objects.update(
        email_status=EmailStatus.FAILED, subject="25 credits added to Acme\r\nBcc: x@evil.test"
    )
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        notifications.retry_failed_emails(Notification.objects.values_list("pk", flat=True))
    assert Notification.objects.get().email_status == EmailStatus.SENT
    assert [email.subject for email in mailoutbox] == ["25 credits added to Acme Bcc: x@evil.test"]
    assert mailoutbox[0].bcc == [] and "Bcc" not in mailoutbox[0].message()


@pytest.mark.parametrize(
    "stored, subject",
    [
        ("1 credit added to Acme\u2028Ltd's balance", "1 credit added to Acme Ltd's balance"),
        ("Acme\u202eLtd", "Acme Ltd"),
        ("  Acme \t\x00 Ltd  ", "Acme Ltd"),
        ("شركة\u200cالفضاء 👩\u200d🚀", "شركة\u200cالفضاء 👩\u200d🚀"),
    ],
)
def test_the_subject_is_the_stored_one_on_one_visible_line(stored, subject):
    notification = Notification(subject=stored, body="", link="/", pk=1)
    notification.recipient = MembershipFactory().user
    assert notifications.build_email(notification).subject == subject
