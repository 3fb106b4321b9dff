"""Every page carries a Content-Security-Policy that allows no inline script or style."""

import pytest

from tests.factories import UserFactory


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path, logged_in",
    [("/login/", False), ("/membership/", True), ("/notifications/", True), ("/admin/", True)],
)
def test_pages_send_a_policy_with_only_our_own_scripts_and_styles(client, path, logged_in):
    if logged_in:
        client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get(path)
    assert response.status_code == 200
    policy = _policy(response)
    assert policy["default-src"] == ["'self'"]
    for directive in ("script-src", "style-src"):
        assert policy.get(directive, policy["default-src"]) == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
